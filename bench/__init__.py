"""Benchmarks of edgeprof itself (scripts, not tests): ``python -m bench.<name>``.

Each benchmark measures its figure against a reference taken in the same run
(ratios, not absolute times), prints the machine's load and CPU alongside, and
emits a JSON report with ``--json``. See bench/README.md.
"""
