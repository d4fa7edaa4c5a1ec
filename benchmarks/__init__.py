"""Benchmarks: the collector against its baselines, in one run (`python -m benchmarks`).

See RESULTS.md for the latest figures and how to rerun them.
"""
