"""Celery wiring for the substance benchmarks."""
