"""Prompt templates under version control (read with importlib.resources)."""
