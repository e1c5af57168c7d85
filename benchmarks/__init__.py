"""Benchmarks of dd3d-lab, run from the repository root as ``python -m benchmarks.NAME --quick`` (or ``--paper``)."""
