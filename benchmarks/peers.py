"""Peer libraries: the same benchmarks written in PyTorch, JAX and HIPS autograd.

Peers are optional.  Each factory raises :class:`PeerUnavailable` (with the
reason) when its library is not installed or cannot run on the requested
device, and the suite records the reason instead of a figure.  None of these
libraries is a gpugrad dependency: PyTorch in particular is only a yardstick.

Every peer starts from the NumPy arrays of :mod:`benchmarks.baselines`, so it
trains the same network from the same float32 numbers, and exposes a
``snapshot`` of its parameters so the suite can check agreement after one step.

How each peer is used, and why:

* **PyTorch**: eager mode, ``nn.Sequential`` + ``torch.optim.SGD``, the way
  its users write a training loop.  CUDA when ``--device cuda``.
* **JAX**: ``jax.jit`` of the whole training step (value_and_grad + SGD),
  which is how JAX is meant to be used; the per-op chain is the exception:
  there ``jax.grad`` runs un-jitted, because per-op dispatch cost is what that
  benchmark measures.
* **HIPS autograd**: ``autograd.grad`` over ``autograd.numpy``; CPU only, and
  no convolution (it has no im2col-speed conv primitive).
"""

from __future__ import annotations

import numpy as np

from .baselines import LEARNING_RATE, CNNProblem, MLPProblem, to_numpy
from .timing import Participant


class PeerUnavailable(RuntimeError):
    """The peer cannot run here; the message says why."""


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------

def _torch(device: str):
    try:
        import torch
    except ImportError as error:
        raise PeerUnavailable(f"torch not installed ({error})") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise PeerUnavailable("torch has no CUDA device here")
    return torch


def _torch_sync(torch, device):
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def _torch_tensor(torch, array, device):
    return torch.from_numpy(np.ascontiguousarray(to_numpy(array))).to(device)


def _torch_mlp_model(torch, problem: MLPProblem, device):
    layers = []
    last = len(problem.weights) - 1
    for index, (weight, bias) in enumerate(zip(problem.weights, problem.biases)):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        layers.append(linear)
        if index < last:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def _torch_mlp_snapshot(model):
    linears = [module for module in model if hasattr(module, "weight")]
    state = {}
    for index, linear in enumerate(linears):
        state[f"linear{index}.weight"] = linear.weight.detach().cpu().numpy()
        state[f"linear{index}.bias"] = linear.bias.detach().cpu().numpy()
    return state


def torch_chain(inputs: np.ndarray, schedule, device: str = "cpu") -> Participant:
    """The per-op chain in eager PyTorch: forward, ``sum().backward()``."""
    torch = _torch(device)
    leaf = _torch_tensor(torch, inputs, device).requires_grad_()

    def step():
        leaf.grad = None
        values = leaf
        for kind, constant in schedule:
            if kind == "mul":
                values = values * constant
            elif kind == "add":
                values = values + constant
            else:
                values = values.tanh()
        values.sum().backward()
        return leaf.grad

    return Participant("torch", step, _torch_sync(torch, device),
                       lambda: {"grad": leaf.grad.detach().cpu().numpy()})


def torch_mlp(problem: MLPProblem, device: str = "cpu", epoch_batch: int | None = None,
              lr: float = LEARNING_RATE) -> Participant:
    """MLP training in PyTorch: one step on the batch, or one epoch if ``epoch_batch``."""
    torch = _torch(device)
    model = _torch_mlp_model(torch, problem, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    inputs = _torch_tensor(torch, problem.inputs, device)
    labels = _torch_tensor(torch, problem.labels, device)
    cross_entropy = torch.nn.functional.cross_entropy

    def train_step(batch_inputs, batch_labels):
        optimizer.zero_grad()
        loss = cross_entropy(model(batch_inputs), batch_labels)
        loss.backward()
        optimizer.step()
        # Nothing is returned, as in gpugrad's candidate: no graph outlives its step.

    if epoch_batch is None:
        def step():
            train_step(inputs, labels)
    else:
        def step():
            for start in range(0, len(inputs), epoch_batch):
                train_step(inputs[start:start + epoch_batch], labels[start:start + epoch_batch])

    return Participant("torch", step, _torch_sync(torch, device), lambda: _torch_mlp_snapshot(model))


def torch_cnn(problem: CNNProblem, device: str = "cpu", lr: float = LEARNING_RATE) -> Participant:
    """The small CNN training step in PyTorch (``nn.Conv2d``, ``max_pool2d``, ``nn.Linear``)."""
    torch = _torch(device)
    channels = problem.conv_weight.shape[0]
    conv = torch.nn.Conv2d(1, channels, 3, padding=1)
    fc = torch.nn.Linear(problem.fc_weight.shape[1], problem.fc_weight.shape[0])
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(problem.conv_weight))
        conv.bias.copy_(torch.from_numpy(problem.conv_bias))
        fc.weight.copy_(torch.from_numpy(problem.fc_weight))
        fc.bias.copy_(torch.from_numpy(problem.fc_bias))
    conv, fc = conv.to(device), fc.to(device)
    optimizer = torch.optim.SGD(list(conv.parameters()) + list(fc.parameters()), lr=lr)
    inputs = _torch_tensor(torch, problem.inputs, device)
    labels = _torch_tensor(torch, problem.labels, device)
    functional = torch.nn.functional

    def step():
        optimizer.zero_grad()
        hidden = functional.max_pool2d(functional.relu(conv(inputs)), 2)
        loss = functional.cross_entropy(fc(hidden.flatten(1)), labels)
        loss.backward()
        optimizer.step()

    def snapshot():
        return {"conv.weight": conv.weight.detach().cpu().numpy(),
                "conv.bias": conv.bias.detach().cpu().numpy(),
                "fc.weight": fc.weight.detach().cpu().numpy(),
                "fc.bias": fc.bias.detach().cpu().numpy()}

    return Participant("torch", step, _torch_sync(torch, device), snapshot)


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


