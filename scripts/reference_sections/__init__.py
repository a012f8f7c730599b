"""The sections of benchmarks/reference_results.md, one module each.

The harness is scripts/reference_results.py.

Each module defines ``KEY``, ``TITLE`` and ``run(ctx) -> Section``; the harness in
:mod:`reference_sections.harness` trains recipes and formats figures for all of them.
"""
