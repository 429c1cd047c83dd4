"""Learning-rate schedules that rewrite ``group["lr"]`` of an optimizer.

Each scheduler follows ``torch.optim.lr_scheduler`` formula for formula (the
same *recursive* updates, not only the closed forms), so the learning-rate
sequence equals PyTorch's to the last few bits.  Call ``scheduler.step()``
after ``optimizer.step()``; ``get_last_lr()`` returns the rates now in force.

Examples
--------
>>> import gpugrad as gg
>>> w = gg.tensor([0.0], requires_grad=True)
>>> opt = gg.optim.SGD([w], lr=1.0)
>>> sched = gg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(sched.get_last_lr()[0])
...     opt.step(); sched.step()
>>> rates
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import math
import numbers
from collections import Counter

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "OneCycleLR", "ReduceLROnPlateau"]


def _check_optimizer(name, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: expected a gg.optim optimizer, got {type(optimizer).__name__}; "
                        "build the optimizer first and pass it, e.g. StepLR(opt, step_size=10)")


def _per_group(name, what, optimizer, value):
    """One value per parameter group, from a scalar or a list/tuple."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name}: {what} has {len(value)} value(s) but the optimizer has "
                             f"{len(optimizer.param_groups)} parameter group(s); give one per group or a single number")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _check_value(owner, name, value, low=-math.inf, high=math.inf, low_inclusive=True, high_inclusive=True):
    """A finite real number in the given range, or a ValueError naming ``owner``, ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name}={value!r} must be a real number")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name}={value!r} must be finite (NaN and infinities would make every "
                         "later learning rate NaN or infinite)")
    if (value < low if low_inclusive else value <= low) or (value > high if high_inclusive else value >= high):
        left = "[" if low_inclusive and low != -math.inf else "("
        right = "]" if high_inclusive and high != math.inf else ")"
        raise ValueError(f"{owner}: {name}={value!r} is out of range; it must lie in {left}{low!r}, {high!r}{right}")
    return value


def _check_count(owner, name, value, low=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}: {name}={value!r} must be an integer >= {low}")
    return value


def _check_each(owner, name, values, count, **bounds):
    if not isinstance(values, (list, tuple)) or len(values) != count:
        raise ValueError(f"{owner}: {name}={values!r} must hold one number per parameter group ({count})")
    for position, value in enumerate(values):
        _check_value(owner, f"{name}[{position}]", value, **bounds)



class LRScheduler:
    """Base class: tracks ``last_epoch`` and writes ``get_lr()`` into the groups.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    last_epoch : int, default -1
        ``-1`` starts a fresh schedule (and records each group's ``initial_lr``);
        resume from a checkpoint with :meth:`load_state_dict` instead.
    """

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        _check_count(name, "last_epoch", last_epoch, low=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{name}: param_groups[{i}] has no 'initial_lr', needed to resume with "
                                   f"last_epoch={last_epoch}; load the optimizer's state_dict first, or use "
                                   "last_epoch=-1 and load the scheduler's state_dict")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        # The first step (made here) only records the starting rates; mirrors
        # PyTorch's _initial_step so both sequences start at the same place.
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The rates for ``last_epoch`` (already advanced); subclasses implement it."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates most recently written into the optimizer (one per group)."""
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one step (call after ``optimizer.step()``)."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Everything except the optimizer (save it with ``gg.save``)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state from :meth:`state_dict`; it is checked in full before anything changes.

        Raises ValueError for keys of another scheduler class, and for
        settings or counters its constructor would refuse (NaN, infinite or
        out-of-range values).
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise ValueError(f"{name}: expected a dict from scheduler.state_dict(), got {type(state_dict).__name__}")
        unknown = sorted(str(key) for key in set(state_dict) - set(self.__dict__))
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; the state belongs to a different scheduler class")
        merged = dict(self.__dict__, **state_dict)
        self._check_state(name, merged)
        self.__dict__.update(state_dict)

    def _check_state(self, owner, state):
        """Check a full attribute dict (``__dict__`` after a load); subclasses add their settings."""
        groups = len(self.optimizer.param_groups)
        _check_count(owner, "last_epoch", state["last_epoch"], low=-1)
        _check_count(owner, "_step_count", state.get("_step_count", 0))
        _check_each(owner, "base_lrs", state["base_lrs"], groups, low=0.0)
        if "_last_lr" in state:
            _check_each(owner, "_last_lr", state["_last_lr"], groups, low=0.0)

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=0.1)
    >>> sched = gg.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1)
    >>> for _ in range(3): sched.step()
    >>> round(sched.get_last_lr()[0], 10)
    0.01
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self._check_settings("StepLR", {"step_size": step_size, "gamma": gamma})
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _check_settings(owner, state):
        _check_count(owner, "step_size", state["step_size"], low=1)
        _check_value(owner, "gamma", state["gamma"], low=0.0, low_inclusive=False)

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        self._check_settings(owner, state)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone step.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    >>> rates = []
    >>> for _ in range(5):
    ...     sched.step(); rates.append(sched.get_last_lr()[0])
    >>> rates
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        self._check_settings("MultiStepLR", {"milestones": milestones, "gamma": gamma})
        # A Counter, as in PyTorch: a milestone listed twice decays twice.
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _check_settings(owner, state):
        milestones = state["milestones"]
        listed = sorted(milestones.elements()) if isinstance(milestones, Counter) else milestones
        if not isinstance(listed, (list, tuple)):
            raise ValueError(f"{owner}: milestones={milestones!r} must be a list of step numbers")
        for position, milestone in enumerate(listed):
            _check_count(owner, f"milestones[{position}]", milestone)
        if list(listed) != sorted(listed):
            raise ValueError(f"{owner}: milestones {list(listed)} must be increasing")
        _check_value(owner, "gamma", state["gamma"], low=0.0, low_inclusive=False)

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        self._check_settings(owner, state)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def state_dict(self):
        state = super().state_dict()
        # Plain lists survive gg.save (dict keys there become strings).
        state["milestones"] = sorted(self.milestones.elements())
        return state

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict):
            raise ValueError(f"MultiStepLR.load_state_dict: expected a dict from scheduler.state_dict(), got "
                             f"{type(state_dict).__name__}")
        state = dict(state_dict)
        milestones = state.get("milestones", sorted(self.milestones.elements()))
        if isinstance(milestones, dict):
            try:
                milestones = sorted(Counter({int(k): int(v) for k, v in milestones.items()}).elements())
            except (TypeError, ValueError):
                raise ValueError(f"MultiStepLR.load_state_dict: milestones={milestones!r} must map steps to "
                                 "counts") from None
        self._check_settings("MultiStepLR.load_state_dict", {"milestones": milestones,
                                                             "gamma": state.get("gamma", self.gamma)})
        state["milestones"] = Counter(milestones)
        super().load_state_dict(state)


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched.step(); sched.step(); sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self._check_settings("ExponentialLR", {"gamma": gamma})
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _check_settings(owner, state):
        _check_value(owner, "gamma", state["gamma"], low=0.0, low_inclusive=False)

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        self._check_settings(owner, state)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine from the initial rate down to ``eta_min`` over ``T_max`` steps, then back up.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> for _ in range(2): sched.step()
    >>> round(sched.get_last_lr()[0], 10)     # half way: (1 + cos(pi / 2)) / 2
    0.5
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self._check_settings("CosineAnnealingLR", {"T_max": T_max, "eta_min": eta_min})
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _check_settings(owner, state):
        if isinstance(state["T_max"], bool) or not isinstance(state["T_max"], numbers.Integral) or state["T_max"] <= 0:
            raise ValueError(f"{owner}: T_max={state['T_max']!r} must be a positive integer (steps per half cycle)")
        _check_value(owner, "eta_min", state["eta_min"], low=0.0)

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        self._check_settings(owner, state)

    def get_lr(self):
        # The recursive form (PyTorch's) composes with other changes to the rate.
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            return [low + (base - low) * (1 + math.cos(t * math.pi / period)) / 2 for base in self.base_lrs]
        if (t - 1 - period) % (2 * period) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        return [(1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period)) * (lr - low) + low
                for lr in self._current_lrs()]


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> rates = [sched.get_last_lr()[0]]
    >>> for _ in range(3):
    ...     sched.step(); rates.append(round(sched.get_last_lr()[0], 10))
    >>> rates
    [0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self._check_settings("LinearLR", {"start_factor": start_factor, "end_factor": end_factor,
                                          "total_iters": total_iters})
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _check_settings(owner, state):
        _check_value(owner, "start_factor", state["start_factor"], 0.0, 1.0, low_inclusive=False)
        _check_value(owner, "end_factor", state["end_factor"], 0.0, 1.0)
        if (isinstance(state["total_iters"], bool) or not isinstance(state["total_iters"], numbers.Integral)
                or state["total_iters"] <= 0):
            raise ValueError(f"{owner}: total_iters={state['total_iters']!r} must be a positive integer")

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        self._check_settings(owner, state)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * factor for lr in self._current_lrs()]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018): warm up to ``max_lr``, then anneal far below.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then falls to
    ``max_lr / div_factor / final_div_factor`` (with ``three_phase`` it first
    returns to the start rate, then falls).  Momentum (or Adam's beta1) cycles
    the opposite way when ``cycle_momentum``.  Step it once per batch.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    max_lr : float or list of float
    total_steps : int, optional
        Or give ``epochs`` and ``steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float, default 0.3
    anneal_strategy : {"cos", "linear"}, default "cos"
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25
    final_div_factor : float, default 1e4
    three_phase : bool, default False
    last_epoch : int, default -1

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=0.1, momentum=0.9)
    >>> sched = gg.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> round(sched.get_last_lr()[0], 12)          # starts at max_lr / div_factor
    0.04
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        _check_optimizer("OneCycleLR", optimizer)
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"OneCycleLR: total_steps={total_steps!r} must be a positive integer")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            for what, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ValueError(f"OneCycleLR: {what}={value!r} must be a positive integer")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start={pct_start!r} must be a float in [0, 1]")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy={anneal_strategy!r} must be 'cos' or 'linear'")
        # Every setting is checked before the optimizer's groups are touched.
        groups = len(optimizer.param_groups)
        _check_each("OneCycleLR", "max_lr", _per_group("OneCycleLR", "max_lr", optimizer, max_lr), groups,
                    low=0.0, low_inclusive=False)
        _check_value("OneCycleLR", "div_factor", div_factor, low=0.0, low_inclusive=False)
        _check_value("OneCycleLR", "final_div_factor", final_div_factor, low=0.0, low_inclusive=False)
        if cycle_momentum:
            beta = "betas" in optimizer.defaults
            for what, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
                _check_each("OneCycleLR", what, _per_group("OneCycleLR", what, optimizer, value), groups,
                            low=0.0, high=1.0, high_inclusive=not beta)
        _check_count("OneCycleLR", "last_epoch", last_epoch, low=-1)
        warmup_end = float(pct_start * self.total_steps) - 1
        if warmup_end == 0 or (three_phase and float(2 * pct_start * self.total_steps) - 2 == warmup_end):
            raise ValueError(f"OneCycleLR: pct_start={pct_start!r} with total_steps={self.total_steps} makes a "
                             "phase of zero steps (its rate would be 0/0); choose pct_start so that "
                             "pct_start * total_steps is not 1 (e.g. a little larger or smaller)")
        self.anneal_strategy = anneal_strategy
        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        max_lrs = _per_group("OneCycleLR", "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for max_rate, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = max_rate / div_factor
                group["max_lr"] = max_rate
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True but {type(optimizer).__name__} has neither "
                                 "'momentum' nor 'betas'; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("OneCycleLR", "max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("OneCycleLR", "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for top, bottom, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (top, *group["betas"][1:])
                    else:
                        group["momentum"] = top
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)

    def _check_state(self, owner, state):
        super()._check_state(owner, state)
        _check_count(owner, "total_steps", state["total_steps"], low=1)
        if state["anneal_strategy"] not in ("cos", "linear"):
            raise ValueError(f"{owner}: anneal_strategy={state['anneal_strategy']!r} must be 'cos' or 'linear'")
        phases = state["_schedule_phases"]
        if not (isinstance(phases, list) and phases and all(isinstance(p, dict) and "end_step" in p for p in phases)):
            raise ValueError(f"{owner}: _schedule_phases is malformed")
        for phase in phases:
            _check_value(owner, "a phase's end_step", phase["end_step"])
        if state["last_epoch"] > state["total_steps"]:
            raise ValueError(f"{owner}: last_epoch={state['last_epoch']} is past total_steps={state['total_steps']}")

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step_num} times but total_steps={self.total_steps}; "
                             "make total_steps (or epochs * steps_per_epoch) cover every optimizer step")
        rates = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    rate = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            rates.append(rate)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return rates