# --------------------------------------------------------------------------
# JAX
# --------------------------------------------------------------------------

def _jax(device: str):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as error:
        raise PeerUnavailable(f"jax not installed ({error})") from None
    backend = jax.default_backend()
    if device == "cuda" and backend != "gpu":
        raise PeerUnavailable(f"jax runs on {backend!r} here, not on the GPU")
    return jax, jnp


def _jax_placer(jax, device: str):
    """Put NumPy arrays on the benchmark's device.

    Committed arrays make jitted and eager JAX computations run where their
    inputs live, so a ``--device cpu`` run stays on the CPU even where JAX
    found a GPU.
    """
    target = jax.devices("cpu" if device == "cpu" else "gpu")[0]
    return lambda array: jax.device_put(array, target)


def _jax_mlp_loss(jax, jnp, params, inputs, labels):
    hidden = inputs
    last = len(params) - 1
    for index, (weight, bias) in enumerate(params):
        hidden = hidden @ weight.T + bias
        if index < last:
            hidden = jax.nn.relu(hidden)
    log_probs = jax.nn.log_softmax(hidden)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def _jax_sgd_step(jax, loss_fn, lr):
    def train_step(params, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        params = jax.tree_util.tree_map(lambda param, grad: param - lr * grad, params, grads)
        return params, loss

    return jax.jit(train_step)


def jax_chain(inputs: np.ndarray, schedule, device: str = "cpu") -> Participant:
    """The per-op chain through un-jitted ``jax.grad`` (per-op dispatch is the point)."""
    jax, jnp = _jax(device)
    leaf = _jax_placer(jax, device)(inputs)

    def chain_sum(values):
        for kind, constant in schedule:
            if kind == "mul":
                values = values * constant
            elif kind == "add":
                values = values + constant
            else:
                values = jnp.tanh(values)
        return values.sum()

    gradient_of_chain = jax.grad(chain_sum)
    result = {}

    def step():
        result["grad"] = gradient_of_chain(leaf).block_until_ready()
        return result["grad"]

    return Participant("jax", step, snapshot=lambda: {"grad": np.asarray(result["grad"])})


def jax_mlp(problem: MLPProblem, device: str = "cpu", epoch_batch: int | None = None,
            lr: float = LEARNING_RATE) -> Participant:
    """MLP training in JAX with a jitted step (value_and_grad + SGD)."""
    jax, jnp = _jax(device)
    place = _jax_placer(jax, device)
    state = {"params": [(place(w), place(b)) for w, b in zip(problem.weights, problem.biases)]}
    inputs = place(problem.inputs)
    labels = place(problem.labels.astype(np.int32))  # jax defaults to 32-bit ints
    train_step = _jax_sgd_step(jax, lambda params, x, y: _jax_mlp_loss(jax, jnp, params, x, y), lr)

    if epoch_batch is None:
        def step():
            state["params"], loss = train_step(state["params"], inputs, labels)
            return loss.block_until_ready()
    else:
        batches = [(inputs[start:start + epoch_batch], labels[start:start + epoch_batch])
                   for start in range(0, len(problem.inputs), epoch_batch)]

        def step():
            loss = None
            for batch_inputs, batch_labels in batches:
                state["params"], loss = train_step(state["params"], batch_inputs, batch_labels)
            return loss.block_until_ready()

    def snapshot():
        result = {}
        for index, (weight, bias) in enumerate(state["params"]):
            result[f"linear{index}.weight"] = np.asarray(weight)
            result[f"linear{index}.bias"] = np.asarray(bias)
        return result

    return Participant("jax", step, snapshot=snapshot)


def jax_cnn(problem: CNNProblem, device: str = "cpu", lr: float = LEARNING_RATE) -> Participant:
    """The small CNN in JAX: ``lax.conv_general_dilated`` + ``reduce_window`` max, jitted."""
    jax, jnp = _jax(device)
    from jax import lax

    def loss_fn(params, inputs, labels):
        conv_weight, conv_bias, fc_weight, fc_bias = params
        hidden = lax.conv_general_dilated(inputs, conv_weight, (1, 1), ((1, 1), (1, 1)),
                                          dimension_numbers=("NCHW", "OIHW", "NCHW"))
        hidden = jax.nn.relu(hidden + conv_bias[None, :, None, None])
        hidden = lax.reduce_window(hidden, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        logits = hidden.reshape(hidden.shape[0], -1) @ fc_weight.T + fc_bias
        log_probs = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))

    place = _jax_placer(jax, device)
    state = {"params": tuple(place(a) for a in (problem.conv_weight, problem.conv_bias,
                                                problem.fc_weight, problem.fc_bias))}
    inputs = place(problem.inputs)
    labels = place(problem.labels.astype(np.int32))
    train_step = _jax_sgd_step(jax, loss_fn, lr)

    def step():
        state["params"], loss = train_step(state["params"], inputs, labels)
        return loss.block_until_ready()

    def snapshot():
        names = ("conv.weight", "conv.bias", "fc.weight", "fc.bias")
        return {name: np.asarray(value) for name, value in zip(names, state["params"])}

    return Participant("jax", step, snapshot=snapshot)


