"""The hand-written NumPy baselines compute what they claim to.

A benchmark baseline that is fast because it is wrong would make every ratio a
lie, so each hand-derived backward pass is checked once against PyTorch
autograd (skipped where torch is not installed) and against finite
differences (always).  The peers are checked to agree with the baselines after
one training step, since the suite compares their speed on the premise that
they do the same work.
"""
import itertools

import numpy as np
import pytest

from benchmarks import baselines, peers


def _torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------
# Chain
# --------------------------------------------------------------------------

def test_chain_gradient_matches_torch_autograd():
    torch = _torch()
    inputs = baselines.make_chain_input(8, seed=1)
    schedule = baselines.chain_schedule()
    loss, grad = baselines.chain_forward_backward(inputs, schedule)
    assert grad.dtype == np.float32 and loss.dtype == np.float32

    leaf = torch.from_numpy(inputs.copy()).requires_grad_()
    values = leaf
    for kind, constant in schedule:
        values = values * constant if kind == "mul" else values + constant if kind == "add" else values.tanh()
    values.sum().backward()
    np.testing.assert_allclose(float(loss), float(values.sum().detach()), rtol=1e-5)
    np.testing.assert_allclose(grad, leaf.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_chain_gradient_matches_finite_differences():
    inputs = baselines.make_chain_input(8, seed=2).astype(np.float64)
    schedule = baselines.chain_schedule(30)
    _, grad = baselines.chain_forward_backward(inputs, schedule)
    eps = 1e-6
    for index in range(inputs.size):
        bump = np.zeros_like(inputs)
        bump[index] = eps
        plus, _ = baselines.chain_forward_backward(inputs + bump, schedule)
        minus, _ = baselines.chain_forward_backward(inputs - bump, schedule)
        assert grad[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-8)


def test_chain_schedule_has_a_tanh_every_tenth_op():
    schedule = baselines.chain_schedule(200)
    assert len(schedule) == 200
    assert [index for index, (kind, _) in enumerate(schedule) if kind == "tanh"] == list(range(9, 200, 10))


# --------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------

def _torch_mlp_gradients(torch, problem):
    model = peers._torch_mlp_model(torch, problem, "cpu")
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(problem.inputs)),
                                             torch.from_numpy(problem.labels))
    loss.backward()
    linears = [module for module in model if hasattr(module, "weight")]
    return (float(loss.detach()), [linear.weight.grad.numpy() for linear in linears],
            [linear.bias.grad.numpy() for linear in linears])


@pytest.mark.parametrize("sizes, batch", [((64, 128, 128, 10), 32), ((40, 100, 100, 10), 100)])
def test_mlp_gradients_match_torch_autograd(sizes, batch):
    torch = _torch()
    problem = baselines.make_mlp_problem(sizes, batch, seed=3)
    network = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels)
    loss, weight_grads, bias_grads = network.loss_and_gradients(problem.inputs, problem.labels)
    torch_loss, torch_weight_grads, torch_bias_grads = _torch_mlp_gradients(torch, problem)

    assert loss.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in weight_grads + bias_grads)
    np.testing.assert_allclose(float(loss), torch_loss, rtol=1e-5)
    for ours, theirs in zip(weight_grads + bias_grads, torch_weight_grads + torch_bias_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_mlp_gradient_matches_finite_differences():
    problem = baselines.make_mlp_problem((5, 7, 3), batch=4, seed=4)
    weights = [w.astype(np.float64) for w in problem.weights]
    biases = [b.astype(np.float64) for b in problem.biases]
    network = baselines.NumpyMLP(weights, biases, problem.inputs.astype(np.float64), problem.labels)
    # NumpyMLP stores float32; switch its copies to float64 for a precise check.
    network.weights = [w.copy() for w in weights]
    network.biases = [b.copy() for b in biases]
    _, weight_grads, _ = network.loss_and_gradients(network.inputs, network.labels)
    eps = 1e-6
    for layer in range(2):
        for index in [(0, 0), (1, 2), (2, 4)]:
            if index[0] >= weights[layer].shape[0] or index[1] >= weights[layer].shape[1]:
                continue
            original = network.weights[layer][index]
            network.weights[layer][index] = original + eps
            plus, _, _ = network.loss_and_gradients(network.inputs, network.labels)
            network.weights[layer][index] = original - eps
            minus, _, _ = network.loss_and_gradients(network.inputs, network.labels)
            network.weights[layer][index] = original
            assert weight_grads[layer][index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def test_mlp_step_updates_parameters_in_place_and_lowers_the_loss():
    problem = baselines.make_mlp_problem((6, 16, 4), batch=8, seed=5)
    network = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels, lr=0.5)
    first_weight = network.weights[0]
    losses = [float(network.step()) for _ in range(20)]
    assert network.weights[0] is first_weight  # updated in place, as an optimiser does
    assert losses[-1] < losses[0]
    # The caller's arrays are untouched.
    assert not np.shares_memory(network.weights[0], problem.weights[0])


def test_mlp_epoch_walks_every_batch_in_order():
    problem = baselines.make_mlp_problem((4, 8, 3), batch=1, seed=6, samples=30)
    by_epoch = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels)
    by_steps = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels)
    by_epoch.epoch(10)
    for start in range(0, 30, 10):
        by_steps.train_step(problem.inputs[start:start + 10], problem.labels[start:start + 10])
    for name, value in by_epoch.snapshot().items():
        np.testing.assert_array_equal(value, by_steps.snapshot()[name])


