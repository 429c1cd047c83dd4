"""The strict CuPy stand-in, and the CUDA-path fixes it guards.

The first group checks the stand-in itself (it must be as strict as CuPy, or a
stand-in run proves nothing); it imports the module directly, so it runs in
every CPU run.  The rest run on every device: with ``GPUGRAD_TEST_CUPY=standin``
the ``cuda`` half runs on the stand-in, on a GPU machine on the card.
"""
import copy

import cupy_standin as standin
import numpy as np
import pytest

import gpugrad as gg
import gpugrad.distributed as dist
from gpugrad import backend, kernels


# --------------------------------------------------------------------------
# The stand-in is as strict as CuPy.
# --------------------------------------------------------------------------
def test_standin_refuses_implicit_conversion_and_host_arrays():
    a = standin.arange(6.0).reshape(2, 3)
    assert not isinstance(a, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        standin.concatenate([a, np.ones((1, 3))])
    with pytest.raises(TypeError, match="no implementation found"):
        np.insert(a, 0, 1.0)  # a NumPy function CuPy does not have
    assert isinstance(np.exp(a), standin.ndarray)          # NumPy functions CuPy has dispatch
    assert a.get().tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert not hasattr(standin, "errstate")                 # NumPy-only names are absent


def test_standin_reductions_are_arrays_and_syncs_are_counted():
    a = standin.asarray([1.0, 2.0, 3.0])
    total = a.sum()
    assert isinstance(total, standin.ndarray) and total.shape == ()
    with standin.count_syncs() as counted:
        float(total), bool(total > 0), int(a.argmax()), a.max().item(), a.tolist()
        standin.asnumpy(a)
    assert counted == {"float": 1, "bool": 1, "int": 1, "item": 1, "tolist": 1, "asnumpy": 1}


def test_standin_generator_has_only_cupys_methods_and_cannot_be_deep_copied():
    generator = standin.random.default_rng(0)
    for method in ("random", "uniform", "integers", "standard_normal", "standard_exponential",
                   "standard_gamma", "binomial", "poisson", "beta", "gamma"):
        assert callable(getattr(generator, method))
    for method in ("permutation", "shuffle", "choice", "normal", "bytes"):
        assert not hasattr(generator, method), method
    with pytest.raises(TypeError, match="lock"):
        copy.deepcopy(generator)
    state = generator.bit_generator._state.copy()
    first = generator.random(4).get()
    generator.bit_generator._state[...] = state
    np.testing.assert_array_equal(generator.random(4).get(), first)


def test_standin_records_compile_options_and_checks_kernel_arguments():
    module = standin.RawModule(code='extern "C" __global__ void gg_pack_mask(', options=("--fmad=false",))
    assert standin.compiled_modules[-1]["options"] == ("--fmad=false",)
    assert standin.compiled_modules[-1]["nvrtc_options"] == ("--fmad=false", "-ftz=true")
    pack = module.get_function("gg_pack_mask")
    flags = standin.asarray(np.array([1, 0, 0, 1], np.uint8))
    words = standin.zeros(1, dtype=np.uint8)
    pack((1,), (256,), (flags, words, np.int64(4)))
    assert words.get().tolist() == [9]
    with pytest.raises(TypeError, match="NumPy array passed to a CUDA kernel"):
        pack((1,), (256,), (np.ones(4, np.uint8), words, np.int64(4)))
    with pytest.raises(TypeError, match="numpy.int64 scalar"):
        pack((1,), (256,), (flags, words, 4))
    with pytest.raises(standin.CUDADriverError, match="named symbol not found"):
        module.get_function("gg_relu_forward<float>")


def test_standin_pool_limit_raises_cupys_out_of_memory():
    pool = standin.get_default_memory_pool()
    previous = pool.get_limit()
    pool.set_limit(size=pool.used_bytes() + 1024)
    try:
        with pytest.raises(standin.cuda.memory.OutOfMemoryError, match=r"Out of memory allocating 8,000 bytes"):
            standin.zeros(1000)
    finally:
        pool.set_limit(size=previous)


# --------------------------------------------------------------------------
# Tests without the device fixture run on the CPU.
# --------------------------------------------------------------------------
def test_tests_without_a_device_run_on_the_cpu():
    assert gg.get_default_device() == gg.Device("cpu")
    assert isinstance(gg.zeros(2).array, np.ndarray)


def test_gpugrad_device_cuda_does_not_move_device_free_tests_to_the_gpu():
    """With GPUGRAD_DEVICE=cuda and a GPU (the stand-in), the test above still runs on the CPU."""
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, GPUGRAD_DEVICE="cuda", GPUGRAD_TEST_CUPY="standin", GPUGRAD_TEST_DEVICES="cuda")
    result = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                             os.path.join(here, "test_standin.py"), "-k",
                             "tests_without_a_device_run_on_the_cpu or refuses_a_mask"],
                            env=env, capture_output=True, text=True, timeout=300, cwd=os.path.dirname(here))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed, 1 skipped" in result.stdout, result.stdout[-2000:]


