"""Fixtures of the engine tests live in tests/conftest.py (the browser tests share them)."""
