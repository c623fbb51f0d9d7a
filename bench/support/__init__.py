"""What the benchmarks share: load generation, process memory, bulk seeding in SQL.

Not benchmarks themselves: tests/test_bench.py runs each `bench/*.py` with `--help`, and
these modules sit one level below on purpose.
"""
