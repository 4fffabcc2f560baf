"""Turning prompts into text: one module per kind of model (local transformers, OpenAI-compatible API, imported)."""
