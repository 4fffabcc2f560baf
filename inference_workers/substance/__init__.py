"""Substance: factual-accuracy benchmarks (NQ-open, TruthfulQA) that stand beside preference ratings."""
