"""The gpugrad candidates: each benchmark written against gpugrad's public API.

Only names from ``shared/API.md`` are used (``gg.tensor``, ``nn.Linear``,
``nn.Conv2d``, ``F.cross_entropy``, ``F.max_pool2d``, ``gg.optim.SGD``,
``loss.backward()``...), written the way a user coming from PyTorch would
write them, so the figures describe what users get, not a tuned special path.

Every factory starts from the NumPy arrays of :mod:`benchmarks.baselines`
(same init, same float32 data) and returns a
:class:`~benchmarks.timing.Participant` named ``"gpugrad"``.  While gpugrad's
modules are missing or broken, the factories raise :class:`GpugradUnavailable`
with the reason, and the suite records it instead of failing.
"""

from __future__ import annotations

import numpy as np

from .baselines import LEARNING_RATE, CNNProblem, MLPProblem
from .timing import Participant


class GpugradUnavailable(RuntimeError):
    """gpugrad (or the part of it a benchmark needs) cannot be imported yet."""


def load_gpugrad(with_nn: bool = True):
    """Import gpugrad and the public names the benchmarks use.

    Parameters
    ----------
    with_nn : bool
        Also require ``gpugrad.nn``, ``gpugrad.nn.functional`` and
        ``gg.optim.SGD`` (the training benchmarks); the per-op chain needs
        only tensors and autograd.

    Returns
    -------
    (gg, nn, F)
        ``nn`` and ``F`` are ``None`` when ``with_nn`` is false.

    Raises
    ------
    GpugradUnavailable
        Naming the first missing module or attribute.
    """
    # Imported here, not at the top, so the suite runs (and reports why)
    # while gpugrad is missing or half-written.
    try:
        import gpugrad as gg
    except Exception as error:  # noqa: BLE001 - ImportError, or a half-written module's own error
        raise GpugradUnavailable(f"cannot import gpugrad: {type(error).__name__}: {error}") from None
    _require(gg, "gg", ["tensor", "no_grad"])
    if not with_nn:
        return gg, None, None
    try:
        import gpugrad.nn.functional as F
        from gpugrad import nn, optim
    except Exception as error:  # noqa: BLE001
        raise GpugradUnavailable(f"cannot import gpugrad.nn/optim: {type(error).__name__}: {error}") from None
    _require(nn, "nn", ["Linear", "Conv2d", "ReLU", "Sequential"])
    _require(F, "F", ["cross_entropy", "relu", "max_pool2d"])
    _require(optim, "gg.optim", ["SGD"])
    return gg, nn, F


def _require(module, label, names):
    for name in names:
        if not hasattr(module, name):
            raise GpugradUnavailable(f"gpugrad is not complete yet: {label}.{name} is missing")


def gpugrad_version() -> str | None:
    try:
        import gpugrad
    except Exception:  # noqa: BLE001
        return None
    return getattr(gpugrad, "__version__", "unversioned")


def _sync(gg, device):
    if device == "cuda":
        return gg.cuda.synchronize
    return lambda: None


def to_numpy(tensor) -> np.ndarray:
    """A NumPy copy of a gpugrad tensor (parameter or gradient)."""
    if hasattr(tensor, "detach"):
        tensor = tensor.detach()
    if hasattr(tensor, "numpy"):
        return np.array(tensor.numpy())
    from .baselines import to_numpy as array_to_numpy

    return array_to_numpy(tensor.array)


def load_parameter(gg, parameter, array: np.ndarray) -> None:
    """Overwrite ``parameter`` with ``array`` in place, outside the graph."""
    with gg.no_grad():
        parameter.copy_(gg.tensor(array, dtype=parameter.dtype, device=parameter.device))
    np.testing.assert_array_equal(to_numpy(parameter), array)


def _can_reset_grad(leaf) -> bool:
    try:
        leaf.grad = None
    except AttributeError:
        return False
    return True


