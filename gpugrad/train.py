"""A training loop for the common case (``gg.train``): ``fit``, ``evaluate``, ``History``, callbacks.

:func:`fit` runs the loop every PyTorch user writes by hand::

    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

and adds what is tedious to get right: per-epoch loss and metrics on the
training and validation data, a progress bar, learning-rate schedules per
epoch or per batch, callbacks (early stopping, best-model checkpoints), a
warning when user code keeps old graphs alive, and a checkpoint written
atomically at every epoch end from which an interrupted run resumes exactly
(on the CPU the resumed run is bit-for-bit the uninterrupted one).

Examples
--------
>>> import gpugrad as gg
>>> import gpugrad.nn as nn
>>> _ = gg.manual_seed(0)
>>> x = gg.randn(64, 2)
>>> y = (x[:, 0] > 0).long()
>>> loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
>>> model = nn.Linear(2, 2)
>>> opt = gg.optim.SGD(model.parameters(), lr=0.5)
>>> history = gg.train.fit(model, opt, nn.CrossEntropyLoss(), loader, epochs=5, progress=False)
>>> history["loss"][-1] < history["loss"][0]
True
>>> gg.train.evaluate(model, loader, nn.CrossEntropyLoss())["accuracy"] > 0.9
True
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
import warnings
import weakref

import numpy as np

from . import backend
from .amp.training import MixedPrecision
from .autograd.tape import GraphRetainedWarning  # one class for the engine's check and fit's

__all__ = [
    "Callback",
    "EarlyStopping",
    "GraphLeakGuard",
    "GraphRetainedWarning",
    "History",
    "LambdaCallback",
    "ModelCheckpoint",
    "accuracy",
    "evaluate",
    "fit",
    "plot_histories",
    "top5_accuracy",
]

_CHECKPOINT_FORMAT = "gpugrad.train/1"


# ---------------------------------------------------------------------------
# The leak guard.
# ---------------------------------------------------------------------------
class GraphLeakGuard:
    """Warns when the graph behind an earlier step's loss is still alive.

    ``gg.optim`` optimizers already check this in ``step()`` (the engine's
    :class:`gpugrad.GraphRetainedWarning`); the guard is for loops that update
    parameters some other way, and :func:`fit` uses one so that its warning
    points at the code that called ``fit``.  Call :meth:`watch` with each
    step's loss after ``loss.backward()`` (or after the update).  The guard keeps only a weak reference to the
    loss's ``grad_fn``; if that node is still alive one step later, something
    in user code holds the old loss (or a tensor computed from it) and a
    :class:`GraphRetainedWarning` is issued, once per guard.  Graph nodes are
    freed by reference counting, so a correct loop never trips it, with or
    without the garbage collector.

    Examples
    --------
    >>> import warnings
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> guard = gg.train.GraphLeakGuard()
    >>> total = 0.0
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     for step in range(3):
    ...         loss = (w * w).sum()
    ...         loss.backward()
    ...         total += loss            # the mistake: should be loss.item()
    ...         guard.watch(loss)
    >>> [type(c.message).__name__ for c in caught]
    ['GraphRetainedWarning']
    """

    def __init__(self, stacklevel=2):
        self.stacklevel = stacklevel
        self.warned = False
        self._previous = None
        self._step = 0

    def watch(self, loss):
        """Check the previous step's loss is gone, then remember this one's."""
        self._step += 1
        previous, self._previous = self._previous, None
        if previous is not None and previous() is not None and not self.warned:
            self.warned = True
            warnings.warn(
                f"the loss of step {self._step - 1} still holds its autograd graph after step {self._step}: "
                "something keeps a reference to it (typically `total_loss += loss`, or a list of losses), so "
                "every step's graph stays in memory. Accumulate `loss.item()` / `float(loss)` or "
                "`loss.detach()` instead.", GraphRetainedWarning, stacklevel=self.stacklevel)
        grad_fn = getattr(loss, "grad_fn", None)
        if grad_fn is not None:
            try:
                self._previous = weakref.ref(grad_fn)
            except TypeError:       # a node type without weakref support: nothing to watch
                self._previous = None

    def reset(self):
        """Forget the remembered loss (e.g. at an epoch boundary)."""
        self._previous = None


# ---------------------------------------------------------------------------
# Metrics.
# ---------------------------------------------------------------------------
def _as_array(value):
    return value.array if hasattr(value, "data") and not isinstance(value, np.ndarray) else value


def _class_targets(output, target, xp):
    """Targets as class indices: probabilities (same shape as output) are argmax-ed."""
    if target.ndim == output.ndim and target.shape == output.shape and backend.is_floating(target.dtype):
        return xp.argmax(target, axis=1)
    return target


def accuracy(output, target):
    """Fraction of correct predictions in a batch, as a Python float.

    Multiclass logits ``(N, C, ...)`` are compared by argmax over dimension 1;
    binary logits (shape ``(N,)`` or ``(N, 1)``) count as class 1 when > 0.
    Targets are class indices, or probabilities of the output's shape.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.train.accuracy(gg.tensor([[2.0, 1.0], [0.0, 3.0]]), gg.tensor([0, 0]))
    0.5
    >>> gg.train.accuracy(gg.tensor([1.5, -0.5, 2.0]), gg.tensor([1.0, 0.0, 0.0]))
    0.6666666666666666
    """
    correct, count = _accuracy_counts(output, target)
    return int(correct) / max(count, 1)


def _accuracy_counts(output, target):
    """(correct predictions as a 0-d array on the output's device, batch size as an int): no host read."""
    output, target = _as_array(output), _as_array(target)
    xp = backend.xp_of(output)
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        predicted = output.reshape(-1) > 0
        truth = target.reshape(-1) > 0.5 if backend.is_floating(target.dtype) else target.reshape(-1) != 0
    else:
        predicted = xp.argmax(output, axis=1)
        truth = _class_targets(output, target, xp)
    return (predicted == truth).sum(), int(truth.size)


def top5_accuracy(output, target):
    """Fraction of samples whose target is among the 5 largest logits (dimension 1)."""
    correct, count = _topk_counts(output, target, 5)
    return int(correct) / max(count, 1)


def _topk_counts(output, target, k):
    output, target = _as_array(output), _as_array(target)
    xp = backend.xp_of(output)
    truth = _class_targets(output, target, xp)
    k = min(k, output.shape[1])
    top = xp.argpartition(-output, k - 1, axis=1)[:, :k]
    hit = (top == xp.expand_dims(truth, 1)).any(axis=1)
    return hit.sum(), int(hit.size)


class _Metric:
    """A named metric that accumulates (sum, count) over batches.

    ``update`` keeps each batch's sum where it was computed (a 0-d array on the
    device for CuPy outputs: no host read); :meth:`settle` adds the pending sums
    once they are read to the host, in batch order, so the total is the same
    float as adding them one by one.
    """

    def __init__(self, name, counts, scale_by_size=False):
        self.name = name
        self.counts = counts
        self.scale_by_size = scale_by_size      # a callable returns the batch mean: its sum is mean * size
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0
        self.pending = []       # (batch sum or mean, batch size), not yet on the host

    def update(self, output, target):
        total, count = self.counts(output, target)
        self.pending.append((total, count))
        self.count += count

    def settle(self, host_values):
        """Add the pending batch values, given as host numbers in the order of :attr:`pending`."""
        for value, (_, size) in zip(host_values, self.pending):
            self.total += value * size if self.scale_by_size else value
        self.pending = []

    def value(self):
        return self.total / self.count if self.count else float("nan")


def _callable_counts(fn):
    def counts(output, target):
        size = int(_as_array(target).shape[0]) if getattr(_as_array(target), "ndim", 0) else 1
        return fn(output, target), size
    return counts


def _read_to_host(values):
    """Python floats of ``values`` (numbers, 0-d arrays or tensors), with one device read per device.

    Device scalars are stacked (as float64, which holds a float32 loss and an
    integer count exactly) and copied to the host at once; that copy is the
    only synchronisation of a progress refresh.
    """
    raw = [value.array if hasattr(value, "array") and hasattr(value, "grad_fn") else value for value in values]
    host = [None] * len(values)
    on_device = {}
    for index, array in enumerate(raw):
        if backend.is_gpu_array(array):
            on_device.setdefault(backend.device_of(array), []).append(index)
        else:
            host[index] = float(values[index])
    for indices in on_device.values():
        xp = backend.xp_of(raw[indices[0]])
        stacked = xp.stack([raw[index].reshape(()).astype(np.float64) for index in indices])
        for index, number in zip(indices, backend.to_numpy(stacked).tolist()):
            host[index] = number
    return host


def _make_metrics(metrics):
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    items = list(metrics.items()) if isinstance(metrics, dict) else [(None, m) for m in metrics]
    made = []
    for name, metric in items:
        if metric in ("accuracy", "acc"):
            made.append(_Metric(name or "accuracy", _accuracy_counts))
        elif metric in ("top5", "top5_accuracy"):
            made.append(_Metric(name or "top5", lambda o, t: _topk_counts(o, t, 5)))
        elif callable(metric):
            made.append(_Metric(name or getattr(metric, "__name__", type(metric).__name__),
                                _callable_counts(metric), scale_by_size=True))
        else:
            raise ValueError(f"fit/evaluate: unknown metric {metric!r}; use 'accuracy', 'top5', a callable "
                             "(output, target) -> float (the batch mean), or a dict {name: callable}")
    names = [m.name for m in made]
    if len(set(names)) != len(names) or {"loss", "lr", "time", "epoch", "step"} & set(names):
        raise ValueError(f"fit/evaluate: metric names {names} must be distinct and not one of loss, lr, time, "
                         "epoch, step; pass a dict {name: metric} to rename them")
    return made


# ---------------------------------------------------------------------------
# History and plots.
# ---------------------------------------------------------------------------
class History:
    """Per-epoch records of a :func:`fit` run.

    ``history["loss"]`` is the list of mean training losses, one per epoch;
    likewise ``"val_loss"``, each metric (``"accuracy"``, ``"val_accuracy"``),
    ``"lr"`` (the learning rate of the first parameter group at the epoch's
    last optimizer step), ``"time"`` (seconds the epoch took, validation
    included) and ``"step"`` (optimizer steps done by the epoch's end).

    Examples
    --------
    >>> h = History()
    >>> h.append(0, {"loss": 2.0, "accuracy": 0.5})
    >>> h.append(1, {"loss": 1.0, "accuracy": 0.75})
    >>> h["loss"], h.epochs, h.last()["accuracy"]
    ([2.0, 1.0], [0, 1], 0.75)
    >>> History.from_dict(h.to_dict())["accuracy"]
    [0.5, 0.75]
    """

    def __init__(self):
        self.epochs = []
        self.history = {}

    def append(self, epoch, logs):
        """Record one epoch's ``logs`` (a dict of floats)."""
        index = len(self.epochs)
        self.epochs.append(int(epoch))
        for key, value in logs.items():
            column = self.history.setdefault(key, [float("nan")] * index)
            column.append(float(value))
        for column in self.history.values():
            if len(column) < index + 1:
                column.append(float("nan"))

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __iter__(self):
        return iter(self.history)

    def __len__(self):
        return len(self.epochs)

    def keys(self):
        return self.history.keys()

    def last(self):
        """The latest epoch's record as a dict (empty before the first epoch)."""
        return {key: column[-1] for key, column in self.history.items()} if self.epochs else {}

    def to_dict(self):
        """Plain lists and floats: JSON-able and ``gg.save``-able."""
        return {"epochs": list(self.epochs), "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, state):
        history = cls()
        history.epochs = [int(e) for e in state["epochs"]]
        history.history = {str(k): [float(x) for x in v] for k, v in state["history"].items()}
        return history

    def plot(self, path, title=None):
        """Write the loss curves (and metric curves, if any) to ``path`` (PNG, SVG, PDF).

        Uses matplotlib's Agg canvas directly, so it works without a display
        and leaves pyplot's global state alone.  Returns ``path``.
        """
        return plot_histories({"": self}, path, title=title)

    def __repr__(self):
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items() if k not in ("time", "step"))
        return f"History({len(self)} epochs{': ' + last if last else ''})"


def plot_histories(histories, path, title=None):
    """Plot several runs side by side: losses in the top row, metrics below.

    Parameters
    ----------
    histories : dict of str -> History
        One column per run (the key is its title).
    path : str
        Output file; the format follows the extension.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is optional
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = list(histories.items())
    metric_keys = []
    for _, history in runs:
        for key in history:
            base = key.removeprefix("val_")
            if base not in ("loss", "lr", "time", "step") and base not in metric_keys:
                metric_keys.append(base)
    rows = 2 if metric_keys else 1
    figure = Figure(figsize=(4.2 * len(runs), 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, len(runs), squeeze=False)
    for column, (name, history) in enumerate(runs):
        x = [e + 1 for e in history.epochs]
        loss_axis = axes[0][column]
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if key in history:
                loss_axis.plot(x, history[key], style, label=key.replace("_", " "))
        loss_axis.set_title(f"{name} loss" if name else "loss")
        loss_axis.set_xlabel("epoch")
        loss_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        shown = [v for key in ("loss", "val_loss") for v in history.history.get(key, []) if math.isfinite(v)]
        if shown and min(shown) > 0 and max(shown) / min(shown) > 20:     # log scale only for wide ranges
            loss_axis.set_yscale("log")
        loss_axis.grid(alpha=0.3)
        loss_axis.legend()
        if rows == 2:
            metric_axis = axes[1][column]
            for base in metric_keys:
                for key, style in ((base, "-"), (f"val_{base}", "--")):
                    if key in history:
                        metric_axis.plot(x, history[key], style, label=key.replace("_", " "))
            metric_axis.set_title(f"{name} metrics" if name else "metrics")
            metric_axis.set_xlabel("epoch")
            metric_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            metric_axis.grid(alpha=0.3)
            metric_axis.legend()
    if title:
        figure.suptitle(title)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------------
# Callbacks.
# ---------------------------------------------------------------------------
class Callback:
    """Base class of fit's callbacks; override any of the hooks.

    During :func:`fit`, ``self.trainer`` is the run's state: ``model``,
    ``optimizer``, ``scheduler``, ``history``, ``epoch``, ``step`` and
    ``stop_training`` (set it True to end the run after the current epoch).
    ``logs`` is the epoch's record (``loss``, ``val_loss``, metrics, ``lr``).
    A callback with state that matters for resuming (counters, best values)
    returns it from :meth:`state_dict`; fit stores it in the checkpoint, and
    a resumed run must pass callbacks of the same classes with state (those
    overriding ``state_dict``), in the same order, or the resume is refused.
    """

    trainer = None

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, step, logs=None):
        pass

    def on_batch_end(self, step, logs=None):
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        for name, hook in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, hook)


def _resolve_mode(owner, monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode={mode!r} must be 'min', 'max' or 'auto'")
    if mode == "auto":
        mode = "min" if "loss" in monitor or "error" in monitor else "max"
    return mode


def _monitored(owner, monitor, logs):
    if monitor not in logs:
        raise KeyError(f"{owner}: monitor={monitor!r} is not among this run's logs {sorted(logs)}; "
                       "pass val_loader= to fit for 'val_*' keys, or monitor one of those")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
    patience : int, default 0
        Epochs without improvement tolerated before stopping.
    min_delta : float, default 0
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        ``auto``: minimise losses/errors, maximise anything else.
    restore_best_weights : bool, default False
        At the end, load the model state of the best epoch.
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience={patience} must be >= 0")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.mode = _resolve_mode("EarlyStopping", monitor, mode)
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self._best_state = None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored("EarlyStopping", self.monitor, logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_state = {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stopped_epoch = epoch
                self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_state is not None and self.stopped_epoch is not None:
            self.trainer.model.load_state_dict(self._best_state)

    def state_dict(self):
        """Counters, the best value and epoch, and (with restore_best_weights) the best weights."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_state": self._best_state}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`; everything is checked before anything changes."""
        owner = "EarlyStopping.load_state_dict"
        if not isinstance(state, dict) or not {"best", "best_epoch", "wait"} <= set(state):
            raise ValueError(f"{owner}: expected a dict with 'best', 'best_epoch' and 'wait' (from "
                             f"EarlyStopping.state_dict()), got {state!r:.100}")
        best = state["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real) or math.isnan(best):
            raise ValueError(f"{owner}: best={best!r} must be a number (not NaN)")
        for key in ("best_epoch", "stopped_epoch"):
            value = state.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
                raise ValueError(f"{owner}: {key}={value!r} must be None or an epoch number >= 0")
        wait = state["wait"]
        if isinstance(wait, bool) or not isinstance(wait, numbers.Integral) or wait < 0:
            raise ValueError(f"{owner}: wait={wait!r} must be an integer >= 0")
        best_state = state.get("best_state")
        if best_state is not None and not (isinstance(best_state, dict)
                                           and all(hasattr(v, "shape") for v in best_state.values())):
            raise ValueError(f"{owner}: best_state must be None or a model state dict of tensors")
        if self.restore_best_weights and best_state is None and state["best_epoch"] is not None:
            raise ValueError(f"{owner}: restore_best_weights=True but the saved state has no best weights "
                             f"(it was saved with restore_best_weights=False); the best epoch "
                             f"{state['best_epoch']}'s weights cannot be restored")
        self.best, self.best_epoch, self.wait = float(best), state["best_epoch"], int(wait)
        self.stopped_epoch = state.get("stopped_epoch")
        self._best_state = best_state if self.restore_best_weights else None


class ModelCheckpoint(Callback):
    """Save the model's ``state_dict`` with ``gg.save`` at epoch ends.

    Parameters
    ----------
    path : str
        May hold format fields filled from the epoch's logs, e.g.
        ``"ckpt/model-{epoch:03d}-{val_loss:.3f}.safetensors"`` (``epoch``
        counts from 1 here, as in file names people expect).
    monitor : str, default "val_loss"
    save_best_only : bool, default False
        Save only when ``monitor`` improves on the best value so far.
    mode : {"auto", "min", "max"}
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _resolve_mode("ModelCheckpoint", monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        from .io import save
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        save(self.trainer.model.state_dict(), path)
        self.saved.append(path)

    def state_dict(self):
        return {"best": self.best, "saved": list(self.saved)}

    def load_state_dict(self, state):
        best = state.get("best") if isinstance(state, dict) else None
        if isinstance(best, bool) or not isinstance(best, numbers.Real) or math.isnan(best):
            raise ValueError(f"ModelCheckpoint.load_state_dict: expected {{'best': number}} (from "
                             f"ModelCheckpoint.state_dict()), got {state!r:.100}")
        saved = state.get("saved", [])
        if not (isinstance(saved, list) and all(isinstance(path, str) for path in saved)):
            raise ValueError("ModelCheckpoint.load_state_dict: 'saved' must be a list of paths")
        self.best, self.saved = float(best), list(saved)


# ---------------------------------------------------------------------------
# Progress reporting.
# ---------------------------------------------------------------------------
class _Progress:
    """A tqdm bar over all steps on a terminal; plain lines without tqdm; silence otherwise.

    ``progress`` is True (bar on a terminal, else quiet), False (quiet),
    ``"bar"`` (a tqdm bar even when not on a terminal), or ``"lines"`` (one
    plain line per epoch).
    """

    def __init__(self, progress, total, initial, description):
        self.bar = None
        self.lines = False
        if progress is False or progress is None:
            return
        if progress not in (True, "bar", "lines"):
            raise ValueError(f"fit: progress={progress!r} must be True, False, 'bar' or 'lines'")
        on_terminal = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        if progress == "lines" or (progress is True and not on_terminal):
            self.lines = progress == "lines"
            return
        try:
            from tqdm.auto import tqdm  # lazy: tqdm is optional
        except ImportError:
            self.lines = True
            return
        self.bar = tqdm(total=total, initial=initial, desc=description, unit="step", dynamic_ncols=True,
                        leave=True, file=sys.stderr)

    def advance(self):
        """One more step done (no loss: reading it would wait for the device)."""
        if self.bar is not None:
            self.bar.update(1)

    def show_loss(self, loss):
        """The latest batch loss, shown at each refresh."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def epoch(self, epoch, epochs, logs):
        text = " ".join(f"{k} {v:.4g}" for k, v in logs.items() if k not in ("step",))
        if self.bar is not None:
            # Short enough for a narrow terminal: the losses and the validation metrics.
            shown = {k: v for k, v in logs.items() if k in ("loss", "val_loss") or (k.startswith("val_"))}
            self.bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} " +
                                     " ".join(f"{k} {v:.3g}" for k, v in shown.items()))
        elif self.lines:
            print(f"epoch {epoch + 1}/{epochs}: {text}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------
# The loops.
# ---------------------------------------------------------------------------
class _Trainer:
    """The state callbacks see (``callback.trainer``)."""

    def __init__(self, model, optimizer, scheduler, history):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.history = history
        self.epoch = 0
        self.step = 0
        self.stop_training = False


def _split_batch(batch):
    if isinstance(batch, dict):
        if "input" in batch and "target" in batch:
            return batch["input"], batch["target"]
        raise ValueError(f"fit/evaluate: a dict batch needs keys 'input' and 'target', got {sorted(batch)}")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError("fit/evaluate: each batch must be (inputs, targets), e.g. from "
                     f"DataLoader(TensorDataset(x, y)); got a {type(batch).__name__}"
                     f"{' of length ' + str(len(batch)) if isinstance(batch, (tuple, list)) else ''}")


def _to_device(value, device):
    if device is None:
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if hasattr(value, "device") and hasattr(value, "to") and value.device != device:
        return value.to(device)
    return value


def _forward(model, inputs):
    return model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)


def _batch_size(target):
    shape = getattr(target, "shape", ())
    return int(shape[0]) if len(shape) else 1


def evaluate(model, loader, loss_fn=None, metrics=("accuracy",), device=None):
    """Mean loss and metrics of ``model`` over ``loader``, in eval mode without gradients.

    Returns ``{"loss": ..., "accuracy": ...}`` (``loss`` only when ``loss_fn``
    is given).  The model's training mode is restored afterwards.  The loss
    is averaged per sample (batches weighted by their size), so it assumes a
    ``reduction="mean"`` loss.  Batch losses and metric sums stay on the
    device until the end: one host read per evaluation.
    """
    from .autograd.tape import no_grad
    device = None if device is None else backend.as_device(device)
    sums = _EpochSums(_make_metrics(metrics))
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            for batch in loader:
                inputs, target = _split_batch(batch)
                inputs, target = _to_device(inputs, device), _to_device(target, device)
                output = _forward(model, inputs)
                loss = None if loss_fn is None else _detached(loss_fn(output, target))
                sums.add(loss, _batch_size(target), output, target)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    sums.settle()
    results = {}
    if loss_fn is not None:
        results["loss"] = sums.mean_loss()
    for metric in sums.metrics:
        results[metric.name] = metric.value()
    return results


def _detached(value):
    return value.detach() if hasattr(value, "detach") else value


class _EpochSums:
    """An epoch's (or an evaluation's) loss and metric sums.

    Batch values are kept as they come (0-d device arrays on CuPy) and read to
    the host together by :meth:`settle`, in batch order, so the sums are the
    same floats as reading each batch at once.
    """

    def __init__(self, metrics):
        self.metrics = metrics
        for metric in metrics:
            metric.reset()
        self.loss_sum, self.count = 0.0, 0
        self.pending = []       # (loss, batch size, optimizer step or None), not yet on the host

    def add(self, loss, size, output, target, step=None):
        if loss is not None:
            self.pending.append((loss, size, step))
        self.count += size
        for metric in self.metrics:
            metric.update(output, target)

    def settle(self):
        """Read every pending value to the host (one copy per device); return [(step, loss)] in order."""
        values = [loss for loss, _, _ in self.pending]
        for metric in self.metrics:
            values.extend(value for value, _ in metric.pending)
        if not values:
            return []
        host = _read_to_host(values)
        settled = []
        for (_, size, step), value in zip(self.pending, host):
            self.loss_sum += value * size
            settled.append((step, value))
        offset = len(self.pending)
        for metric in self.metrics:
            count = len(metric.pending)
            metric.settle(host[offset:offset + count])
            offset += count
        self.pending = []
        return settled

    def mean_loss(self):
        return self.loss_sum / self.count if self.count else float("nan")

    def position(self):
        """The settled sums as a mid-epoch checkpoint stores them."""
        return {"loss_sum": self.loss_sum, "count": self.count,
                "metrics": [[metric.total, metric.count] for metric in self.metrics]}

    def restore(self, position):
        self.loss_sum, self.count = position["loss_sum"], position["count"]
        for metric, (metric_total, metric_count) in zip(self.metrics, position["metrics"]):
            metric.total, metric.count = metric_total, metric_count


class _FitRun:
    """What one :func:`fit` call works with: the epoch and batch steps below read it."""

    def __init__(self, trainer, loss_fn, train_loader, val_loader, epochs, metrics, metric_spec, callbacks,
                 checkpoint, bar, device, scheduler_step, plateau, max_steps, batches_per_epoch, log_every):
        self.trainer, self.loss_fn = trainer, loss_fn
        self.train_loader, self.val_loader, self.epochs = train_loader, val_loader, epochs
        self.metrics, self.metric_spec, self.callbacks = metrics, metric_spec, callbacks
        self.checkpoint, self.bar, self.device = checkpoint, bar, device
        self.scheduler_step, self.plateau, self.max_steps = scheduler_step, plateau, max_steps
        self.batches_per_epoch, self.log_every = batches_per_epoch, log_every
        # watch -> _train_step -> _train_batches -> _run_epoch -> fit -> the caller of fit
        self.guard = GraphLeakGuard(stacklevel=6)
        self.warned_nonfinite = False
        # Callbacks that look at each batch get its loss as a float, read every step.
        self.batch_callbacks = [callback for callback in callbacks if _overrides(callback, "on_batch_end")]

    def out_of_steps(self):
        return self.max_steps is not None and self.trainer.step >= self.max_steps

    def refresh(self, sums):
        """Read the pending batch values (the one host synchronisation), warn on a non-finite
        loss, show the latest loss; return it (None if nothing was pending)."""
        latest = None
        for step, loss_value in sums.settle():
            latest = loss_value
            if not math.isfinite(loss_value) and not self.warned_nonfinite:
                self.warned_nonfinite = True
                warnings.warn(f"fit: the training loss is {loss_value} at step {step}; lower the learning rate, "
                              "or look for log(0) / division by zero in the model or loss", RuntimeWarning,
                              stacklevel=_caller_stacklevel())
        if latest is not None:
            self.bar.show_loss(latest)
        return latest


def _overrides(callback, hook):
    return getattr(type(callback), hook) is not getattr(Callback, hook) or hook in vars(callback)


def _caller_stacklevel():
    """The ``stacklevel`` that points a warning at the first frame outside this module."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def fit(model, optimizer, loss_fn, train_loader, val_loader=None, epochs=1, metrics=("accuracy",),
        scheduler=None, callbacks=(), checkpoint=None, progress=True, device=None, scheduler_step="epoch",
        resume=None, max_steps=None, description=None, log_every=50, amp=None):
    """Train ``model`` for ``epochs`` passes over ``train_loader``; returns a :class:`History`.

    Parameters
    ----------
    model : gg.nn.Module (or any callable with ``train``/``eval``/``state_dict``)
    optimizer : gg.optim.Optimizer
    loss_fn : callable ``(output, target) -> scalar Tensor`` (mean over the batch)
    train_loader : iterable of ``(inputs, targets)`` batches
        Typically a ``gg.data.DataLoader`` with ``shuffle=True``; its
        ``state_dict`` (the epoch, hence the shuffle order) goes into checkpoints.
        A loader whose ``sampler`` has ``set_epoch`` (``DistributedSampler``)
        gets ``sampler.set_epoch(epoch)`` before each epoch.
    val_loader : iterable of batches, optional
        Evaluated at each epoch end (``val_loss``, ``val_<metric>``).
    epochs : int
        Total epochs of the run (a resumed run counts those already done).
    metrics : sequence of "accuracy", "top5", callables, or a dict {name: metric}
        Computed on training batches (from the outputs of the training step,
        as Keras does) and on ``val_loader``.
    scheduler : gg.optim.lr_scheduler scheduler, optional
    scheduler_step : {"epoch", "batch"}
        Step the scheduler after every epoch (``ReduceLROnPlateau`` gets
        ``val_loss``, else ``loss``) or after every optimizer step.
    callbacks : sequence of :class:`Callback`
    checkpoint : str, optional
        Path of a checkpoint written atomically (``gg.save``) at every epoch
        end, and when ``max_steps`` stops the run inside an epoch: model,
        optimizer, scheduler, random-generator and loader states, callback
        states, the history, and (mid-epoch) the batches done and the
        epoch's running sums.
    resume : bool or None
        ``None`` (default): resume when ``checkpoint`` exists.  ``True``: it
        must exist.  ``False``: start afresh and overwrite it.  A resumed run
        continues exactly where the saved one stopped (inside an epoch: with
        its next batch): on the CPU, the parameters after an interrupted, or
        ``max_steps``-chunked, and resumed run equal those of an uninterrupted
        run bit for bit.  Resuming is all or nothing: the checkpoint is
        checked, and if any part is refused (a state dict that does not fit,
        callbacks with state other than the saved ones, a scheduler given or
        dropped) everything is left as it was and the error names the part.
    progress : True, False, "bar" or "lines"
        True: a tqdm progress bar when stderr is a terminal (one plain line per
        epoch if tqdm is not installed), quiet otherwise.
    device : str or gg.Device, optional
        Move the model and each batch there.
    max_steps : int, optional
        Stop after this many optimizer steps in total (the last epoch may be
        partial: its record in the returned history covers the batches done;
        the checkpoint keeps the epoch open, so a later ``fit`` with a larger
        ``max_steps`` finishes it); ``epochs`` then only bounds the run.
    description : str, optional
        Label of the progress bar.
    log_every : int, default 50
        Steps between progress refreshes.  The batch losses and metric sums
        stay on the model's device between refreshes and are read to the host
        in one copy at each refresh and at the epoch's end, so a GPU run does
        not wait for the GPU every step (callbacks that override
        ``on_batch_end`` get each batch's loss as a float, which reads it every
        step).  The history, the checkpoints and every number are the same
        for any ``log_every``.
    amp : {"bf16", "fp16", None}
        Mixed precision: the forward pass and the loss under ``gg.autocast``
        in bfloat16 or float16 (parameters stay float32); ``"fp16"`` adds a
        ``gg.amp.GradScaler``, whose state the checkpoint keeps.

    Returns
    -------
    History
        ``history["loss"]``, ``["val_loss"]``, ``["accuracy"]``, ``["lr"]``,
        ``["time"]``, ... one value per epoch.

    Raises
    ------
    ValueError
        The training loader yields no batch (e.g. ``drop_last=True`` with
        fewer samples than ``batch_size``), or a checkpoint cannot be resumed.

    Warns
    -----
    GraphRetainedWarning
        When an earlier step's loss still holds its graph after the next
        step's backward (e.g. ``loss_fn`` keeps every loss in a list).
    """
    callbacks = _check_fit_arguments(epochs, max_steps, scheduler_step, checkpoint, resume, callbacks,
                                     log_every)
    batches_per_epoch = _batches_per_epoch(train_loader)
    device = None if device is None else backend.as_device(device)
    if device is not None and hasattr(model, "to"):
        model.to(device)
    made = _make_metrics(metrics)
    plateau = scheduler is not None and type(scheduler).__name__ == "ReduceLROnPlateau"
    if plateau and scheduler_step == "batch":
        raise ValueError("fit: ReduceLROnPlateau steps on a monitored value once per epoch; use "
                         "scheduler_step='epoch' with it")
    trainer = _Trainer(model, optimizer, scheduler, History())
    # Mixed precision (amp=): autocast around forward and loss, a GradScaler for fp16 (see _train_step).
    trainer.mixed_precision = MixedPrecision.for_model(amp, model, device)
    checkpoint = None if checkpoint is None else os.fspath(checkpoint)
    start_epoch, resumed = _resume(checkpoint, resume, trainer, train_loader, val_loader, callbacks, made)
    total = None
    if batches_per_epoch is not None:
        total = epochs * batches_per_epoch if max_steps is None else min(epochs * batches_per_epoch, max_steps)
    bar = _Progress(progress, total, min(trainer.step, total) if total is not None else trainer.step, description)
    run = _FitRun(trainer, loss_fn, train_loader, val_loader, epochs, made, metrics, callbacks, checkpoint, bar,
                  device, scheduler_step, plateau, max_steps, batches_per_epoch, log_every)
    for callback in callbacks:
        callback.set_trainer(trainer)
        callback.on_train_begin({})
    logs = trainer.history.last()
    with warnings.catch_warnings():
        # gg.optim's step() runs the engine's own check, which would report the same
        # graph a second time and point inside this file; the guard's warning names
        # the caller of fit.
        # (amp: the step's backward and optimizer step run in gpugrad/amp/training.py.)
        warnings.filterwarnings("ignore", category=GraphRetainedWarning, module=r"gpugrad\.(train|amp\.training)$")
        try:
            for epoch in range(start_epoch, epochs):
                if trainer.stop_training or run.out_of_steps():
                    break
                position, resumed = resumed, None
                logs = _run_epoch(run, epoch, position)
        finally:
            bar.close()
    for callback in callbacks:
        callback.on_train_end(logs)
    return trainer.history


def _check_fit_arguments(epochs, max_steps, scheduler_step, checkpoint, resume, callbacks, log_every):
    """Refuse bad options before anything runs; return the callbacks as a list."""
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_step={scheduler_step!r} must be 'epoch' or 'batch'")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"fit: epochs={epochs!r} must be a non-negative integer")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)
                                  or max_steps < 0):
        raise ValueError(f"fit: max_steps={max_steps!r} must be a non-negative integer or None")
    if isinstance(log_every, bool) or not isinstance(log_every, numbers.Integral) or log_every < 1:
        raise ValueError(f"fit: log_every={log_every!r} must be a positive integer (steps between progress "
                         "refreshes)")
    if checkpoint is None and resume:
        raise ValueError("fit: resume=True needs checkpoint=<path> to resume from")
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"fit: callbacks must be gg.train.Callback instances, got {type(callback).__name__}")
    return callbacks


def _batches_per_epoch(train_loader):
    """``len(train_loader)`` (None without one); an empty loader is refused."""
    try:
        batches_per_epoch = len(train_loader)
    except TypeError:
        return None
    if batches_per_epoch == 0:
        raise ValueError(f"fit: the training loader yields no batch ({_describe_empty(train_loader)}), so "
                         "there is nothing to train on; lower batch_size, set drop_last=False, or check the data")
    return batches_per_epoch


def _resume(checkpoint, resume, trainer, train_loader, val_loader, callbacks, made):
    """(first epoch, mid-epoch position or None) after resuming from ``checkpoint`` if asked to."""
    from .io import load
    if checkpoint is None:
        return 0, None
    exists = os.path.exists(checkpoint)
    if resume and not exists:
        raise FileNotFoundError(f"fit: resume=True but the checkpoint {checkpoint!r} does not exist")
    if not exists or resume is False:
        return 0, None
    state = load(checkpoint)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"fit: {checkpoint!r} is not a fit() checkpoint (no format "
                         f"{_CHECKPOINT_FORMAT!r}); pass resume=False to overwrite it")
    position = _restore(state, trainer, train_loader, val_loader, callbacks, made, checkpoint)
    return int(state["epoch"]), position


class _Epoch:
    """One epoch's running state."""

    def __init__(self, run, epoch):
        self.epoch = epoch
        self.sums = _EpochSums(run.metrics)
        self.lr = run.trainer.optimizer.param_groups[0]["lr"]
        self.started = time.perf_counter()
        self.batches_done = 0
        self.stopped_inside = False     # max_steps ended the run inside the epoch
        self.rng_at_stop = None


def _run_epoch(run, epoch, position):
    """Train one epoch (resuming inside it at ``position``), validate, record and checkpoint; return its logs."""
    from .io import save
    trainer, callbacks = run.trainer, run.callbacks
    trainer.epoch = epoch
    if position is None:        # a resumed epoch began in the saved run (its callbacks' state shows it)
        for callback in callbacks:
            callback.on_epoch_begin(epoch, {})
    state = _Epoch(run, epoch)
    if hasattr(trainer.model, "train"):
        trainer.model.train()
    run.guard.reset()
    sampler = getattr(run.train_loader, "sampler", None)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        # DistributedSampler draws each epoch's order from (seed, epoch), the same
        # on every rank: without this every epoch would repeat epoch 0's order.
        sampler.set_epoch(epoch)
    # Where this epoch's order comes from, for a checkpoint written mid-epoch.
    epoch_loader_state = _loader_state(run.train_loader) if run.checkpoint is not None else None
    batches = iter(run.train_loader)
    if position is not None:
        # Resume inside the epoch: replay its order past the batches already
        # trained on, take back its running sums, and only then the random
        # state of the moment it stopped (fetching may have drawn from it).
        state.batches_done = _skip_batches(batches, position["batches_done"], run.checkpoint)
        state.sums.restore(position)
        state.lr = position["lr"]
        state.started -= position["elapsed"]
        _restore_rng(position["rng"])
    _train_batches(run, state, batches)
    if state.batches_done == 0:
        raise ValueError(f"fit: the training loader yielded no batch in epoch {epoch} "
                         f"({_describe_empty(run.train_loader)}); nothing was trained in this epoch. "
                         "Lower batch_size, set drop_last=False, or check the data")
    run.refresh(state.sums)
    if state.stopped_inside and run.checkpoint is not None:
        # max_steps ended the run inside the epoch: a checkpoint of this very
        # moment, from which the next run continues with the next batch.
        position = dict(state.sums.position(), batches_done=state.batches_done, lr=state.lr,
                        elapsed=time.perf_counter() - state.started, rng=state.rng_at_stop)
        save(_snapshot(trainer, epoch, epoch_loader_state, run.val_loader, callbacks, position), run.checkpoint)
    logs = _epoch_logs(run, state)
    trainer.history.append(epoch, logs)
    for callback in callbacks:
        callback.on_epoch_end(epoch, logs)
    run.bar.epoch(epoch, run.epochs, logs)
    if run.checkpoint is not None and not state.stopped_inside:
        save(_snapshot(trainer, epoch + 1, _loader_state(run.train_loader), run.val_loader, callbacks, None),
             run.checkpoint)
    return logs


def _train_batches(run, state, batches):
    """The epoch's optimizer steps; batch values stay on the device until a refresh reads them."""
    trainer, callbacks = run.trainer, run.callbacks
    for batch in batches:
        for callback in callbacks:
            callback.on_batch_begin(trainer.step, {})
        inputs, target = _split_batch(batch)
        inputs, target = _to_device(inputs, run.device), _to_device(target, run.device)
        output, loss, state.lr = _train_step(run, inputs, target)
        trainer.step += 1
        state.batches_done += 1
        state.sums.add(loss.detach(), _batch_size(target), _detached(output), target, step=trainer.step)
        del output, loss
        run.bar.advance()
        if run.batch_callbacks:
            loss_value = run.refresh(state.sums)
            for callback in run.batch_callbacks:
                callback.on_batch_end(trainer.step, {"loss": loss_value})
        elif trainer.step % run.log_every == 0:
            run.refresh(state.sums)
        if run.out_of_steps():
            # Stop without fetching the next batch (that could draw random numbers).
            state.rng_at_stop = _capture_rng() if run.checkpoint is not None else None
            state.stopped_inside = not _epoch_is_over(batches, state.batches_done, run.batches_per_epoch)
            break


def _train_step(run, inputs, target):
    """One optimizer step on one batch: ``(output, loss, lr the step used)``.

    The one place that runs forward, backward and the update, so a gradient
    scaler (mixed precision) can wrap ``backward`` and ``optimizer.step``.
    """
    trainer = run.trainer
    optimizer, scheduler = trainer.optimizer, trainer.scheduler
    mixed = trainer.mixed_precision
    optimizer.zero_grad()
    with mixed.autocast():
        output = _forward(trainer.model, inputs)
        loss = run.loss_fn(output, target)
    mixed.backward(loss)        # loss.backward(), scaled for fp16
    run.guard.watch(loss)
    lr = optimizer.param_groups[0]["lr"]
    mixed.step(optimizer)       # optimizer.step(), skipped by the scaler on inf/NaN gradients
    if scheduler is not None and run.scheduler_step == "batch":
        scheduler.step()
    return output, loss, lr


def _epoch_logs(run, state):
    """The epoch's record: training sums (settled), validation, lr, scheduler step, time and step."""
    logs = {"loss": state.sums.loss_sum / state.sums.count}
    for metric in run.metrics:
        logs[metric.name] = metric.value()
    if run.val_loader is not None:
        for key, value in evaluate(run.trainer.model, run.val_loader, run.loss_fn, run.metric_spec,
                                   device=run.device).items():
            logs[f"val_{key}"] = value
    logs["lr"] = state.lr
    scheduler = run.trainer.scheduler
    if scheduler is not None and run.scheduler_step == "epoch":
        if run.plateau:
            scheduler.step(logs.get("val_loss", logs["loss"]))
        else:
            scheduler.step()
    logs["time"] = time.perf_counter() - state.started
    logs["step"] = run.trainer.step
    return logs


def _describe_empty(loader):
    dataset = getattr(loader, "dataset", None)
    try:
        size = len(dataset) if dataset is not None else None
    except TypeError:
        size = None
    parts = []
    if size is not None:
        parts.append(f"{size} sample(s)")
    for name in ("batch_size", "drop_last"):
        if hasattr(loader, name):
            parts.append(f"{name}={getattr(loader, name)!r}")
    return ", ".join(parts) if parts else f"a {type(loader).__name__}"


def _skip_batches(batches, count, checkpoint):
    for done in range(count):
        if next(batches, _END) is _END:
            raise ValueError(f"fit: the checkpoint {checkpoint!r} stopped after batch {count} of its epoch, but the "
                             f"training loader now yields only {done} batch(es) in that epoch; resume with the "
                             "loader (dataset, batch_size, drop_last) of the saved run, or resume=False")
    return count


def _epoch_is_over(batches, batches_done, batches_per_epoch):
    if batches_per_epoch is not None:
        return batches_done >= batches_per_epoch
    return next(batches, _END) is _END      # a loader without len(): look one batch ahead


_END = object()


def _loader_state(loader):
    return loader.state_dict() if hasattr(loader, "state_dict") else None


# ---------------------------------------------------------------------------
# The random state in checkpoints (one place, so that a new stream, e.g. the
# CUDA generators, is added here only).
# ---------------------------------------------------------------------------
def _capture_rng():
    """The random state a checkpoint stores (``backend.get_rng_state()``)."""
    return backend.get_rng_state()


def _restore_rng(state, check_only=False):
    """Check ``state`` in full on a scratch generator; then (unless ``check_only``) make it current."""
    if not (isinstance(state, dict) and "cpu" in state and isinstance(state["cpu"], dict)):
        raise ValueError(f"fit: the checkpoint's random state must be a dict with a 'cpu' generator state "
                         f"(from backend.get_rng_state()), got {str(state)[:100]}")
    seed = state.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"fit: the checkpoint's random seed {seed!r} is not an integer or None")
    scratch = type(backend.generator(backend.CPU).bit_generator)()
    try:
        scratch.state = state["cpu"]
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"fit: the checkpoint's CPU random state is not a valid "
                         f"{type(scratch).__name__} state ({error})") from None
    if not check_only:
        backend.set_rng_state(state)


# ---------------------------------------------------------------------------
# Checkpoints.
# ---------------------------------------------------------------------------
def _is_stateful(callback):
    """Whether the callback has state to resume (its class overrides state_dict)."""
    return type(callback).state_dict is not Callback.state_dict


def _callback_name(callback):
    return f"{type(callback).__module__}.{type(callback).__qualname__}"


def _snapshot(trainer, epoch, train_loader_state, val_loader, callbacks, position):
    """The checkpoint: at an epoch end (``position`` None, ``epoch`` = epochs done), or inside
    epoch ``epoch`` after ``position["batches_done"]`` batches (``train_loader_state`` is then the
    loader's state when that epoch began, so its order is replayed)."""
    return {
        "format": _CHECKPOINT_FORMAT,
        "epoch": epoch,
        "step": trainer.step,
        "stop_training": trainer.stop_training,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "grad_scaler": trainer.mixed_precision.state_dict(),    # cross-owner hook (amp)
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "rng": _capture_rng() if position is None else position["rng"],
        "train_loader": train_loader_state,
        "val_loader": _loader_state(val_loader) if val_loader is not None else None,
        "callbacks": [{"type": _callback_name(callback), "stateful": _is_stateful(callback),
                       "state": callback.state_dict()} for callback in callbacks],
        "history": trainer.history.to_dict(),
        "position": None if position is None else {key: value for key, value in position.items() if key != "rng"},
    }


def _is_count(value):
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 0


def _check_checkpoint(state, trainer, callbacks, made, path):
    """Everything about ``state`` that can be checked without changing anything."""
    def refuse(message):
        raise ValueError(f"fit: cannot resume from {path!r}: {message}; nothing was changed "
                         "(pass resume=False to start afresh and overwrite it)")

    for key in ("epoch", "step"):
        if not _is_count(state.get(key)):
            refuse(f"its {key!r} is {state.get(key)!r}, not an integer >= 0")
    for key in ("model", "optimizer", "history"):
        if not isinstance(state.get(key), dict):
            refuse(f"its {key!r} entry is a {type(state.get(key)).__name__}, not a dict")
    if trainer.scheduler is not None and state.get("scheduler") is None:
        refuse("the checkpoint was written without a scheduler, but one was given now")
    if trainer.scheduler is None and state.get("scheduler") is not None:
        refuse("the checkpoint was written with a learning-rate scheduler, but none was given now (the "
               "schedule would silently stop); pass the same scheduler")
    saved = state.get("callbacks") or []
    if not (isinstance(saved, list) and all(isinstance(entry, dict) and {"type", "state"} <= set(entry)
                                            for entry in saved)):
        refuse("its callback states are not in the layout fit writes ([{'type', 'state'}, ...])")
    saved_types = [entry["type"] for entry in saved if entry.get("stateful", True)]
    own_types = [_callback_name(callback) for callback in callbacks if _is_stateful(callback)]
    if saved_types != own_types:
        short = lambda names: [name.rsplit(".", 1)[-1] for name in names]     # noqa: E731
        refuse(f"it holds the state of the callbacks {short(saved_types)} but this run has {short(own_types)} "
               "(callbacks with state, in order); pass the same callbacks in the same order")
    try:
        _restore_rng(state.get("rng"), check_only=True)
    except ValueError as error:
        refuse(str(error).removeprefix("fit: "))
    position = state.get("position")
    if position is not None:
        fields = {"batches_done", "loss_sum", "count", "lr", "metrics", "elapsed"}
        if not (isinstance(position, dict) and fields <= set(position) and _is_count(position["batches_done"])
                and position["batches_done"] > 0 and _is_count(position["count"])
                and isinstance(position["metrics"], list)):
            refuse("its mid-epoch position is malformed")
        if len(position["metrics"]) != len(made):
            refuse(f"it stopped inside an epoch with {len(position['metrics'])} metric(s) running but this run "
                   f"has {len(made)}; pass the same metrics")
    try:
        return History.from_dict(state["history"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        refuse(f"its history is malformed ({type(error).__name__}: {error})")


def _restore(state, trainer, train_loader, val_loader, callbacks, made, path):
    """Resume from ``state``, all or nothing: check what can be checked, then apply each part;
    if any part refuses, every part already applied is put back and the error re-raised."""
    history = _check_checkpoint(state, trainer, callbacks, made, path)
    model, optimizer, scheduler = trainer.model, trainer.optimizer, trainer.scheduler
    undo = []       # how to put back what was applied, newest first
    try:
        kept_optimizer = (optimizer.state, optimizer.param_groups)    # load_state_dict builds new objects
        optimizer.load_state_dict(state["optimizer"])
        undo.append(lambda: setattr(optimizer, "state", kept_optimizer[0])
                    or setattr(optimizer, "param_groups", kept_optimizer[1]))
        mixed = getattr(trainer, "mixed_precision", None)          # cross-owner hook (amp)
        if mixed is not None and mixed.scaler is not None and state.get("grad_scaler"):
            undo.append(_attributes_undo(mixed.scaler))
            mixed.load_state_dict(state["grad_scaler"])
        if scheduler is not None:
            undo.append(_attributes_undo(scheduler))
            scheduler.load_state_dict(state["scheduler"])
        if state.get("train_loader") is not None and hasattr(train_loader, "load_state_dict"):
            undo.append(_attributes_undo(train_loader))
            train_loader.load_state_dict(state["train_loader"])
        if val_loader is not None and state.get("val_loader") is not None and hasattr(val_loader, "load_state_dict"):
            undo.append(_attributes_undo(val_loader))
            val_loader.load_state_dict(state["val_loader"])
        saved = [entry for entry in state.get("callbacks") or [] if entry.get("stateful", True)]
        for callback, entry in zip([c for c in callbacks if _is_stateful(c)], saved):
            undo.append(_attributes_undo(callback))
            callback.load_state_dict(entry["state"])
        # The model last: its load_state_dict checks everything before copying (so a refusal
        # changes nothing), and undoing it would move the parameters' version counters.
        model.load_state_dict(state["model"])
        kept_rng = _capture_rng()
        _restore_rng(state["rng"])
        undo.append(lambda: _restore_rng(kept_rng))
    except BaseException as error:
        for step in reversed(undo):
            step()
        if isinstance(error, Exception) and not str(error).startswith("fit: cannot resume"):
            try:
                replacement = type(error)(f"fit: cannot resume from {path!r}: {str(error).rstrip('. ')}; "
                                          "nothing was changed "
                                          "(model, optimizer, scheduler, loaders, callbacks and random state are "
                                          "as they were)")
            except Exception:       # noqa: BLE001 - an exception type with another signature: keep it
                raise error from None
            raise replacement from error
        raise
    trainer.history = history
    trainer.step = int(state["step"])
    trainer.stop_training = bool(state.get("stop_training", False))
    position = state.get("position")
    if position is None:
        return None
    return dict(position, rng=state["rng"])


def _attributes_undo(obj):
    """Undo for a ``load_state_dict`` that assigns attributes (schedulers, loaders, callbacks)."""
    if not hasattr(obj, "__dict__"):
        saved = obj.state_dict()
        return lambda: obj.load_state_dict(saved)
    saved = dict(vars(obj))

    def undo():
        vars(obj).clear()
        vars(obj).update(saved)
    return undo
