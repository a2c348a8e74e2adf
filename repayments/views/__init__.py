"""Console views: thin; they parse input, read through selectors, write through services."""