class ReduceLROnPlateau(LRScheduler):
    """Cut the rate by ``factor`` when a metric stops improving for ``patience`` steps.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    mode : {"min", "max"}, default "min"
        Whether the metric should go down (a loss) or up (an accuracy).
    factor : float, default 0.1
        New rate = rate * factor (must be < 1).
    patience : int, default 10
        Steps without improvement tolerated before cutting.
    threshold : float, default 1e-4
        Minimum change that counts as an improvement.
    threshold_mode : {"rel", "abs"}, default "rel"
        ``rel``: better than ``best * (1 -/+ threshold)``; ``abs``: ``best -/+ threshold``.
    cooldown : int, default 0
        Steps to wait after a cut before counting bad steps again.
    min_lr : float or list of float, default 0
    eps : float, default 1e-8
        Cuts smaller than this are skipped.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [1.0, 1.0, 1.0]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.5]
    """

    # Driven by a metric rather than by the step count, so it sets itself up
    # without LRScheduler.__init__ (which would take a first step).
    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,  # noqa: PLR0913
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):  # pylint: disable=super-init-not-called
        _check_optimizer("ReduceLROnPlateau", optimizer)
        min_lrs = min_lr if isinstance(min_lr, (list, tuple)) else [min_lr] * len(optimizer.param_groups)
        self._check_settings("ReduceLROnPlateau", len(optimizer.param_groups), {
            "factor": factor, "patience": patience, "threshold": threshold, "cooldown": cooldown, "eps": eps,
            "min_lrs": min_lrs, "mode": mode, "threshold_mode": threshold_mode})
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("ReduceLROnPlateau", "min_lr", optimizer, min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    @staticmethod
    def _check_settings(owner, groups, state):
        _check_value(owner, "factor", state["factor"], 0.0, 1.0, high_inclusive=False)
        _check_count(owner, "patience", state["patience"])
        _check_count(owner, "cooldown", state["cooldown"])
        _check_value(owner, "threshold", state["threshold"], low=0.0)
        _check_value(owner, "eps", state["eps"], low=0.0)
        _check_each(owner, "min_lr", state["min_lrs"], groups, low=0.0)
        if state["mode"] not in ("min", "max"):
            raise ValueError(f"{owner}: mode={state['mode']!r} must be 'min' or 'max'")
        if state["threshold_mode"] not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode={state['threshold_mode']!r} must be 'rel' or 'abs'")

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode={mode!r} must be 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode={threshold_mode!r} must be 'rel' or 'abs'")
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, value, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return value < best * (1.0 - self.threshold)
        if self.mode == "min":
            return value < best - self.threshold
        if self.threshold_mode == "rel":
            return value > best * (self.threshold + 1.0)
        return value > best + self.threshold

    def step(self, metrics):
        """Record this step's metric (a number or a one-element tensor) and maybe cut the rate."""
        if hasattr(metrics, "item"):
            metrics = metrics.item()
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0     # bad steps during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self):
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer now has {len(self.optimizer.param_groups)} "
                                   f"parameter groups but min_lr gave {len(self.min_lrs)}; set scheduler.min_lrs "
                                   "to one value per group")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_rate in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_rate)
            if old - new > self.eps:
                group["lr"] = new

    def get_last_lr(self):
        """The learning rates now in force (one per group)."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything except the optimizer (counters, best value, settings)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state from :meth:`state_dict`; it is checked in full before anything changes."""
        owner = "ReduceLROnPlateau.load_state_dict"
        if not isinstance(state_dict, dict):
            raise ValueError(f"{owner}: expected a dict from scheduler.state_dict(), got {type(state_dict).__name__}")
        unknown = sorted(str(key) for key in set(state_dict) - set(self.__dict__))
        if unknown:
            raise ValueError(f"{owner}: unknown keys {unknown}; the state belongs to a different scheduler class")
        merged = dict(self.__dict__, **state_dict)
        groups = len(self.optimizer.param_groups)
        self._check_settings(owner, groups, merged)
        for key in ("last_epoch", "num_bad_epochs", "cooldown_counter"):
            _check_count(owner, key, merged[key])
        best = merged["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real) or math.isnan(best):
            raise ValueError(f"{owner}: best={best!r} must be a number (infinite before the first step), not NaN")
        _check_each(owner, "_last_lr", merged["_last_lr"], groups, low=0.0)
        self.__dict__.update(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


# --------------------------------------------------------------------------
# Schedules added for PyTorch programs (issue 16): LambdaLR, CyclicLR,
# CosineAnnealingWarmRestarts and the combinators SequentialLR and
# ChainedScheduler, each following torch.optim.lr_scheduler formula for formula.
# --------------------------------------------------------------------------
import bisect as _bisect  # noqa: E402 - kept with the schedules that use it
import types as _types  # noqa: E402

__all__ += ["LambdaLR", "CyclicLR", "CosineAnnealingWarmRestarts", "SequentialLR", "ChainedScheduler"]


def _initial_step(scheduler):
    """PyTorch's ``_initial_step``: restart the step count and take the recording step."""
    scheduler._step_count = 0
    scheduler._is_initial = True
    try:
        scheduler.step()
    finally:
        scheduler._is_initial = False


def _closed_form_lrs(scheduler):
    """The rates at ``last_epoch`` computed from the base rates (PyTorch's
    ``_get_closed_form_lr``), for the schedules that have one; else ``get_lr()``."""
    epoch, bases = scheduler.last_epoch, scheduler.base_lrs
    if isinstance(scheduler, StepLR):
        return [lr * scheduler.gamma ** (epoch // scheduler.step_size) for lr in bases]
    if isinstance(scheduler, MultiStepLR):
        passed = _bisect.bisect_right(sorted(scheduler.milestones.elements()), epoch)
        return [lr * scheduler.gamma ** passed for lr in bases]
    if isinstance(scheduler, ExponentialLR):
        return [lr * scheduler.gamma ** epoch for lr in bases]
    if isinstance(scheduler, CosineAnnealingLR):
        return [scheduler.eta_min + (lr - scheduler.eta_min) * (1 + math.cos(math.pi * epoch / scheduler.T_max)) / 2
                for lr in bases]
    if isinstance(scheduler, LinearLR):
        fraction = min(scheduler.total_iters, epoch) / scheduler.total_iters
        return [lr * (scheduler.start_factor + (scheduler.end_factor - scheduler.start_factor) * fraction)
                for lr in bases]
    return scheduler.get_lr()


def _restart_at(scheduler, epoch):
    """PyTorch's ``_update_lr(epoch)``: jump to ``epoch`` and write its rates."""
    scheduler.last_epoch = epoch
    for group, lr in zip(scheduler.optimizer.param_groups, _closed_form_lrs(scheduler)):
        group["lr"] = lr
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def _callable_state(function):
    # As PyTorch: plain functions are not saved (they are code); callable
    # objects save their attributes.
    return None if isinstance(function, _types.FunctionType) else dict(function.__dict__)


class LambdaLR(LRScheduler):
    """The rate of each group is ``initial_lr * lr_lambda(epoch)``.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    lr_lambda : callable or list of callables
        ``epoch -> factor``; one for all groups, or one per group.
    last_epoch : int, default -1

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    >>> for _ in range(3): sched.step()
    >>> sched.get_last_lr()
    [0.125]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        functions = _per_group("LambdaLR", "lr_lambda", optimizer, lr_lambda)
        for position, function in enumerate(functions):
            if not callable(function):
                raise TypeError(f"LambdaLR: lr_lambda[{position}] is a {type(function).__name__}, not a callable "
                                "epoch -> factor, e.g. lambda epoch: 0.95 ** epoch")
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * function(self.last_epoch) for function, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """Counters and rates; of the lambdas only callable objects' attributes (functions are code)."""
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [_callable_state(function) for function in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if len(saved) != len(self.lr_lambdas):
            raise ValueError(f"LambdaLR.load_state_dict: the state has {len(saved)} lr_lambdas, this scheduler "
                             f"{len(self.lr_lambdas)}; the optimizer's groups changed")
        super().load_state_dict(state)
        for function, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                function.__dict__.update(attributes)


class CyclicLR(LRScheduler):
    """Cycle the rate between ``base_lr`` and ``max_lr`` (Smith 2017), stepped every batch.

    The rate climbs for ``step_size_up`` steps and falls for ``step_size_down``;
    ``mode`` scales the amplitude per cycle (``"triangular"``: constant,
    ``"triangular2"``: halved each cycle, ``"exp_range"``: ``gamma**step``), or
    ``scale_fn`` does.  With ``cycle_momentum`` the momentum (or Adam's beta1)
    moves the opposite way between ``max_momentum`` and ``base_momentum``.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    base_lr, max_lr : float or list of float
    step_size_up : int, default 2000
    step_size_down : int, optional (default ``step_size_up``)
    mode : {"triangular", "triangular2", "exp_range"}
    gamma : float, default 1.0
    scale_fn : callable, optional
    scale_mode : {"cycle", "iterations"}
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float
    last_epoch : int, default -1

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    >>> sched = gg.optim.lr_scheduler.CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2)
    >>> rates = []
    >>> for _ in range(5):
    ...     rates.append(round(sched.get_last_lr()[0], 6)); sched.step()
    >>> rates
    [0.1, 0.3, 0.5, 0.3, 0.1]
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        _check_optimizer("CyclicLR", optimizer)
        base_lrs = _per_group("CyclicLR", "base_lr", optimizer, base_lr)
        max_lrs = _per_group("CyclicLR", "max_lr", optimizer, max_lr)
        for what, value in (("step_size_up", step_size_up), ("step_size_down", step_size_down)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"CyclicLR: {what}={value!r} must be a positive number of steps")
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"CyclicLR: mode={mode!r} must be 'triangular', 'triangular2' or 'exp_range' "
                             "(or pass scale_fn=)")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"CyclicLR: scale_mode={scale_mode!r} must be 'cycle' or 'iterations'")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"CyclicLR: scale_fn must be callable, got {type(scale_fn).__name__}")
        if cycle_momentum and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(f"CyclicLR: cycle_momentum=True needs an optimizer with momentum or betas, and "
                             f"{type(optimizer).__name__} has neither; pass cycle_momentum=False")
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = max_lrs
        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_mode()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("CyclicLR", "base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("CyclicLR", "max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for high, low, group in zip(self.max_momentums, self.base_momentums, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (high, *group["betas"][1:])
                    else:
                        group["momentum"] = high
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_mode(self):
        if self._scale_fn_custom is None:
            # The built-in modes fix their scale mode, as in PyTorch.
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x):
        """The amplitude factor at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        at = cycle if self.scale_mode == "cycle" else self.last_epoch
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * self.scale_fn(at)
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            momentums = [high - (high - low) * scale_factor * self.scale_fn(at)
                         for low, high in zip(self.base_momentums, self.max_momentums)]
            for group, momentum in zip(self.optimizer.param_groups, momentums):
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs

    def state_dict(self):
        """Counters and settings; a custom ``scale_fn`` only if it is a callable object (its attributes)."""
        state = super().state_dict()
        state["_scale_fn_custom"] = (None if self._scale_fn_custom is None
                                     else _callable_state(self._scale_fn_custom))
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        attributes = state.pop("_scale_fn_custom", None)
        custom = self._scale_fn_custom
        super().load_state_dict(state)
        self._scale_fn_custom = custom
        if attributes is not None and custom is not None:
            custom.__dict__.update(attributes)
        self._init_scale_mode()


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing from ``initial_lr`` to ``eta_min`` over ``T_i`` epochs, then restart
    (SGDR, Loshchilov & Hutter 2017); each period is ``T_mult`` times the previous.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    T_0 : int
        Length of the first period.
    T_mult : int, default 1
    eta_min : float, default 0
    last_epoch : int, default -1

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = gg.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
    >>> rates = []
    >>> for _ in range(4):
    ...     rates.append(round(sched.get_last_lr()[0], 6)); sched.step()
    >>> rates
    [1.0, 0.5, 1.0, 0.5]
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):  # noqa: N803 - PyTorch's names
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0={T_0!r} must be a positive integer")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult={T_mult!r} must be an integer >= 1")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (int, float)):
            raise ValueError(f"CosineAnnealingWarmRestarts: eta_min={eta_min!r} must be a number")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or jump to ``epoch`` (which may be fractional: per-batch use)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts.step: epoch={epoch!r} must be non-negative")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self._step_count += 1
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def _check_children(name, optimizer, schedulers):
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError(f"{name}: needs at least one scheduler")
    for position, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"{name}: schedulers[{position}] is a {type(scheduler).__name__}, not a scheduler")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{name}: schedulers[{position}] is a ReduceLROnPlateau, whose step needs the metric; "
                             "step it yourself, outside the combination")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{name}: schedulers[{position}] ({type(scheduler).__name__}) belongs to a different "
                             "optimizer; every scheduler must drive the same one")
    return schedulers


