"""gg.detect_anomaly(): a NaN/Inf planted in forward or backward raises gg.AnomalyError naming
the op and the line of user code (this file) that created it."""

import inspect
import re

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd.tape import state

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # NumPy's own log/divide warnings

THIS_FILE = __file__.rsplit("/", 1)[-1]


def _site(lineno):
    """How a traceback names a line of this file."""
    return re.compile(re.escape(THIS_FILE) + rf'", line {lineno}\b')



def test_nan_in_forward_names_the_op_and_the_user_line(device):
    x = gg.tensor([1.0, -1.0], device=device, requires_grad=True)
    with gg.detect_anomaly(), pytest.raises(gg.AnomalyError) as caught:
        lineno = inspect.currentframe().f_lineno + 1
        gg.log(x)     # log of a negative number: NaN
    message = str(caught.value)
    assert "op 'log'" in message and "forward" in message
    assert _site(lineno).search(message), message


def test_inf_in_forward_through_an_operator(device):
    x = gg.tensor([1.0, 0.0], device=device)
    with gg.detect_anomaly(), pytest.raises(gg.AnomalyError, match="op 'div'") as caught:
        lineno = inspect.currentframe().f_lineno + 1
        _ = 1.0 / x
    assert _site(lineno).search(str(caught.value))


def test_inf_in_backward_names_the_op_and_where_it_was_created(device):
    z = gg.tensor([0.0, 4.0], device=device, requires_grad=True)
    with gg.detect_anomaly():
        lineno = inspect.currentframe().f_lineno + 1
        root = z.sqrt()              # finite forward (sqrt(0) = 0) ...
        loss = root.sum()
        with pytest.raises(gg.AnomalyError) as caught:
            loss.backward()          # ... infinite derivative 1 / (2 sqrt(0))
    message = str(caught.value)
    assert "backward of op 'sqrt'" in message
    assert _site(lineno).search(message), message
    assert z.grad is None           # nothing half-accumulated


def test_nan_from_the_where_trap_is_reported_at_sqrt(device):
    # where(x > 0, sqrt(x), 0): the forward is clean, but sqrt's gradient 0 * inf = NaN at x = 0.
    x = gg.tensor([0.0, 1.0], device=device, requires_grad=True)
    with gg.detect_anomaly():
        y = gg.where(x > 0, x.sqrt(), gg.zeros_like(x)).sum()
        with pytest.raises(gg.AnomalyError, match="backward of op 'sqrt'"):
            y.backward()


def test_anomaly_in_a_custom_function_backward(device):
    class BadBackward(gg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return gg.full_like(grad, float("nan"))     # planted without an op: the engine's check finds it

    class BadOpInBackward(gg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")                  # an op inside backward: caught as it runs

    x = gg.tensor([1.0], device=device, requires_grad=True)
    with gg.detect_anomaly():
        lineno = inspect.currentframe().f_lineno + 1
        y = BadBackward.apply(x).sum()
        with pytest.raises(gg.AnomalyError, match="backward of op 'BadBackward'") as caught:
            y.backward()
        assert _site(lineno).search(str(caught.value))

        y = BadOpInBackward.apply(x).sum()
        with pytest.raises(gg.AnomalyError, match="op 'mul'") as caught:
            y.backward()
    backward_line = inspect.getsourcelines(BadOpInBackward.backward)[1] + 2
    assert _site(backward_line).search(str(caught.value))


def test_without_detect_anomaly_nothing_raises(device):
    x = gg.tensor([-1.0, 0.0], device=device, requires_grad=True)
    y = gg.log(x).sum() + x.sqrt().sum()
    y.backward()
    assert np.isnan(y.item()) or np.isinf(y.item())


def test_mode_is_restored_and_works_as_a_decorator(device):
    @gg.detect_anomaly()
    def bad():
        return gg.log(gg.tensor([-1.0], device=device))

    with pytest.raises(gg.AnomalyError):
        bad()
    assert not state.anomaly and not state.capture_sites
    with gg.detect_anomaly():
        with gg.detect_anomaly(check_nan=False):
            gg.log(gg.tensor([-1.0], device=device))       # switched off inside
        assert state.anomaly
    assert not state.anomaly


def test_anomaly_error_is_an_autograd_and_runtime_error():
    assert issubclass(gg.AnomalyError, gg.AutogradError)
    assert issubclass(gg.AnomalyError, RuntimeError)


def test_anomaly_inside_checkpoint_recomputation_names_the_user_function(device):
    z = gg.tensor([0.0, 1.0], device=device, requires_grad=True)

    def block(h):
        return h.sqrt() * 3          # NOTE: the line reported below

    block_line = inspect.getsourcelines(block)[1] + 1
    with gg.detect_anomaly():
        y = gg.checkpoint(block, z).sum()
        with pytest.raises(gg.AnomalyError, match="backward of op 'sqrt'") as caught:
            y.backward()
    assert _site(block_line).search(str(caught.value))


def test_nan_made_inside_backward_is_reported_as_backward():
    class BadBackward(gg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return gg.log(grad * -1.0)   # log of a negative, computed while backpropagating

    x = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.detect_anomaly():
        y = BadBackward.apply(x).sum()
        with pytest.raises(gg.AnomalyError, match=r"op 'log'.*inside the backward pass"):
            y.backward()


def test_nan_tangent_is_caught_in_forward_mode():
    x = gg.tensor([0.0, 1.0])
    with gg.detect_anomaly():
        with pytest.raises(gg.AnomalyError, match="NaN or Inf"):
            gg.jvp(lambda t: t.sqrt(), (x,), (gg.ones(2),))   # d sqrt at 0 is inf


def test_user_folder_sharing_the_package_prefix_is_not_hidden(tmp_path):
    import os
    import subprocess
    import sys
    folder = tmp_path / "gpugrad_examples"
    folder.mkdir()
    script = folder / "bad.py"
    script.write_text("import gpugrad as gg\nwith gg.detect_anomaly():\n    gg.log(gg.tensor([-1.0]))\n")
    # Put the script next to a directory whose name starts like the package's own path.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(gg.__file__)))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": repo}, timeout=60)
    assert "bad.py" in result.stderr and "op 'log'" in result.stderr
