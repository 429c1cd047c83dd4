"""Hand-written NumPy baselines: the work each benchmark does, without autodiff.

Each baseline is written the way a careful person would write it by hand:
forward pass, then the backward pass derived on paper (the delta recursion for
the MLP, im2col/col2im for the convolution), then the SGD update in place.
They are the floor an autodiff library is measured against: whatever gpugrad
costs above these is the price of its tape, its dispatch and its allocations.

Everything here is *xp-generic*: the functions take arrays and find their
array module with :func:`array_module`, so the same code runs on NumPy and on
CuPy (``--device cuda``).

The problem definitions (shapes, initialisation, data) also live here, so every
participant (NumPy, gpugrad, PyTorch, JAX, HIPS autograd) starts from the very
same float32 numbers and the benchmark can check they compute the same thing.

Examples
--------
>>> import numpy as np
>>> problem = make_mlp_problem((4, 8, 3), batch=5, seed=0)
>>> step = NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels, lr=0.1)
>>> float(step.step()) > 0
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------
# Shared problem definitions
# --------------------------------------------------------------------------

CHAIN_LENGTH = 200
LEARNING_RATE = 0.01


def array_module(array):
    """``numpy`` or ``cupy``, whichever ``array`` belongs to."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_numpy(array) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array (or anything with ``.get()``)."""
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.asarray(array)


def chain_schedule(length: int = CHAIN_LENGTH) -> list[tuple[str, float | None]]:
    """The elementwise chain of the per-op overhead benchmark.

    Alternating multiply and add, every tenth op a ``tanh``.  The constants
    keep the values in a sane range for any length: multiplying by 0.99 and
    adding 0.01 drifts slowly and every ``tanh`` pulls back into (-1, 1).

    Returns
    -------
    list of (kind, constant)
        ``kind`` is ``"mul"``, ``"add"`` or ``"tanh"``; ``constant`` is the
        Python float operand (``None`` for ``tanh``).
    """
    schedule = []
    for index in range(length):
        if index % 10 == 9:
            schedule.append(("tanh", None))
        elif index % 2 == 0:
            schedule.append(("mul", 0.99))
        else:
            schedule.append(("add", 0.01))
    return schedule


def make_chain_input(size: int = 8, seed: int = 0) -> np.ndarray:
    """The shape-``(size,)`` float32 input of the chain benchmark."""
    return np.random.default_rng(seed).standard_normal(size).astype(np.float32)


def linear_init(fan_in: int, fan_out: int, rng: np.random.Generator):
    """PyTorch's default ``nn.Linear`` initialisation, in float32.

    ``kaiming_uniform_(a=sqrt(5))`` on the weight and the matching bias rule
    both reduce to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    """
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
    bias = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
    return weight, bias


@dataclass
class MLPProblem:
    """Weights (PyTorch layout ``(out, in)``), biases, one batch of data."""

    sizes: tuple
    weights: list
    biases: list
    inputs: np.ndarray
    labels: np.ndarray


def make_mlp_problem(sizes, batch: int, seed: int = 0, samples: int | None = None) -> MLPProblem:
    """Random float32 MLP parameters and data with int64 class labels.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, number of classes last.
    batch : int
        Rows of data when ``samples`` is not given.
    samples : int, optional
        Rows of data for an epoch benchmark (a dataset rather than a batch).
    """
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(sizes):
        weight, bias = linear_init(fan_in, fan_out, rng)
        weights.append(weight)
        biases.append(bias)
    rows = samples if samples is not None else batch
    inputs = rng.standard_normal((rows, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], size=rows).astype(np.int64)
    return MLPProblem(tuple(sizes), weights, biases, inputs, labels)


@dataclass
class CNNProblem:
    """Conv 3x3 (8 channels, padding 1) -> ReLU -> max-pool 2 -> linear."""

    conv_weight: np.ndarray  # (channels, in_channels, 3, 3)
    conv_bias: np.ndarray
    fc_weight: np.ndarray    # (classes, channels * 14 * 14)
    fc_bias: np.ndarray
    inputs: np.ndarray       # (batch, 1, 28, 28)
    labels: np.ndarray


