"""Benchmarks of Lightbox against baselines measured in the same run."""
