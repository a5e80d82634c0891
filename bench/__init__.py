"""Benchmarks: each module measures our code against the raw library call in the same run.

Run them with `python -m bench [--only NAME] [--full]`; see docs/benchmarks.md.
"""
