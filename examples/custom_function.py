"""A custom differentiable op with ``gg.Function``: forward, backward and jvp written by hand.

The op is ``log(cosh(x))``, a smooth robust loss (quadratic near 0, linear
far away).  Written naively, ``cosh`` overflows for |x| > 89 in float32;
the stable form is ``|x| + log1p(exp(-2|x|)) - log 2``, whose derivative is
simply ``tanh(x)``.  A hand-written op lets us use both facts:

* ``forward`` computes the stable form and saves ``x``;
* ``backward`` (reverse mode) returns ``grad * tanh(x)``;
* ``jvp`` (forward mode) returns ``tangent * tanh(x)``;

and ``gg.gradcheck`` checks both derivative rules against central
differences in float64.  A deliberately wrong backward is then caught, and
the op trains a robust line fit that ignores outliers a squared loss chases.

Run::

    python examples/custom_function.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import gpugrad as gg


class LogCosh(gg.Function):
    """``log(cosh(x))``, elementwise, stable for any ``x``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        magnitude = x.abs()
        return magnitude + (-2.0 * magnitude).exp().log1p() - math.log(2.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # Built from differentiable ops, so second derivatives work too.
        return grad * x.tanh()

    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        return tangent * x.tanh()


class WrongLogCosh(LogCosh):
    """The same op with a typical slip in backward: the derivative of tanh, not of log cosh."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x.tanh() ** 2)


def show(t):
    return "[" + ", ".join(f"{v:.5f}" for v in t.numpy().tolist()) + "]"


def log_cosh(x):
    return LogCosh.apply(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description="A custom gg.Function checked with gg.gradcheck")
    parser.add_argument("--quick", action="store_true", help="fewer training steps")
    args = parser.parse_args(argv)
    gg.manual_seed(0)

    # 1. Values: the stable form agrees with the textbook one where that one works, and stays finite.
    x = gg.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    naive = x.exp().add(x.neg().exp()).mul(0.5).log()
    print("log cosh(x)        :", show(log_cosh(x)))
    print("naive log(cosh(x)) :", show(naive))
    with np.errstate(over="ignore"):      # the naive form overflows, which is the point
        naive_big = gg.tensor([1000.0]).exp().add(gg.tensor([-1000.0]).exp()).mul(0.5).log().item()
    print(f"at x = 1000 (float32): stable {log_cosh(gg.tensor([1000.0])).item():.4f} | naive {naive_big}")

    # 2. Derivatives: reverse mode, forward mode, and both checked numerically.
    x = gg.tensor([-2.0, 0.1, 1.5], requires_grad=True)
    log_cosh(x).sum().backward()
    print("reverse mode grad  :", show(x.grad), "(= tanh x)")
    _, tangent = gg.jvp(log_cosh, (x.detach(),), (gg.ones(3),))
    print("forward mode jvp   :", show(tangent))
    inputs = [gg.randn(4, 3, dtype=gg.float64)]
    assert gg.gradcheck(log_cosh, inputs)
    print("gg.gradcheck(LogCosh): reverse and forward mode agree with central differences")
    assert gg.gradgradcheck(log_cosh, inputs)
    print("gg.gradgradcheck(LogCosh): second derivatives (reverse over reverse and forward over reverse) agree too")
    try:
        gg.gradcheck(WrongLogCosh.apply, inputs)
    except gg.GradcheckError as error:
        print("gg.gradcheck(WrongLogCosh) caught the bug:", str(error).splitlines()[0])
    else:
        raise SystemExit("gradcheck missed a wrong backward")

    # 3. Use: fit y = 2x + 1 through data with 20% gross outliers, log-cosh vs squared loss.
    n = 200
    xs = gg.linspace(-3, 3, n)
    ys = 2 * xs + 1 + 0.1 * gg.randn(n)
    outliers = gg.rand(n) < 0.2
    ys = gg.where(outliers, ys + 15.0, ys)
    steps = 100 if args.quick else 1500
    for name, loss_of in (("squared", lambda r: (r * r).mean()), ("log-cosh", lambda r: log_cosh(r).mean())):
        slope = gg.zeros(1, requires_grad=True)
        intercept = gg.zeros(1, requires_grad=True)
        optimizer = gg.optim.Adam([slope, intercept], lr=0.05)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_of(slope * xs + intercept - ys)
            loss.backward()
            optimizer.step()
        print(f"{name:>9} loss fit: y = {slope.item():.3f} x + {intercept.item():.3f}   (truth: y = 2 x + 1)")
    return 0


if __name__ == "__main__":
    main()
