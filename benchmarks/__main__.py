"""``python -m benchmarks``: run the benchmark suite (see :mod:`benchmarks.run`).

Thread limits must be in the environment before NumPy (OpenBLAS), PyTorch
(OpenMP) or JAX (XLA) start their thread pools, which happens on import, so
``--threads`` is read here, before :mod:`benchmarks.run` imports anything.
"""
import sys

from .threads import limit_threads_from_argv

limit_threads_from_argv(sys.argv[1:])

# Only now: importing run imports NumPy, whose BLAS reads the limits on load.
from .run import main

sys.exit(main())
