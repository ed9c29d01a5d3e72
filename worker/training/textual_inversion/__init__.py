"""Textual inversion: learn new token embeddings for a concept."""
