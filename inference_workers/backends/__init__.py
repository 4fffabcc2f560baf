"""Turning prompts into text: one module per kind of model (local transformers, OpenAI-compatible API,
imported outputs), each a ``Backend`` (base.py) registered in registry.py; callers ask ``backend_for(model)``.
"""