def gpugrad_chain(inputs: np.ndarray, schedule, device: str = "cpu") -> Participant:
    """The per-op chain: Python-scalar ``*``/``+``, ``tanh()``, then ``sum().backward()``."""
    gg, _, _ = load_gpugrad(with_nn=False)
    state = {"leaf": gg.tensor(inputs, device=device, requires_grad=True)}
    # Clear the gradient between calls (as torch's ``leaf.grad = None``) so
    # repeated calls do not also time gradient accumulation; where the setter
    # is missing, start from a fresh leaf instead.
    reset_in_place = _can_reset_grad(state["leaf"])

    def step():
        if reset_in_place:
            state["leaf"].grad = None
        else:
            state["leaf"] = gg.tensor(inputs, device=device, requires_grad=True)
        values = state["leaf"]
        for kind, constant in schedule:
            if kind == "mul":
                values = values * constant
            elif kind == "add":
                values = values + constant
            else:
                values = values.tanh()
        values.sum().backward()
        return state["leaf"].grad

    return Participant("gpugrad", step, _sync(gg, device),
                       lambda: {"grad": to_numpy(state["leaf"].grad)})


def gpugrad_chain_mode_read(inputs: np.ndarray, schedule, device: str = "cpu") -> Participant:
    """The per-op chain while another thread is inside ``no_grad``.

    Grad mode is per thread.  While every thread is in the default modes (grad
    on, no anomaly or forward mode), an op learns its mode without reading a
    thread-local (``gpugrad.autograd.tape.threads_off_default`` is empty);
    once some other thread is off the defaults, every op reads its own
    thread's mode from a ``threading.local``.  This participant puts the
    chain on that second path: around each chain it marks one thread as off
    the defaults, as a thread parked inside ``no_grad`` would be (a real
    thread would stay marked for the rest of the suite and slow every other
    benchmark).  Against :func:`gpugrad_chain`, it is the per-op cost of the
    per-thread mode read.
    """
    gg, _, _ = load_gpugrad(with_nn=False)
    try:
        from gpugrad.autograd.tape import threads_off_default
    except ImportError as error:
        raise GpugradUnavailable(f"gpugrad has no per-thread grad mode yet: {error}") from None
    participant = gpugrad_chain(inputs, schedule, device)
    chain_step = participant.step
    other_thread = object()     # stands for the other thread's ident

    def step():
        threads_off_default.add(other_thread)
        try:
            return chain_step()
        finally:
            threads_off_default.discard(other_thread)

    participant.name = "gpugrad-mode-read"
    participant.step = step
    return participant


def _mlp_model(gg, nn, problem: MLPProblem, device):
    layers, linears = [], []
    last = len(problem.weights) - 1
    for index, (weight, _bias) in enumerate(zip(problem.weights, problem.biases)):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linears.append(linear)
        layers.append(linear)
        if index < last:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(device)
    for linear, weight, bias in zip(linears, problem.weights, problem.biases):
        load_parameter(gg, linear.weight, weight)
        load_parameter(gg, linear.bias, bias)
    return model, linears


def gpugrad_mlp(problem: MLPProblem, device: str = "cpu", epoch_batch: int | None = None,
                lr: float = LEARNING_RATE) -> Participant:
    """MLP training with ``nn.Sequential``, ``F.cross_entropy`` and ``gg.optim.SGD``.

    One step on the stored batch, or one epoch over the stored data in
    ``epoch_batch``-row slices when ``epoch_batch`` is given.
    """
    gg, nn, F = load_gpugrad()
    model, linears = _mlp_model(gg, nn, problem, device)
    optimizer = gg.optim.SGD(model.parameters(), lr=lr)
    inputs = gg.tensor(problem.inputs, device=device)
    labels = gg.tensor(problem.labels, device=device)

    def train_step(batch_inputs, batch_labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch_inputs), batch_labels)
        loss.backward()
        optimizer.step()
        # Nothing is returned: a loss kept by the caller (even detached, while
        # gpugrad's detach() still references its source) would keep this
        # step's graph alive into the next one.

    if epoch_batch is None:
        def step():
            train_step(inputs, labels)
    else:
        rows = len(problem.inputs)

        def step():
            for start in range(0, rows, epoch_batch):
                train_step(inputs[start:start + epoch_batch], labels[start:start + epoch_batch])

    def snapshot():
        state = {}
        for index, linear in enumerate(linears):
            state[f"linear{index}.weight"] = to_numpy(linear.weight)
            state[f"linear{index}.bias"] = to_numpy(linear.bias)
        return state

    return Participant("gpugrad", step, _sync(gg, device), snapshot)