def make_cnn_problem(batch: int = 32, channels: int = 8, classes: int = 10,
                     image_size: int = 28, seed: int = 0) -> CNNProblem:
    """Random float32 CNN parameters (PyTorch default init) and one batch."""
    rng = np.random.default_rng(seed)
    conv_fan_in = 1 * 3 * 3
    bound = 1.0 / np.sqrt(conv_fan_in)
    conv_weight = rng.uniform(-bound, bound, size=(channels, 1, 3, 3)).astype(np.float32)
    conv_bias = rng.uniform(-bound, bound, size=(channels,)).astype(np.float32)
    pooled = image_size // 2
    fc_weight, fc_bias = linear_init(channels * pooled * pooled, classes, rng)
    inputs = rng.standard_normal((batch, 1, image_size, image_size)).astype(np.float32)
    labels = rng.integers(0, classes, size=batch).astype(np.int64)
    return CNNProblem(conv_weight, conv_bias, fc_weight, fc_bias, inputs, labels)


# --------------------------------------------------------------------------
# Per-op overhead: the elementwise chain, forward and backward by hand
# --------------------------------------------------------------------------

def chain_forward_backward(inputs, schedule):
    """Run the chain forward, sum it, and return ``(loss, d loss / d inputs)``.

    The backward pass walks the schedule in reverse: ``mul`` scales the
    gradient by its constant, ``add`` passes it through, ``tanh`` multiplies by
    ``1 - tanh(x)**2`` using the output saved on the way forward.
    """
    xp = array_module(inputs)
    saved_tanh_outputs = []
    values = inputs
    for kind, constant in schedule:
        if kind == "mul":
            values = values * constant
        elif kind == "add":
            values = values + constant
        else:
            values = xp.tanh(values)
            saved_tanh_outputs.append(values)
    loss = values.sum()
    grad = xp.ones_like(values)
    for kind, constant in reversed(schedule):
        if kind == "mul":
            grad = grad * constant
        elif kind == "tanh":
            tanh_output = saved_tanh_outputs.pop()
            grad = grad * (1 - tanh_output * tanh_output)
        # "add": d(x + c)/dx = 1, the gradient passes through unchanged.
    return loss, grad


# --------------------------------------------------------------------------
# Softmax cross-entropy, the loss of every training benchmark
# --------------------------------------------------------------------------

