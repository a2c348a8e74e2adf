"""Baitiao Ops project package: settings, URLs and the framework-free helpers."""
