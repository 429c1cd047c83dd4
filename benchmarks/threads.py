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

Environment variables are not enough for every library: JAX's CPU runtime
sizes its thread pool from the cores the process may use, and ignored the
variables and flags (it used two cores' worth of CPU time per second of wall
time on a two-core machine).  So for CPU runs the process is also pinned to
``threads`` cores (``os.sched_setaffinity``, where the OS has it): a hard
limit that every library, and every pool it sizes, respects.
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


def pin_to_cores(count: int) -> list | None:
    """Restrict this process to ``count`` of the cores it may use now.

    The last cores are taken (core 0 tends to serve more interrupts).
    Returns the cores chosen, or ``None`` where the OS cannot pin.
    """
    if count <= 0 or not hasattr(os, "sched_setaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    chosen = available[-count:]
    try:
        os.sched_setaffinity(0, chosen)
    except OSError:
        return None
    return chosen


def limit_threads(threads: int, pin: bool = False) -> None:
    """Put ``threads`` in the environment of every math library; 0 changes nothing.

    With ``pin``, also restrict the process to ``threads`` cores (see the
    module docstring for why).
    """
    if threads <= 0:
        return
    if pin:
        pin_to_cores(threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # XLA's CPU backend ignores OMP_NUM_THREADS; this flag keeps its Eigen
    # kernels single-threaded (its own pool is bounded only by pinning).
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in xla_flags:
        os.environ["XLA_FLAGS"] = (xla_flags + " --xla_cpu_multi_thread_eigen=false").strip()


def device_from_argv(argv) -> str:
    """The ``--device`` value in ``argv`` (``cpu`` unless given)."""
    for index, word in enumerate(argv):
        if word == "--device" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--device="):
            return word.split("=", 1)[1]
    return "cpu"


def limit_threads_from_argv(argv) -> int:
    """Apply ``--threads`` from ``argv``; CPU runs are also pinned to that many cores."""
    threads = threads_from_argv(argv)
    limit_threads(threads, pin=device_from_argv(argv) == "cpu")
    return threads


def apply_to_loaded_libraries(threads: int) -> dict:
    """Apply the limit to libraries already imported, and report what is in force.

    Environment variables only reach thread pools created after they are
    set; PyTorch also has a runtime setter, and threadpoolctl (if installed)
    can resize BLAS pools that already exist.
    """
    report = {"requested": threads}
    if hasattr(os, "sched_getaffinity"):
        report["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    if threads > 0:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except ImportError:
            pass
    try:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        report["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        report["blas"] = sorted({f"{info.get('internal_api')}={info.get('num_threads')}"
                                 for info in threadpool_info()})
    except ImportError:
        report["environment"] = {name: os.environ.get(name) for name in THREAD_VARIABLES[:2]}
    return report