# --------------------------------------------------------------------------
# CNN
# --------------------------------------------------------------------------

def test_cnn_gradients_match_torch_autograd():
    torch = _torch()
    problem = baselines.make_cnn_problem(batch=4, seed=7)
    loss, grads = baselines.NumpyCNN(problem).loss_and_gradients()

    functional = torch.nn.functional
    conv_weight = torch.from_numpy(problem.conv_weight.copy()).requires_grad_()
    conv_bias = torch.from_numpy(problem.conv_bias.copy()).requires_grad_()
    fc_weight = torch.from_numpy(problem.fc_weight.copy()).requires_grad_()
    fc_bias = torch.from_numpy(problem.fc_bias.copy()).requires_grad_()
    hidden = functional.max_pool2d(functional.relu(
        functional.conv2d(torch.from_numpy(problem.inputs), conv_weight, conv_bias, padding=1)), 2)
    torch_loss = functional.cross_entropy(functional.linear(hidden.flatten(1), fc_weight, fc_bias),
                                          torch.from_numpy(problem.labels))
    torch_loss.backward()

    np.testing.assert_allclose(float(loss), float(torch_loss.detach()), rtol=1e-5)
    expected = {"conv.weight": conv_weight.grad, "conv.bias": conv_bias.grad,
                "fc.weight": fc_weight.grad, "fc.bias": fc_bias.grad}
    for name, grad in expected.items():
        assert grads[name].dtype == np.float32, name
        np.testing.assert_allclose(grads[name], grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_im2col_matches_a_direct_convolution():
    rng = np.random.default_rng(8)
    inputs = rng.standard_normal((2, 3, 5, 6))
    weight = rng.standard_normal((4, 3, 3, 3))
    padded = np.pad(inputs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    via_im2col = (baselines.im2col_3x3(padded, 5, 6) @ weight.reshape(4, -1).T).reshape(2, 5, 6, 4)
    direct = np.zeros((2, 5, 6, 4))
    for y in range(5):
        for x in range(6):
            patch = padded[:, :, y:y + 3, x:x + 3]
            direct[:, y, x, :] = np.einsum("bcij,ocij->bo", patch, weight)
    np.testing.assert_allclose(via_im2col, direct, atol=1e-12)


def test_softmax_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    loss, grad = baselines.softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert float(loss) == pytest.approx(np.log(3) / 2, rel=1e-5)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-7)


# --------------------------------------------------------------------------
# Peers agree with the baselines after one step
# --------------------------------------------------------------------------

def _agree(peer_factory, baseline_snapshot, *args, **kwargs):
    try:
        participant = peer_factory(*args, **kwargs)
    except peers.PeerUnavailable as reason:
        pytest.skip(str(reason))
    participant.step()
    snapshot = participant.snapshot()
    for name, value in baseline_snapshot.items():
        np.testing.assert_allclose(snapshot[name], value, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("factory", [peers.torch_mlp, peers.jax_mlp, peers.autograd_mlp])
def test_mlp_peers_agree_with_the_numpy_baseline(factory):
    problem = baselines.make_mlp_problem((12, 16, 16, 5), batch=8, seed=9, samples=24)
    numpy_epoch = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels)
    numpy_epoch.epoch(8)
    _agree(factory, numpy_epoch.snapshot(), problem, "cpu", epoch_batch=8)


@pytest.mark.parametrize("factory", [peers.torch_cnn, peers.jax_cnn])
def test_cnn_peers_agree_with_the_numpy_baseline(factory):
    problem = baselines.make_cnn_problem(batch=4, seed=10)
    network = baselines.NumpyCNN(problem)
    network.step()
    _agree(factory, network.snapshot(), problem, "cpu")


@pytest.mark.parametrize("factory", [peers.torch_chain, peers.jax_chain, peers.autograd_chain])
def test_chain_peers_agree_with_the_numpy_baseline(factory):
    inputs = baselines.make_chain_input(8, seed=11)
    schedule = baselines.chain_schedule()
    _, grad = baselines.chain_forward_backward(inputs, schedule)
    _agree(factory, {"grad": grad}, inputs, schedule, "cpu")


# --------------------------------------------------------------------------
# Timing and thread machinery
# --------------------------------------------------------------------------

def test_alternating_blocks_time_every_participant_in_every_round():
    import time

    from benchmarks.timing import Participant, TimingPlan, ratio, time_alternating

    calls = []
    fast = Participant("fast", lambda: calls.append("fast"))
    slow = Participant("slow", lambda: (calls.append("slow"), time.sleep(0.002)))
    timings = time_alternating([fast, slow], TimingPlan(warmup=1, rounds=3, block_seconds=0.004,
                                                        budget_seconds=10.0, min_rounds=3))
    assert len(timings["fast"].round_medians) == len(timings["slow"].round_medians) == 3
    figures = ratio(timings["slow"], timings["fast"])
    assert figures["ratio"] > 1 and figures["ratio_low"] <= figures["ratio"] * 1.5
    # Blocks alternate: after warm-up, the names change at least once per round.
    timed = calls[2:]
    assert sum(1 for a, b in itertools.pairwise(timed) if a != b) >= 3


def test_threads_flag_is_read_before_numpy_loads():
    from benchmarks.threads import DEFAULT_THREADS, threads_from_argv

    assert threads_from_argv([]) == DEFAULT_THREADS
    assert threads_from_argv(["--quick", "--threads", "2"]) == 2
    assert threads_from_argv(["--threads=0"]) == 0


def test_only_cpu_runs_are_pinned_to_cores():
    import os
    import subprocess
    import sys

    from benchmarks.threads import device_from_argv

    assert device_from_argv([]) == "cpu"
    assert device_from_argv(["--quick", "--device", "cuda"]) == "cuda"
    assert device_from_argv(["--device=cuda"]) == "cuda"
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return
    # In a subprocess: pinning this test process would slow the rest of the suite.
    probe = ("import os, sys; from benchmarks.threads import limit_threads_from_argv; "
             "limit_threads_from_argv(sys.argv[1:]); print(len(os.sched_getaffinity(0)))")
    cores = {}
    for device in ("cpu", "cuda"):
        output = subprocess.run([sys.executable, "-c", probe, "--device", device, "--threads", "1"],
                                capture_output=True, text=True, check=True, timeout=60,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cores[device] = int(output.stdout)
    assert cores["cpu"] == 1
    assert cores["cuda"] == len(os.sched_getaffinity(0))


def test_limit_threads_sets_every_library_variable(monkeypatch):
    from benchmarks import threads

    for name in threads.THREAD_VARIABLES + ("XLA_FLAGS",):
        monkeypatch.delenv(name, raising=False)
    threads.limit_threads(1)
    import os

    assert all(os.environ[name] == "1" for name in threads.THREAD_VARIABLES)
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    threads.limit_threads(0)  # 0 leaves the environment alone
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_kernel_bandwidth_hookup_reads_the_scripts_json(tmp_path):
    """The CUDA-only bandwidth section, exercised through the script's CPU dry run."""
    from benchmarks import run

    report = run.kernel_bandwidth(tmp_path, "smoke", lambda message: None, device="cpu")
    if report["status"] == "skipped":
        pytest.skip(report["reason"])
    assert report["status"] == "ok", report
    rows = report["result"]["rows"]
    assert rows and {"kernel", "pass", "fraction_of_copy", "status"} <= set(rows[0])
    markdown = "\n".join(run._bandwidth_markdown(report))
    assert "| kernel | pass | GB/s | fraction of copy |" in markdown


def test_a_participant_that_skips_its_update_is_reported_invalid_not_pass():
    from benchmarks import run
    from benchmarks.timing import Participant, TimingPlan

    problem = baselines.make_mlp_problem((6, 8, 3), batch=4, seed=12)

    def network(name, lr):
        def build():
            model = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs, problem.labels, lr=lr)
            return Participant(name, model.step, snapshot=model.snapshot)
        return build

    benchmark = run.Benchmark("fake", "fake", {"numpy": network("numpy", 0.01),
                                               "gpugrad": network("gpugrad", 0.0)},  # "forgets" the update
                              [run.Target("gpugrad", "numpy", 100.0)])
    record = run.run_benchmark(benchmark, TimingPlan(warmup=1, rounds=1, block_seconds=0.001, budget_seconds=1),
                               {"numpy", "gpugrad"}, lambda message: None)
    targeted = [c for c in record["comparisons"] if c["target"]]
    assert targeted[0]["status"] == "INVALID"
    assert record["participants"]["gpugrad"]["agreement"] == pytest.approx(1.0)

    honest = run.Benchmark("fake", "fake", {"numpy": network("numpy", 0.01), "gpugrad": network("gpugrad", 0.01)},
                           [run.Target("gpugrad", "numpy", 100.0)])
    record = run.run_benchmark(honest, TimingPlan(warmup=1, rounds=1, block_seconds=0.001, budget_seconds=1),
                               {"numpy", "gpugrad"}, lambda message: None, aa_check=True)
    statuses = {(c["candidate"], c["reference"]): c["status"] for c in record["comparisons"]}
    assert statuses[("gpugrad", "numpy")] == "PASS"
    assert statuses[("numpy-again", "numpy")] == "INFO"


_STAND_IN_CUPY = """
import sys, types
import numpy as np

class FakeCupy(types.ModuleType):
    def __getattr__(self, name):
        return getattr(np, name)

fake = FakeCupy("cupy")
fake.__version__ = "0.0-stand-in"
fake.cuda = types.SimpleNamespace(
    Device=lambda *args: types.SimpleNamespace(synchronize=lambda: None, id=0),
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, runtimeGetVersion=lambda: 12060,
                                  getDeviceProperties=lambda index: {"name": b"Stand-in GPU"}))
fake.get_default_memory_pool = lambda: types.SimpleNamespace(
    free_all_blocks=lambda: None, used_bytes=lambda: 0, total_bytes=lambda: 0)
sys.modules["cupy"] = fake

from benchmarks import run
sys.exit(run.main(sys.argv[1:]))
"""


def test_cuda_code_paths_run_end_to_end_against_a_numpy_stand_in_for_cupy(tmp_path):
    """The CUDA-only branches of the runner (device checks, machine description,
    synchronisation, the CUDA report sections), exercised without a GPU by a
    stand-in ``cupy`` module that forwards to NumPy.  It runs in a subprocess
    so the stand-in cannot leak into gpugrad's cached GPU detection here, and
    with ``GPUGRAD_DISABLE_CUDA=1`` so gpugrad itself sees no GPU: its rows
    and torch's are reported as not run; the point is that nothing in between
    breaks before a real GPU run finds it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repository = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", _STAND_IN_CUPY, "--device", "cuda", "--smoke", "--only", "per_op_chain,cnn_small",
         "--peers", "torch", "--out", str(tmp_path)],
        cwd=repository, capture_output=True, text=True, timeout=300, check=False,
        env=dict(os.environ, GPUGRAD_DISABLE_CUDA="1", MPLBACKEND="Agg"))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results-cuda.json").read_text())
    assert results["meta"]["gpu"] == "Stand-in GPU" and results["meta"]["cupy"] == "0.0-stand-in"
    for record in results["benchmarks"]:
        assert "error" not in record
        assert record["participants"]["cupy"]["median_ms"] > 0
        assert "autograd" not in record["unavailable"]  # NumPy-only peer: not even offered on CUDA
        assert "gpugrad" in record["unavailable"]
    assert {"peak_memory", "kernel_bandwidth"} <= set(results["cuda"])
    markdown = (tmp_path / "results-cuda.md").read_text()
    assert "### CUDA" in markdown and "Activation kernels' bandwidth" in markdown
