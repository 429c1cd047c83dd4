"""A walk through automatic differentiation with gpugrad.

1. One function, f(x, y) = 1 + x + exp(sin(x y)), differentiated four ways:
   by hand (closed form), by numerical differences (gg.numerical_grad), by
   forward mode (gg.jvp, one pass per input direction) and by reverse mode
   (backward, one pass for all inputs).
2. Pictures of its compute graph, and of the graph of its derivative (recorded
   with create_graph=True, so it can be differentiated again).
3. A layered tanh network, where backward() gives exactly the gradients of
   the classic "delta" recursion of backpropagation, written by hand in NumPy.
4. A network the recursion cannot express - concatenated branches, max
   pooling, batch norm (which couples the samples of a batch) and dropout -
   that backward() differentiates all the same, checked against numerical
   differences.

Run ``python examples/autodiff_tour.py`` (a few seconds on a CPU).  Pictures go
to ``examples/out/`` when Graphviz's ``dot`` is installed
(``apt-get install -y graphviz``); otherwise the DOT text is written there.
"""

import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import gpugrad as gg

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def section(title):
    print("\n" + title + "\n" + "-" * len(title))


# --------------------------------------------------------------------------
# 1. One function, four derivatives
# --------------------------------------------------------------------------
def f(x, y):
    return 1 + x + (x * y).sin().exp()


def closed_form(x, y):
    common = np.exp(np.sin(x * y)) * np.cos(x * y)
    return 1 + common * y, common * x


def four_ways(x0=1.5, y0=0.5):
    section(f"1. f(x, y) = 1 + x + exp(sin(xy)) at x = {x0}, y = {y0}")
    x, y = gg.tensor(x0, dtype=gg.float64), gg.tensor(y0, dtype=gg.float64)
    by_hand = closed_form(x0, y0)
    numerical = [float(g) for g in gg.numerical_grad(f, [x, y])]
    one, zero = gg.tensor(1.0, dtype=gg.float64), gg.tensor(0.0, dtype=gg.float64)
    forward = [float(gg.jvp(f, (x, y), (one, zero))[1]),      # one pass per input direction
               float(gg.jvp(f, (x, y), (zero, one))[1])]
    xr, yr = x.detach().requires_grad_(), y.detach().requires_grad_()
    f(xr, yr).backward()                                     # one pass for every input
    reverse = [float(xr.grad), float(yr.grad)]
    print(f"{'method':<28}{'df/dx':>22}{'df/dy':>22}")
    for name, (dx, dy) in [("closed form", by_hand), ("numerical differences", numerical),
                           ("forward mode (gg.jvp)", forward), ("reverse mode (backward)", reverse)]:
        print(f"{name:<28}{dx:>22.15f}{dy:>22.15f}")
    assert np.allclose(forward, by_hand, rtol=1e-14) and np.allclose(reverse, by_hand, rtol=1e-14)
    assert np.allclose(numerical, by_hand, rtol=1e-8)
    print("df/dx = 1 + exp(sin(xy)) cos(xy) y,  df/dy = exp(sin(xy)) cos(xy) x")


# --------------------------------------------------------------------------
# 2. Pictures of the graph and of the derivative's graph
# --------------------------------------------------------------------------
def pictures(x0=1.5, y0=0.5):
    section("2. The compute graph of f and of df/dx")
    x = gg.tensor(x0, dtype=gg.float64, requires_grad=True)
    y = gg.tensor(y0, dtype=gg.float64, requires_grad=True)
    x.name, y.name = "x", "y"
    value = f(x, y)
    (dfdx,) = gg.grad(value, x, create_graph=True)        # the backward pass, recorded as a graph
    (d2fdxdy,) = gg.grad(dfdx, y)                         # ... which can be differentiated again
    print(f"f = {float(value):.6f}, df/dx = {float(dfdx):.6f}, d2f/dxdy = {float(d2fdxdy):.6f}")
    os.makedirs(OUT, exist_ok=True)
    have_dot = gg.viz.dot_available()
    for tensor, stem in [(value, "f_graph"), (dfdx, "df_dx_graph")]:
        path = os.path.join(OUT, stem + (".png" if have_dot else ".dot"))
        gg.viz.render(tensor, path, name="f" if stem == "f_graph" else "df/dx")
        print(f"wrote {os.path.relpath(path)}")
    if not have_dot:
        print("Graphviz `dot` is not installed, so the graphs were written as DOT text; "
              "install it (apt-get install -y graphviz) for PNG pictures.")


# --------------------------------------------------------------------------
# 3. A layered network: backward() == the delta recursion
# --------------------------------------------------------------------------
def delta_recursion(weights, biases, inputs, targets):
    """Backpropagation by hand for h_k = tanh(h_{k-1} W_k^T + b_k), loss = sum((h_L - y)^2) / (2n)."""
    activations = [inputs]
    for w, b in zip(weights, biases):
        activations.append(np.tanh(activations[-1] @ w.T + b))
    n = inputs.shape[0]
    delta = (activations[-1] - targets) / n * (1 - activations[-1] ** 2)      # dL/d(pre-activation of layer L)
    grads_w, grads_b = [], []
    for k in range(len(weights) - 1, -1, -1):
        grads_w.append(delta.T @ activations[k])
        grads_b.append(delta.sum(axis=0))
        if k > 0:
            delta = (delta @ weights[k]) * (1 - activations[k] ** 2)            # the recursion
    return grads_w[::-1], grads_b[::-1]


