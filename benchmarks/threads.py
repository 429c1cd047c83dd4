"""Thread limits for the math libraries, applied before they load.

Why the suite defaults to one thread: every participant runs in the same
process, in alternating blocks.  With the libraries' default thread pools,
OpenBLAS (NumPy), OpenMP (PyTorch) and Eigen (JAX) each keep worker threads
that spin for a while after their work is done, and on a small machine those
spinning workers steal the cores the *next* participant needs.  On a 2-core
machine, timing PyTorch against an identical copy of itself gave ratios from
0.06x to 1.16x with default pools and 0.97x to 1.03x with one thread each.
One thread per library measures what each library costs per core, which is
what the ratios are for; ``--threads 0`` keeps the libraries' own defaults.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_THREADS = 1


def threads_from_argv(argv) -> int:
    """The ``--threads`` value in ``argv`` (``--threads N`` or ``--threads=N``), or the default."""
    for index, word in enumerate(argv):
        if word == "--threads" and index + 1 < len(argv):
            value = argv[index + 1]
        elif word.startswith("--threads="):
            value = word.split("=", 1)[1]
        else:
            continue
        try:
            return int(value)
        except ValueError:
            return DEFAULT_THREADS  # argparse reports the bad value later
    return DEFAULT_THREADS


def limit_threads(threads: int) -> None:
    """Put ``threads`` in the environment of every math library; 0 changes nothing."""
    if threads <= 0:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # XLA's CPU backend ignores OMP_NUM_THREADS; these flags bound its pools.
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in xla_flags:
        extra = "--xla_cpu_multi_thread_eigen=false" if threads == 1 else ""
        extra += f" intra_op_parallelism_threads={threads}"
        os.environ["XLA_FLAGS"] = (xla_flags + " " + extra).strip()


def limit_threads_from_argv(argv) -> int:
    threads = threads_from_argv(argv)
    limit_threads(threads)
    return threads


def apply_to_loaded_libraries(threads: int) -> dict:
    """Apply the limit to libraries already imported, and report what is in force.

    Environment variables only reach thread pools created after they are
    set; PyTorch also has a runtime setter, and threadpoolctl (if installed)
    can resize BLAS pools that already exist.
    """
    report = {"requested": threads}
    if threads > 0:
        try:
            from threadpoolctl import threadpool_limits  # noqa: PLC0415 - optional

            threadpool_limits(threads)
        except ImportError:
            pass
    try:
        import torch  # noqa: PLC0415 - optional peer

        if threads > 0:
            torch.set_num_threads(threads)
        report["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415 - optional

        report["blas"] = sorted({f"{info.get('internal_api')}={info.get('num_threads')}"
                                 for info in threadpool_info()})
    except ImportError:
        report["environment"] = {name: os.environ.get(name) for name in THREAD_VARIABLES[:2]}
    return report
