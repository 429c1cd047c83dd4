"""gpugrad's benchmark suite.

Run ``python -m benchmarks --help``.  Figures are ratios measured in one run
against hand-written NumPy baselines and peer libraries; see
``benchmarks/RESULTS.md`` for how they are produced and the latest table.

Importing this package imports nothing heavy: NumPy, gpugrad and the peers are
loaded by the modules that need them.
"""