def gpugrad_cnn(problem: CNNProblem, device: str = "cpu", lr: float = LEARNING_RATE) -> Participant:
    """The small CNN: ``nn.Conv2d`` -> ``F.relu`` -> ``F.max_pool2d`` -> ``nn.Linear``, SGD."""
    gg, nn, F = load_gpugrad()
    channels = problem.conv_weight.shape[0]
    conv = nn.Conv2d(1, channels, 3, padding=1).to(device)
    fc = nn.Linear(problem.fc_weight.shape[1], problem.fc_weight.shape[0]).to(device)
    load_parameter(gg, conv.weight, problem.conv_weight)
    load_parameter(gg, conv.bias, problem.conv_bias)
    load_parameter(gg, fc.weight, problem.fc_weight)
    load_parameter(gg, fc.bias, problem.fc_bias)
    optimizer = gg.optim.SGD(list(conv.parameters()) + list(fc.parameters()), lr=lr)
    inputs = gg.tensor(problem.inputs, device=device)
    labels = gg.tensor(problem.labels, device=device)
    batch = problem.inputs.shape[0]
    flat_features = problem.fc_weight.shape[1]

    def step():
        optimizer.zero_grad()
        hidden = F.max_pool2d(F.relu(conv(inputs)), 2)
        loss = F.cross_entropy(fc(hidden.reshape(batch, flat_features)), labels)
        loss.backward()
        optimizer.step()

    def snapshot():
        return {"conv.weight": to_numpy(conv.weight), "conv.bias": to_numpy(conv.bias),
                "fc.weight": to_numpy(fc.weight), "fc.bias": to_numpy(fc.bias)}

    return Participant("gpugrad", step, _sync(gg, device), snapshot)


def gpugrad_mlp_tensors(problem: MLPProblem, device: str = "cpu", epoch_batch: int | None = None,
                        lr: float = LEARNING_RATE) -> Participant:
    """The same MLP step written with tensors, the way a PyTorch user writes it by hand.

    ``h = F.relu(h @ W + b)`` per hidden layer (``W`` a leaf of shape
    ``(in, out)``), ``F.cross_entropy`` on the last layer's logits,
    ``loss.backward()``, then the SGD update ``p.add_(p.grad, alpha=-lr)`` under
    ``gg.no_grad()`` and ``p.grad = None``: no ``nn`` module and no optimizer.
    """
    gg, _, F = load_gpugrad()
    weights = [gg.tensor(np.ascontiguousarray(weight.T), device=device, requires_grad=True)
               for weight in problem.weights]
    biases = [gg.tensor(bias, device=device, requires_grad=True) for bias in problem.biases]
    parameters = [tensor for pair in zip(weights, biases) for tensor in pair]
    inputs = gg.tensor(problem.inputs, device=device)
    labels = gg.tensor(problem.labels, device=device)
    last = len(weights) - 1

    def train_step(batch_inputs, batch_labels):
        hidden = batch_inputs
        for index, (weight, bias) in enumerate(zip(weights, biases)):
            hidden = hidden @ weight + bias
            if index < last:
                hidden = F.relu(hidden)
        loss = F.cross_entropy(hidden, batch_labels)
        loss.backward()
        with gg.no_grad():
            for parameter in parameters:
                parameter.add_(parameter.grad, alpha=-lr)
                parameter.grad = None

    if epoch_batch is None:
        def step():
            train_step(inputs, labels)
    else:
        rows = len(problem.inputs)

        def step():
            for start in range(0, rows, epoch_batch):
                train_step(inputs[start:start + epoch_batch], labels[start:start + epoch_batch])

    def snapshot():
        state = {}
        for index, (weight, bias) in enumerate(zip(weights, biases)):
            state[f"linear{index}.weight"] = to_numpy(weight).T
            state[f"linear{index}.bias"] = to_numpy(bias)
        return state

    return Participant("gpugrad-tensors", step, _sync(gg, device), snapshot)
