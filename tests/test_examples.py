"""The examples run (``--quick``) in a fresh interpreter, exit 0 and write what they promise.

Each runs in a subprocess with sockets disabled, so an example that reaches
for the network (e.g. mnist1d's download path) fails here, not on a
user's offline machine.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpugrad as gg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

# Runs the example as __main__ with every socket connection refused.
_OFFLINE_RUNNER = textwrap.dedent("""
    import runpy, socket, sys

    def _refuse(*args, **kwargs):
        raise OSError("network access is disabled in the example tests")

    socket.socket.connect = _refuse
    socket.create_connection = _refuse
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


def run_example(name, *args, timeout=120):
    env = dict(os.environ, MPLBACKEND="Agg", GPUGRAD_DEVICE=os.environ.get("GPUGRAD_DEVICE", "cpu"))
    completed = subprocess.run([sys.executable, "-c", _OFFLINE_RUNNER, os.path.join(EXAMPLES, name), *args],
                               capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)
    assert completed.returncode == 0, (f"{name} exited with {completed.returncode}\n--- stdout\n"
                                       f"{completed.stdout[-3000:]}\n--- stderr\n{completed.stderr[-3000:]}")
    return completed.stdout


def load_module(name):
    """Import an example under another module name (mnist1d.py would shadow the mnist1d package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
    return module


def is_png(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_mnist1d_quick_trains_all_four_models_offline(tmp_path):
    pytest.importorskip("mnist1d")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    stdout = run_example("mnist1d.py", "--quick", "--no-progress", "--out", str(out))
    assert "| model    | gpugrad | paper |" in stdout
    results = json.loads((out / "mnist1d_results.json").read_text())
    assert results["quick"] is True and results["device"] == "cpu"
    names = [r["model"] for r in results["results"]]
    assert names == ["logistic", "mlp", "cnn", "gru"]
    for r in results["results"]:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["steps"] == 10
        assert f"| {r['model']:<8} |" in stdout
    assert is_png(out / "mnist1d_curves.png")
    # The saved weights load back into the example's own models.
    example = load_module("mnist1d")
    for name in names:
        model = example.build(name)
        model.load_state_dict(gg.load(out / f"mnist1d_{name}.safetensors"))


def test_mnist1d_quick_with_amp_trains_in_mixed_precision(tmp_path):
    pytest.importorskip("mnist1d")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    stdout = run_example("mnist1d.py", "--quick", "--amp", "bf16", "--models", "mlp", "cnn", "--no-progress",
                         "--out", str(out))
    assert "in mixed precision (bf16)" in stdout
    results = json.loads((out / "mnist1d_results.json").read_text())
    assert results["amp"] == "bf16" and [r["amp"] for r in results["results"]] == ["bf16", "bf16"]
    example = load_module("mnist1d")
    model = example.build("cnn")
    model.load_state_dict(gg.load(out / "mnist1d_cnn.safetensors"))
    assert all(p.dtype == gg.float32 for p in model.parameters())     # float32 master weights


@pytest.mark.slow
def test_mnist1d_full_recipe_beats_the_paper_for_logistic_mlp_and_cnn(tmp_path):
    # The real run (about 6 s on an idle 2-core CPU); the GRU's 700 steps are left to the example itself.
    pytest.importorskip("mnist1d")
    out = tmp_path / "out"
    run_example("mnist1d.py", "--models", "logistic", "mlp", "cnn", "--no-progress", "--out", str(out), timeout=300)
    rows = json.loads((out / "mnist1d_results.json").read_text())["results"]
    results = {r["model"]: r["test_accuracy"] for r in rows}
    # Paper: 32%, 68%, 94%.  PyTorch with this recipe: .324, .756, .975 (means of 6 runs).
    assert results["logistic"] > 0.30
    assert results["mlp"] > 0.70
    assert results["cnn"] > 0.95


def test_mnist1d_model_choice_and_data_are_the_papers(tmp_path):
    pytest.importorskip("mnist1d")
    example = load_module("mnist1d")
    x_train, y_train, x_test, y_test = example.make_data()
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert y_train.shape == (4000,) and set(y_test.tolist()) == set(range(10))
    assert x_train.dtype.name == "float32" and y_train.dtype.name == "int64"
    # Parameter counts of the four networks (the same layers in PyTorch have these counts).
    counts = {name: sum(p.numel() for p in example.build(name).parameters()) for name in example.RECIPES}
    assert counts == {"logistic": 410, "mlp": 15210, "cnn": 8746, "gru": 16170}


def test_mnist1d_shift_augmentation_rolls_each_example():
    example = load_module("mnist1d")
    gg.manual_seed(0)
    x = gg.arange(64 * 40).reshape(64, 40).float()
    loader = example.RandomShifts([(x, gg.zeros(64, dtype=gg.int64))], max_shift=3)
    ((shifted, _),) = list(loader)
    shifts = []
    for row, original in zip(shifted.numpy(), x.numpy(), strict=True):
        matches = [s for s in range(-3, 4) if (row == np.roll(original, s)).all()]
        assert len(matches) == 1, (row, original)
        shifts += matches
    assert set(shifts) == set(range(-3, 4))             # every shift in [-3, 3] occurs among 64 rows


def test_digits_conv2d_quick(tmp_path):
    pytest.importorskip("sklearn")
    stdout = run_example("digits_conv2d.py", "--quick", "--out", str(tmp_path))
    assert "test accuracy" in stdout
    assert is_png(tmp_path / "digits_conv2d_curves.png")
    assert os.path.exists(tmp_path / "digits_conv2d.safetensors")


@pytest.mark.slow
def test_digits_conv2d_reaches_95_percent(tmp_path):
    pytest.importorskip("sklearn")
    stdout = run_example("digits_conv2d.py", "--no-progress", "--out", str(tmp_path))
    accuracy = float(stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.95, stdout


def test_custom_function():
    stdout = run_example("custom_function.py", "--quick")
    assert "gg.gradcheck(LogCosh): reverse and forward mode agree" in stdout
    assert "gg.gradcheck(WrongLogCosh) caught the bug" in stdout


def test_torch_interop():
    stdout = run_example("torch_interop.py", "--quick")
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch is not installed" in stdout
        return
    assert "after training in PyTorch and copying back" in stdout