def _combined_state(combination):
    state = {key: value for key, value in combination.__dict__.items() if key not in ("optimizer", "_schedulers")}
    state["_schedulers"] = [scheduler.state_dict() for scheduler in combination._schedulers]
    return state


def _load_combined_state(combination, state_dict):
    state = dict(state_dict)
    children = state.pop("_schedulers", None)
    if children is None or len(children) != len(combination._schedulers):
        raise ValueError(f"{type(combination).__name__}.load_state_dict: the state holds "
                         f"{None if children is None else len(children)} schedulers, this one "
                         f"{len(combination._schedulers)}; build it with the same schedulers")
    unknown = sorted(set(state) - set(combination.__dict__))
    if unknown:
        raise ValueError(f"{type(combination).__name__}.load_state_dict: unknown keys {unknown}")
    # All or nothing: a child that rejects its state restores every scheduler.
    import copy
    saved = [(s, copy.copy(s.__dict__)) for s in [combination, *combination._schedulers]]
    try:
        combination.__dict__.update(state)
        for scheduler, child in zip(combination._schedulers, children):
            scheduler.load_state_dict(child)
    except BaseException:
        for scheduler, attributes in saved:
            scheduler.__dict__.clear()
            scheduler.__dict__.update(attributes)
        raise


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted at 0), and so on.

    Parameters
    ----------
    optimizer : gg.optim.Optimizer
    schedulers : list of LRScheduler
        All driving ``optimizer``; one more than the milestones.
    milestones : list of int
        The steps at which the next scheduler takes over.
    last_epoch : int, default -1

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=1.0)
    >>> warmup = gg.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = gg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched = gg.optim.lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[2])
    >>> rates = []
    >>> for _ in range(5):
    ...     rates.append(sched.get_last_lr()[0]); sched.step()
    >>> rates
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer("SequentialLR", optimizer)
        schedulers = _check_children("SequentialLR", optimizer, schedulers)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones "
                             f"(the steps where the next one takes over), got {len(milestones)}")
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones {milestones} must be increasing")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        # Building each child took a step; undo them (as PyTorch does) and
        # let the first scheduler take the recording step alone.
        self._undo_steps(self)
        first = self._schedulers[_bisect.bisect_right(self._milestones, 0)]
        _initial_step(first)
        self._last_lr = first.get_last_lr()

    def _undo_steps(self, scheduler):
        if hasattr(scheduler, "_schedulers"):
            for child in scheduler._schedulers:
                self._undo_steps(child)
        else:
            scheduler.last_epoch -= 1

    def step(self):
        """Advance the scheduler in charge; at a milestone the next one starts from its epoch 0."""
        self.last_epoch += 1
        index = _bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            _restart_at(scheduler, 0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        """Own counters plus every child's state dict (under ``"_schedulers"``)."""
        return _combined_state(self)

    def load_state_dict(self, state_dict):
        _load_combined_state(self, state_dict)


class ChainedScheduler(LRScheduler):
    """Step several schedulers together, each multiplying into the same rates.

    Parameters
    ----------
    schedulers : list of LRScheduler
        All driving the same optimizer.
    optimizer : gg.optim.Optimizer, optional
        Defaults to the first scheduler's.

    Examples
    --------
    >>> import gpugrad as gg
    >>> opt = gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=1.0)
    >>> a = gg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> b = gg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    >>> sched = gg.optim.lr_scheduler.ChainedScheduler([a, b])
    >>> for _ in range(2): sched.step()
    >>> round(sched.get_last_lr()[0], 6)
    0.025
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler: needs at least one scheduler")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        _check_optimizer("ChainedScheduler", optimizer)
        self._schedulers = _check_children("ChainedScheduler", optimizer, schedulers)
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self):
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Own fields plus every child's state dict (under ``"_schedulers"``)."""
        return _combined_state(self)

    def load_state_dict(self, state_dict):
        _load_combined_state(self, state_dict)