def layered_network(widths=(3, 8, 8, 8, 2), batch=16, seed=0):
    section(f"3. Layered tanh network {widths}: backward() vs the delta recursion by hand")
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((m, n)) / np.sqrt(n) for n, m in itertools.pairwise(widths)]
    biases = [rng.standard_normal(m) * 0.1 for m in widths[1:]]
    inputs, targets = rng.standard_normal((batch, widths[0])), rng.standard_normal((batch, widths[-1]))

    ws = [gg.tensor(w, requires_grad=True) for w in weights]
    bs = [gg.tensor(b, requires_grad=True) for b in biases]
    h = gg.tensor(inputs)
    for w, b in zip(ws, bs):
        h = (h @ w.T + b).tanh()
    loss = ((h - gg.tensor(targets)) ** 2).sum() / (2 * batch)
    loss.backward()

    hand_w, hand_b = delta_recursion(weights, biases, inputs, targets)
    worst = 0.0
    for k, (w, b, gw, gb) in enumerate(zip(ws, bs, hand_w, hand_b), start=1):
        diff = max(np.abs(w.grad.numpy() - gw).max(), np.abs(b.grad.numpy() - gb).max())
        worst = max(worst, diff)
        print(f"layer {k}: |dL/dW| = {np.linalg.norm(gw):.4f}, max |backward - recursion| = {diff:.1e}")
    assert worst < 1e-13
    print(f"loss {float(loss):.6f}; backward() and the hand-written recursion agree to {worst:.0e}")


# --------------------------------------------------------------------------
# 4. Beyond the recursion: a DAG with pooling, batch norm and dropout
# --------------------------------------------------------------------------
def dag_network(batch=8, features=4, hidden=6, seed=1):
    section("4. Concatenation, max pooling, batch norm and dropout: backward() vs numerical differences")
    import gpugrad.nn.functional as F

    rng = np.random.default_rng(seed)
    inputs = gg.tensor(rng.standard_normal((batch, features)))
    targets = gg.tensor(rng.standard_normal((batch, 1)))
    params = {
        "branch_a": gg.tensor(rng.standard_normal((hidden, features)) / 2, requires_grad=True),
        "branch_b": gg.tensor(rng.standard_normal((hidden, features)) / 2, requires_grad=True),
        "bn_weight": gg.tensor(1 + 0.1 * rng.standard_normal(hidden), requires_grad=True),
        "bn_bias": gg.tensor(0.1 * rng.standard_normal(hidden), requires_grad=True),
        "head": gg.tensor(rng.standard_normal((1, hidden)) / 2, requires_grad=True),
    }

    def loss_fn(branch_a, branch_b, bn_weight, bn_bias, head):
        gg.manual_seed(0)                                     # the same dropout mask at every evaluation
        a = (inputs @ branch_a.T).tanh()                      # two branches of the same input ...
        b = (inputs @ branch_b.T).sin()
        joined = gg.cat([a, b], dim=1)                        # ... concatenated: (batch, 2 hidden)
        pooled = F.max_pool1d(joined.unsqueeze(1), kernel_size=2).squeeze(1)   # max of neighbours: (batch, hidden)
        normed = F.batch_norm(pooled, None, None, bn_weight, bn_bias, training=True)  # couples the batch
        dropped = F.dropout(normed, p=0.25, training=True)
        return ((dropped @ head.T - targets) ** 2).mean()

    names = list(params)
    loss = loss_fn(*params.values())
    loss.backward()
    numerical = gg.numerical_grad(loss_fn, list(params.values()))
    worst = 0.0
    for name, numeric in zip(names, numerical):
        diff = float(np.abs(params[name].grad.numpy() - numeric.numpy()).max())
        worst = max(worst, diff)
        print(f"{name:<10} shape {tuple(params[name].shape)!s:<8} max |backward - numerical| = {diff:.1e}")
    assert worst < 1e-6
    print(f"loss {float(loss):.6f}. The layer-by-layer recursion has no place for a branch that splits and "
          "rejoins, a max that routes gradient to one neighbour, a normalisation whose every output depends "
          "on the whole batch, or a random mask; the graph recorded by gpugrad does, so backward() needs "
          "nothing new.")
    if gg.viz.dot_available():
        path = os.path.join(OUT, "dag_network_graph.png")
        gg.viz.render(loss, path, params=params, name="loss")
        print(f"wrote {os.path.relpath(path)}")


def main():
    four_ways()
    pictures()
    layered_network()
    dag_network()


if __name__ == "__main__":
    main()