def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy and its gradient with respect to ``logits``.

    Numerically stable (the row maximum is subtracted before ``exp``).  The
    gradient is ``(softmax(logits) - one_hot(labels)) / batch``.
    """
    xp = array_module(logits)
    batch = logits.shape[0]
    rows = xp.arange(batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    loss = (xp.log(sum_exp[:, 0]) - shifted[rows, labels]).mean()
    grad = exp / sum_exp
    grad[rows, labels] -= 1
    grad *= 1.0 / batch
    return loss, grad


# --------------------------------------------------------------------------
# MLP training step: forward, delta recursion, SGD
# --------------------------------------------------------------------------

class NumpyMLP:
    """A ReLU MLP trained with SGD on softmax cross-entropy, backprop by hand.

    Parameters
    ----------
    weights, biases : list of arrays
        Copied onto ``xp``, so the caller's arrays are never updated.
    inputs, labels : arrays
        The batch (or the whole dataset, for :meth:`epoch`).
    lr : float
        SGD learning rate.
    xp : module
        ``numpy`` or ``cupy``: where the work runs.
    """

    def __init__(self, weights, biases, inputs, labels, lr=LEARNING_RATE, xp=np):
        self.weights = [xp.array(w, dtype=np.float32) for w in weights]
        self.biases = [xp.array(b, dtype=np.float32) for b in biases]
        self.inputs = xp.asarray(inputs)
        self.labels = xp.asarray(labels)
        self.lr = lr

    def loss_and_gradients(self, inputs, labels):
        """Forward pass and the delta recursion of backprop.

        Returns
        -------
        loss, weight_grads, bias_grads
            Gradients listed first layer first.
        """
        layer_inputs = []     # what each linear layer saw, for its weight gradient
        pre_activations = []  # what each ReLU saw, for its mask
        hidden = inputs
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            layer_inputs.append(hidden)
            pre_activation = hidden @ weight.T + bias
            if index < last:
                pre_activations.append(pre_activation)
                hidden = array_module(pre_activation).maximum(pre_activation, 0)
            else:
                hidden = pre_activation
        loss, delta = softmax_cross_entropy(hidden, labels)
        weight_grads, bias_grads = [None] * (last + 1), [None] * (last + 1)
        for index in range(last, -1, -1):
            weight_grads[index] = delta.T @ layer_inputs[index]
            bias_grads[index] = delta.sum(axis=0)
            if index > 0:
                delta = (delta @ self.weights[index]) * (pre_activations[index - 1] > 0)
        return loss, weight_grads, bias_grads

    def train_step(self, inputs, labels):
        """One SGD step on one batch; returns the loss before the update."""
        loss, weight_grads, bias_grads = self.loss_and_gradients(inputs, labels)
        # In place, as an optimiser does: no new parameter arrays per step.
        for weight, bias, weight_grad, bias_grad in zip(self.weights, self.biases, weight_grads, bias_grads):
            weight -= self.lr * weight_grad
            bias -= self.lr * bias_grad
        return loss

    def step(self):
        """One SGD step on the stored batch."""
        return self.train_step(self.inputs, self.labels)

    def epoch(self, batch_size: int):
        """One pass over the stored dataset in order, ``batch_size`` rows a step."""
        loss = None
        for start in range(0, len(self.inputs), batch_size):
            loss = self.train_step(self.inputs[start:start + batch_size],
                                   self.labels[start:start + batch_size])
        return loss

    def snapshot(self) -> dict:
        """Parameters as NumPy arrays, named like a PyTorch ``Sequential``."""
        state = {}
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            state[f"linear{index}.weight"] = to_numpy(weight)
            state[f"linear{index}.bias"] = to_numpy(bias)
        return state


# --------------------------------------------------------------------------
# CNN training step: im2col convolution, max-pool, linear, SGD
# --------------------------------------------------------------------------

def im2col_3x3(padded, out_height, out_width):
    """Unfold 3x3 patches: ``(B, C, H+2, W+2) -> (B*H*W, C*9)``.

    Built from nine shifted slices rather than stride tricks so it runs the
    same on NumPy and CuPy.  Rows are ordered ``(b, y, x)`` (channels-last),
    columns ``(c, ky, kx)`` to match the PyTorch weight layout.
    """
    xp = array_module(padded)
    batch, channels = padded.shape[:2]
    columns = xp.empty((batch, out_height, out_width, channels, 3, 3), dtype=padded.dtype)
    for ky in range(3):
        for kx in range(3):
            columns[..., ky, kx] = padded[:, :, ky:ky + out_height, kx:kx + out_width].transpose(0, 2, 3, 1)
    return columns.reshape(batch * out_height * out_width, channels * 9)


class NumpyCNN:
    """conv3x3(padding 1) -> ReLU -> max-pool 2 -> linear, SGD, backprop by hand.

    Works channels-last internally (the im2col matmul produces ``(B, H, W, C)``
    for free) and transposes only the small pooled map to ``(B, C, H, W)``
    before flattening, so the linear layer sees PyTorch's flatten order and
    the same weights give the same numbers as ``nn.Conv2d`` + ``nn.Linear``.
    The input gradient of the convolution is not computed: the input is data.
    """

    def __init__(self, problem: CNNProblem, xp=np, lr=LEARNING_RATE):
        self.conv_weight = xp.asarray(problem.conv_weight).copy()
        self.conv_bias = xp.asarray(problem.conv_bias).copy()
        self.fc_weight = xp.asarray(problem.fc_weight).copy()
        self.fc_bias = xp.asarray(problem.fc_bias).copy()
        self.inputs = xp.asarray(problem.inputs)
        self.labels = xp.asarray(problem.labels)
        self.lr = lr

    def loss_and_gradients(self):
        """Forward and backward on the stored batch.

        Returns
        -------
        loss, grads
            ``grads`` maps ``conv.weight``, ``conv.bias``, ``fc.weight``,
            ``fc.bias`` to their gradients.
        """
        inputs = self.inputs
        xp = array_module(inputs)
        batch, _, height, width = inputs.shape
        channels = self.conv_weight.shape[0]
        pooled_h, pooled_w = height // 2, width // 2

        # Convolution as one matmul over unfolded patches.
        padded = xp.pad(inputs, ((0, 0), (0, 0), (1, 1), (1, 1)))
        columns = im2col_3x3(padded, height, width)
        conv_matrix = self.conv_weight.reshape(channels, -1)
        conv_out = columns @ conv_matrix.T + self.conv_bias          # (B*H*W, C)
        relu_out = xp.maximum(conv_out, 0).reshape(batch, height, width, channels)

        # 2x2 max-pool on strided views of the four window corners: no copy,
        # no argmax over a length-4 axis (slow in NumPy).
        corners = [relu_out[:, dy::2, dx::2, :] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
        pooled = xp.maximum(xp.maximum(corners[0], corners[1]), xp.maximum(corners[2], corners[3]))
        # Which corner won, first in row-major order on ties (as PyTorch).
        winners, taken = [], xp.zeros(pooled.shape, dtype=bool)
        for corner in corners[:3]:
            winner = (corner == pooled) & ~taken
            winners.append(winner)
            taken |= winner
        winners.append(~taken)

        flat = pooled.transpose(0, 3, 1, 2).reshape(batch, -1)       # PyTorch flatten order
        logits = flat @ self.fc_weight.T + self.fc_bias
        loss, dlogits = softmax_cross_entropy(logits, self.labels)

        # Backward.
        fc_weight_grad = dlogits.T @ flat
        fc_bias_grad = dlogits.sum(axis=0)
        dflat = dlogits @ self.fc_weight
        dpooled = dflat.reshape(batch, channels, pooled_h, pooled_w).transpose(0, 2, 3, 1)
        # Each pooled gradient goes to its window's winning corner.
        drelu = xp.empty_like(relu_out)
        for (dy, dx), winner in zip(((0, 0), (0, 1), (1, 0), (1, 1)), winners):
            drelu[:, dy::2, dx::2, :] = dpooled * winner
        dconv = (drelu * (relu_out > 0)).reshape(batch * height * width, channels)
        conv_weight_grad = (dconv.T @ columns).reshape(self.conv_weight.shape)
        conv_bias_grad = dconv.sum(axis=0)
        return loss, {"conv.weight": conv_weight_grad, "conv.bias": conv_bias_grad,
                      "fc.weight": fc_weight_grad, "fc.bias": fc_bias_grad}

    def step(self):
        """One SGD step on the stored batch; returns the loss before the update."""
        loss, grads = self.loss_and_gradients()
        self.conv_weight -= self.lr * grads["conv.weight"]
        self.conv_bias -= self.lr * grads["conv.bias"]
        self.fc_weight -= self.lr * grads["fc.weight"]
        self.fc_bias -= self.lr * grads["fc.bias"]
        return loss

    def snapshot(self) -> dict:
        return {"conv.weight": to_numpy(self.conv_weight), "conv.bias": to_numpy(self.conv_bias),
                "fc.weight": to_numpy(self.fc_weight), "fc.bias": to_numpy(self.fc_bias)}
