"""Timing utilities: warm-up, alternating blocks, medians, ratios.

Every comparison in the suite is measured the same way:

1. **Warm-up.**  Each participant runs a few times untimed, so one-off costs
   (imports, kernel compilation, JIT tracing, allocator growth, BLAS thread
   start-up) are not charged to the steady state we want to compare.
2. **Alternating blocks.**  The participants then take turns: a block of calls
   of the baseline, a block of the candidate, a block of each peer, then the
   next round in reverse order, and so on.  Machine noise (another process, CPU
   frequency changes, thermal throttling) therefore lands on every participant
   instead of on whichever happened to run during the noisy second.
3. **Medians.**  Every call is timed on its own (with a device synchronisation
   inside the timed region on GPUs); a figure is the median over all timed
   calls, which ignores the occasional outlier (a garbage collection, a page
   fault) that a mean would absorb.
4. **Ratios in the same run.**  A comparison is ``median(candidate) /
   median(baseline)``, both measured in the same alternating run; the spread
   is the range of the per-round ratios.  Absolute times are reported too, but
   only ratios are compared with targets, because absolute times depend on the
   machine and ratios mostly do not.

Examples
--------
>>> import time
>>> fast = Participant("fast", lambda: None)
>>> slow = Participant("slow", lambda: time.sleep(0.001))
>>> timings = time_alternating([fast, slow], TimingPlan(warmup=1, rounds=2,
...                            block_seconds=0.002, budget_seconds=1.0))
>>> timings["slow"].median > timings["fast"].median
True
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _no_sync() -> None:
    """Synchronisation for participants whose work is done when the call returns."""


@dataclass
class Participant:
    """One contender in a comparison.

    Parameters
    ----------
    name : str
        Short label, e.g. ``"numpy"``, ``"gpugrad"``, ``"torch"``.
    step : callable
        Does one unit of work (a training step, an epoch, a chain) and returns
        anything (usually the loss).  It must be repeatable: it is called many
        times on the same state.
    sync : callable, optional
        Waits until the device has finished the work ``step`` queued (CUDA
        kernels run asynchronously).  Called inside the timed region.
    snapshot : callable, optional
        Returns the participant's state after a step as a dict of NumPy arrays
        (parameters or gradients), used once to check that every participant
        computes the same thing before timing them against each other.
    """

    name: str
    step: Callable[[], Any]
    sync: Callable[[], None] = _no_sync
    snapshot: Callable[[], dict] | None = None


@dataclass
class TimingPlan:
    """How long and how often to time.

    Parameters
    ----------
    warmup : int
        Untimed calls per participant before timing starts.
    rounds : int
        Maximum number of alternating rounds (each round times one block of
        every participant).
    block_seconds : float
        Target duration of one block; the number of calls in a block is
        derived from the warm-up timing so short calls get many repetitions.
    budget_seconds : float
        Wall-clock budget for the whole comparison; rounds stop early when it
        is spent (but never before ``min_rounds``).
    min_rounds : int
        Rounds always run, whatever the budget.
    max_calls_per_block : int
        Upper bound on calls per block, so very fast calls do not make a
        block (and the sample list) huge.
    clock : {"wall", "cpu"}
        ``"wall"`` (the default) times what a user waits for.  ``"cpu"``
        times the process's CPU time instead, which other programs on a busy
        shared machine cannot inflate by preempting us; it suits CPU runs
        with one thread per library (every library thread's CPU time is
        counted, spinning included: JAX, whose caller thread waits for its
        own worker, is charged for both) and is meaningless for GPU work.
    """

    warmup: int = 3
    rounds: int = 10
    block_seconds: float = 0.1
    budget_seconds: float = 20.0
    min_rounds: int = 2
    max_calls_per_block: int = 200
    clock: str = "wall"


@dataclass
class Timing:
    """Per-call times of one participant, in seconds."""

    name: str
    samples: list = field(default_factory=list)
    # Per-round medians, kept to compute the spread of per-round ratios.
    round_medians: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        """First and third quartiles of the per-call times."""
        if len(self.samples) < 4:
            return (min(self.samples), max(self.samples))
        quartiles = statistics.quantiles(self.samples, n=4)
        return (quartiles[0], quartiles[2])

    def summary(self) -> dict:
        """JSON-friendly summary (times in milliseconds)."""
        low, high = self.iqr
        return {
            "median_ms": self.median * 1e3,
            "q1_ms": low * 1e3,
            "q3_ms": high * 1e3,
            "calls": len(self.samples),
            "rounds": len(self.round_medians),
        }


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _timed_call(participant: Participant, clock=time.perf_counter) -> float:
    start = clock()
    participant.step()
    participant.sync()
    return clock() - start


def warm_up(participants: list[Participant], calls: int) -> dict[str, float]:
    """Run every participant ``calls`` times untimed (at least once).

    Returns
    -------
    dict
        The shortest warm-up call of each participant, used to size the
        timing blocks (the shortest, because the first calls include one-off
        costs that would make blocks too small).
    """
    shortest = {}
    for participant in participants:
        durations = [_timed_call(participant) for _ in range(max(1, calls))]
        shortest[participant.name] = min(durations)
    return shortest


def time_alternating(participants: list[Participant], plan: TimingPlan,
                     warmed_up: dict[str, float] | None = None) -> dict[str, Timing]:
    """Time participants in alternating blocks and return their per-call times.

    Parameters
    ----------
    participants : list of Participant
        The first is conventionally the baseline; order otherwise only
        decides who starts (and the order reverses every round).
    plan : TimingPlan
        Warm-up count, rounds, block size and time budget.
    warmed_up : dict, optional
        Result of an earlier :func:`warm_up` call; when given, no further
        warm-up is done.

    Returns
    -------
    dict
        ``name -> Timing``.
    """
    if warmed_up is None:
        warmed_up = warm_up(participants, plan.warmup)
    calls_per_block = {
        p.name: int(min(plan.max_calls_per_block,
                        max(1, plan.block_seconds // max(warmed_up[p.name], 1e-7))))
        for p in participants
    }
    timings = {p.name: Timing(p.name) for p in participants}
    clock = CLOCKS[plan.clock]
    started = time.perf_counter()
    order = list(participants)
    for round_index in range(plan.rounds):
        if round_index >= plan.min_rounds and time.perf_counter() - started > plan.budget_seconds:
            break
        for participant in order:
            # Collect the previous block's garbage now, so it is not charged
            # to whoever happens to run next.
            gc.collect()
            block = [_timed_call(participant, clock) for _ in range(calls_per_block[participant.name])]
            timings[participant.name].samples.extend(block)
            timings[participant.name].round_medians.append(statistics.median(block))
        # Reverse so no participant always runs right after the same other one.
        order.reverse()
    return timings


def ratio(candidate: Timing, baseline: Timing) -> dict:
    """``median(candidate) / median(baseline)`` with the range of per-round ratios.

    Returns
    -------
    dict
        ``ratio`` (lower is better for the candidate), ``ratio_low`` and
        ``ratio_high`` (smallest and largest ratio of medians within one round).
    """
    per_round = [c / b for c, b in zip(candidate.round_medians, baseline.round_medians) if b > 0]
    return {
        "ratio": candidate.median / baseline.median,
        "ratio_low": min(per_round) if per_round else None,
        "ratio_high": max(per_round) if per_round else None,
    }