def jax_version() -> str | None:
    try:
        import jax
    except ImportError:
        return None
    return jax.__version__


# --------------------------------------------------------------------------
# HIPS autograd
# --------------------------------------------------------------------------

def _autograd(device: str):
    if device != "cpu":
        raise PeerUnavailable("HIPS autograd runs on NumPy only (CPU)")
    try:
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp
    except ImportError as error:
        raise PeerUnavailable(f"autograd not installed ({error})") from None
    return autograd, anp, logsumexp


def autograd_chain(inputs: np.ndarray, schedule, device: str = "cpu") -> Participant:
    """The per-op chain through ``autograd.grad``."""
    autograd, anp, _ = _autograd(device)

    def chain_sum(values):
        for kind, constant in schedule:
            if kind == "mul":
                values = values * constant
            elif kind == "add":
                values = values + constant
            else:
                values = anp.tanh(values)
        return anp.sum(values)

    gradient_of_chain = autograd.grad(chain_sum)
    result = {}

    def step():
        result["grad"] = gradient_of_chain(inputs)
        return result["grad"]

    return Participant("autograd", step, snapshot=lambda: {"grad": np.asarray(result["grad"])})


def autograd_mlp(problem: MLPProblem, device: str = "cpu", epoch_batch: int | None = None,
                 lr: float = LEARNING_RATE) -> Participant:
    """MLP training with HIPS autograd: ``grad`` of the loss, SGD in NumPy."""
    autograd, anp, logsumexp = _autograd(device)
    params = [[w.copy(), b.copy()] for w, b in zip(problem.weights, problem.biases)]
    last = len(params) - 1

    def loss_fn(flat_params, inputs, labels):
        hidden = inputs
        for index in range(last + 1):
            hidden = anp.dot(hidden, flat_params[2 * index].T) + flat_params[2 * index + 1]
            if index < last:
                hidden = anp.maximum(hidden, 0.0)
        log_probs = hidden - logsumexp(hidden, axis=1, keepdims=True)
        return -anp.mean(log_probs[anp.arange(len(labels)), labels])

    gradient = autograd.grad(loss_fn)
    flat = [array for pair in params for array in pair]

    def train_step(inputs, labels):
        grads = gradient(flat, inputs, labels)
        for param, grad in zip(flat, grads):
            param -= np.float32(lr) * grad.astype(np.float32, copy=False)

    if epoch_batch is None:
        def step():
            train_step(problem.inputs, problem.labels)
    else:
        def step():
            for start in range(0, len(problem.inputs), epoch_batch):
                train_step(problem.inputs[start:start + epoch_batch],
                           problem.labels[start:start + epoch_batch])

    def snapshot():
        result = {}
        for index in range(last + 1):
            result[f"linear{index}.weight"] = flat[2 * index].copy()
            result[f"linear{index}.bias"] = flat[2 * index + 1].copy()
        return result

    return Participant("autograd", step, snapshot=snapshot)


def autograd_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("autograd")
    except Exception:  # noqa: BLE001 - not installed, or installed without metadata
        return None