# --------------------------------------------------------------------------
# CUDA-path fixes, on every device.
# --------------------------------------------------------------------------
def test_randperm_is_a_seeded_permutation(device):
    gg.manual_seed(5)
    first = gg.randperm(50, device=device)
    assert first.device == gg.Device(device) and first.dtype == gg.int64
    assert sorted(first.tolist()) == list(range(50))
    gg.manual_seed(5)
    assert gg.randperm(50, device=device).tolist() == first.tolist()
    assert gg.randperm(0, device=device).tolist() == []
    with pytest.raises(ValueError, match="randperm: n must be non-negative"):
        gg.randperm(-1, device=device)


def _dropout_block(linear):
    return lambda t: gg.nn.functional.dropout(linear(t), p=0.5).tanh()


def test_checkpointed_dropout_gives_the_plain_gradients_and_keeps_the_stream(device):
    gg.manual_seed(0)
    linear = gg.nn.Linear(8, 8).to(device)
    x = gg.randn(16, 8, device=device, requires_grad=True)
    block = _dropout_block(linear)

    def run(checkpointed):
        linear.zero_grad()
        x.grad = None
        gg.manual_seed(11)
        out = gg.checkpoint(block, x) if checkpointed else block(x)
        (out * out).sum().backward()
        after = gg.rand(4, device=device)   # the stream continues as without checkpoint
        return [t.numpy() for t in (x.grad, linear.weight.grad, linear.bias.grad, after)]

    plain, checkpointed = run(False), run(True)
    for a, b in zip(plain, checkpointed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rng_state_through_a_checkpoint_file_resumes_every_stream(device, tmp_path):
    gg.manual_seed(21)
    gg.rand(3, device=device)                       # the generators have moved on
    gg.nn.functional.dropout(gg.ones(40, device=device), p=0.3)
    gg.save({"rng": backend.get_rng_state()}, tmp_path / "state.safetensors")
    expected = [gg.rand(5, device=device).numpy(), gg.randn(3).numpy(),
                gg.randint(0, 100, (4,), device=device).numpy()]
    # A fresh process: no generators, another seed.
    backend.manual_seed(999)
    backend.set_rng_state(gg.load(tmp_path / "state.safetensors")["rng"])
    resumed = [gg.rand(5, device=device).numpy(), gg.randn(3).numpy(),
               gg.randint(0, 100, (4,), device=device).numpy()]
    for a, b in zip(expected, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_rng_state_rejects_bad_state_before_changing_anything(device):
    gg.manual_seed(4)
    gg.rand(2, device=device)
    state = backend.get_rng_state()
    broken = dict(state, cuda={"0": {"bit_generator": "NoSuchGenerator", "state": np.zeros(4, np.int8)}})
    expected = gg.rand(3).numpy()
    backend.set_rng_state(state)
    if backend.cuda_is_available():
        with pytest.raises(ValueError, match="unknown CuPy bit generator 'NoSuchGenerator'"):
            backend.set_rng_state(broken)
    with pytest.raises(ValueError, match="set_rng_state: expected the dict"):
        backend.set_rng_state({"seed": 1})
    np.testing.assert_array_equal(gg.rand(3).numpy(), expected)   # the CPU stream did not move


def test_dropout_backward_refuses_a_mask_on_another_device(device):
    if device != "cuda":
        pytest.skip("the mismatch needs the cuda device next to the cpu")
    cp = backend.cupy_module()
    grad = cp.ones(16, dtype=cp.float32)
    host_mask = kernels.pack_mask(np.ones(16, dtype=bool))
    launched = len(standin.launches)
    with pytest.raises(gg.DeviceError, match="dropout backward: the gradient is on cuda:0 but the mask is on cpu"):
        kernels.dropout_backward(grad, host_mask, 0.5)
    assert len(standin.launches) == launched            # refused before any kernel launch
    with pytest.raises(gg.DeviceError, match="the gradient is on cpu but the mask is on cuda:0"):
        kernels.dropout_backward(np.ones(16, np.float32), cp.asarray(host_mask), 0.5)


# --------------------------------------------------------------------------
# NCCL on one GPU (fakes: no NCCL here).
# --------------------------------------------------------------------------
class _FakeNcclModule:
    def __init__(self):
        self.communicators = []

    def get_unique_id(self):
        return (7,) * 8

    def NcclCommunicator(self, ndev, unique_id, rank):  # noqa: N802 - CuPy's name
        self.communicators.append((ndev, unique_id, rank))
        return self


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(backend, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(backend, "cupy_module", lambda: type(
        "cupy", (), {"cuda": type("cuda", (), {"Device": staticmethod(lambda index: _NullDevice())})}))
    monkeypatch.setattr(dist._world, "nccl_device", gg.Device("cuda:0"))
    monkeypatch.setattr(dist._world, "comm", None)
    monkeypatch.setattr(dist._world, "nccl", None)
    monkeypatch.setattr(dist._world, "backend", "single")
    return _FakeNcclModule()


class _NullDevice:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_nccl_world_of_one_on_one_gpu_starts(one_gpu, monkeypatch):
    monkeypatch.setattr(dist._world, "world_size", 1)
    monkeypatch.setattr(dist._world, "local_size", 1)
    dist._start_nccl(one_gpu)
    assert one_gpu.communicators == [(1, (7,) * 8, 0)] and dist._world.backend == "nccl"
    array = np.array([1.0, 2.0])
    dist._all_reduce_array(array, "sum")                # a world of one: the identity
    assert array.tolist() == [1.0, 2.0]


def test_nccl_two_ranks_on_one_gpu_are_refused_before_nccl(one_gpu, monkeypatch):
    monkeypatch.setattr(dist._world, "world_size", 2)
    monkeypatch.setattr(dist._world, "local_size", 2)
    with pytest.raises(gg.DeviceError, match=r"2 ranks run on one node that has 1 GPU\(s\).*backend='mpi'"):
        dist._start_nccl(one_gpu)
    assert one_gpu.communicators == []


def test_nccl_crowded_node_elsewhere_is_refused_on_every_rank(one_gpu, monkeypatch):
    class Comm:
        def allgather(self, mine):
            return [mine, (3, 2)]                       # another node: 3 ranks, 2 GPUs

        def bcast(self, value, root):
            raise AssertionError("NCCL must not start")
    monkeypatch.setattr(dist._world, "comm", Comm())
    monkeypatch.setattr(dist._world, "world_size", 4)
    monkeypatch.setattr(dist._world, "local_size", 1)
    with pytest.raises(gg.DeviceError, match="3 ranks run on one node that has 2 GPU"):
        dist._start_nccl(one_gpu)


# --------------------------------------------------------------------------
# Host round-trips on the CUDA path (counted by the stand-in).
# --------------------------------------------------------------------------
def test_a_training_step_on_cuda_never_synchronises(device):
    if device != "cuda" or not getattr(backend.cupy_module(), "STANDIN", False):
        pytest.skip("counts device-to-host syncs through the CuPy stand-in (GPUGRAD_TEST_CUPY=standin)")
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(8, 16), gg.nn.ReLU(), gg.nn.Dropout(0.1), gg.nn.Linear(16, 3)).to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=1e-3)
    x, target = gg.randn(4, 8, device=device), gg.randn(4, 3, device=device)
    # (mse_loss: cross_entropy checks its class indices on the host, one deliberate sync per call.)
    with standin.count_syncs() as counted:
        for _ in range(2):
            optimizer.zero_grad()
            loss = gg.nn.functional.mse_loss(model(x), target)
            loss.backward()
            optimizer.step()
    assert counted == {}


# --------------------------------------------------------------------------
# A resumed run continues the uninterrupted run's random streams, on every device.
# --------------------------------------------------------------------------
class _InterruptAt(gg.train.Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_batch_end(self, step, logs=None):
        if step == self.at_step:
            raise KeyboardInterrupt


def _dropout_run(device, checkpoint=None, seed=0, interrupt_at=None):
    gg.manual_seed(seed)
    data = np.random.default_rng(3)
    x = gg.tensor(data.standard_normal((64, 6)), dtype=gg.float32)
    y = gg.tensor(data.integers(0, 3, 64))
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    model = gg.nn.Sequential(gg.nn.Linear(6, 32), gg.nn.ReLU(), gg.nn.Dropout(0.4), gg.nn.Linear(32, 3))
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    callbacks = [] if interrupt_at is None else [_InterruptAt(interrupt_at)]
    gg.train.fit(model, optimizer, gg.nn.CrossEntropyLoss(), loader, epochs=3, callbacks=callbacks,
                 checkpoint=checkpoint, progress=False, device=device)
    return {key: value.numpy() for key, value in model.state_dict().items()}


def test_an_interrupted_dropout_run_resumes_the_device_streams(device, tmp_path):
    expected = _dropout_run(device)
    path = tmp_path / "run.safetensors"
    with pytest.raises(KeyboardInterrupt):
        _dropout_run(device, checkpoint=path, interrupt_at=4 + 2)    # dies in the second epoch
    if device == "cuda":
        assert "0" in gg.load(path)["rng"]["cuda"]                   # the CUDA stream is in the file
    resumed = _dropout_run(device, checkpoint=path, seed=123)        # another seed: the file must win
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)


def test_a_cuda_generator_draws_on_its_own_gpu_whichever_is_current(device, monkeypatch):
    if device != "cuda" or not getattr(backend.cupy_module(), "STANDIN", False):
        pytest.skip("needs two GPUs: emulated by the CuPy stand-in (GPUGRAD_TEST_CUPY=standin)")
    monkeypatch.setattr(standin, "_DEVICE_COUNT", 2)
    monkeypatch.setattr(backend, "_cuda_count", 2)
    second = gg.Device("cuda:1")
    monkeypatch.delitem(backend._generators, second, raising=False)
    gg.manual_seed(2)
    with standin.cuda.Device(0):       # CuPy refuses a generator used while another GPU is current
        draw = backend.generator(second).random(3)
        snapshot = backend.generator_state(second)
    assert draw.device.id == 1 and snapshot["state"].device.id == 1
    replay = backend.generator_from_state(second, snapshot)
    with standin.cuda.Device(1):
        expected = backend.generator(second).random(3).get()
    np.testing.assert_array_equal(replay.random(3).get(), expected)
