"""Loaders for the real UCI dataset and for generated load."""
