"""gg.ops optimizer steps (``sgd_step_``, ``adam_step_``, ...) and ``foreach=``/``fused=``.

The golden digests below were recorded with the optimizers as they were before their
updates moved into ``gpugrad/ops/optim_steps.py`` (commit 55b4a26, NumPy, this test's
seeds): moving the arithmetic must not change one bit of any parameter or state.
"""
import hashlib
import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend

GOLDEN_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.02)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.4, 0.7))),
    ("Adam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01, betas=(0.5, 0.99), weight_decay=0.0)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.3, 0.99), weight_decay=0.05, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.85, 0.99), weight_decay=0.1, momentum_decay=1e-2)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]
SHAPES = [(3, 4), (5,), ()]
STEPS = 7


def case_id(name, options, dtype):
    return f"{name}-{dtype}-" + "-".join(f"{k}={v}" for k, v in options.items())


def run_case(gg, name, options, dtype, device="cpu", extra=None):
    """Digest of the parameters and the state after STEPS steps (the 2nd param has no grad at step 2)."""
    rng = np.random.default_rng(1234)
    initial = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    params = [gg.tensor(v, dtype=dtype, device=device, requires_grad=True) for v in initial]
    opt = getattr(gg.optim, name)(params, **options, **(extra or {}))
    for step in range(STEPS):
        for i, (p, g) in enumerate(zip(params, grads[step])):
            p.grad = None if (step == 2 and i == 1) else gg.tensor(g, dtype=dtype, device=device)
        opt.step()
    digest = hashlib.sha256()
    for p in params:
        digest.update(np.ascontiguousarray(p.numpy()).tobytes())
    for _index, state in sorted(opt.state_dict()["state"].items()):
        for key in sorted(state):
            value = state[key]
            digest.update(key.encode())
            if hasattr(value, "numpy"):
                digest.update(np.ascontiguousarray(value.numpy()).tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()[:24]


# sha256 (first 24 hex digits) of parameters + state after STEPS steps, recorded at 55b4a26.
GOLDEN = {
    'SGD-float32-lr=0.1': 'f5827e8a230cd370af416203',
    'SGD-float64-lr=0.1': '90b449c4d565b7db491a775d',
    'SGD-float32-lr=0.05-momentum=0.9': '9ace3d815387d5ca049843d0',
    'SGD-float64-lr=0.05-momentum=0.9': '3329c787390e2d36ded23c2c',
    'SGD-float32-lr=0.05-momentum=0.9-dampening=0.3-weight_decay=0.01': '60d2f1df326199af107f642a',
    'SGD-float64-lr=0.05-momentum=0.9-dampening=0.3-weight_decay=0.01': '36d355d38a35db93d2ff2f0c',
    'SGD-float32-lr=0.05-momentum=0.8-nesterov=True-weight_decay=0.1': '8595e32eb0dcd09fad7eb43c',
    'SGD-float64-lr=0.05-momentum=0.8-nesterov=True-weight_decay=0.1': '7cf75f7d0fa900a2286cfd70',
    'SGD-float32-lr=0.05-momentum=0.5-maximize=True-weight_decay=0.02': '412c21fbcb30a5ff44d17113',
    'SGD-float64-lr=0.05-momentum=0.5-maximize=True-weight_decay=0.02': 'af7a878cc2d153cd50bda55c',
    'Adam-float32-': '1efa1ad095d50750ca8dad8a',
    'Adam-float64-': '387ec232d8ec6d19d2ee5aa4',
    'Adam-float32-lr=0.01-betas=(0.8, 0.9)-eps=1e-06-weight_decay=0.1': '7655074e378a2a182fe4deb5',
    'Adam-float64-lr=0.01-betas=(0.8, 0.9)-eps=1e-06-weight_decay=0.1': '89f342ef781ad76254386122',
    'Adam-float32-lr=0.01-amsgrad=True': 'c9cb7a8bde0192be9ab41829',
    'Adam-float64-lr=0.01-amsgrad=True': '897d18ed8c1b3d0103f0688a',
    'Adam-float32-lr=0.02-amsgrad=True-weight_decay=0.05-maximize=True': 'aa14ccb44cd8e931ebc2146f',
    'Adam-float64-lr=0.02-amsgrad=True-weight_decay=0.05-maximize=True': 'baa96a40415d76be74cc2200',
    'Adam-float32-lr=0.02-betas=(0.4, 0.7)': '791c46fd22fab68f683cbefb',
    'Adam-float64-lr=0.02-betas=(0.4, 0.7)': '8c02c3906536614b6dbf14c9',
    'Adam-float32-lr=0.02-weight_decay=0.1-decoupled_weight_decay=True': 'ce75a62a66d321b25c863fae',
    'Adam-float64-lr=0.02-weight_decay=0.1-decoupled_weight_decay=True': '6cb113d6d6eb38c39c8628b5',
    'AdamW-float32-': '1ebc65ee205223bc0cf06806',
    'AdamW-float64-': 'ffa1b7167b182b78cc8d9c2f',
    'AdamW-float32-lr=0.01-weight_decay=0.3-amsgrad=True-maximize=True': 'c76a90234315ade4ffc884a1',
    'AdamW-float64-lr=0.01-weight_decay=0.3-amsgrad=True-maximize=True': '6ebaa65ffd1bfd2a975297aa',
    'AdamW-float32-lr=0.01-betas=(0.5, 0.99)-weight_decay=0.0': '320e1893b15a2073a1c8dfea',
    'AdamW-float64-lr=0.01-betas=(0.5, 0.99)-weight_decay=0.0': '618ee49e44530dbd2824128b',
    'RMSprop-float32-': '20ee71439547533754f0de46',
    'RMSprop-float64-': '61e32f214390c653c8e697b6',
    'RMSprop-float32-lr=0.01-alpha=0.9-eps=1e-06-weight_decay=0.1': 'f84d78338aa9553d4a6e8ecf',
    'RMSprop-float64-lr=0.01-alpha=0.9-eps=1e-06-weight_decay=0.1': '485637b5bdf90981d5ffe6fd',
    'RMSprop-float32-lr=0.01-momentum=0.9': '271c11fcdb19b32748c0a4fe',
    'RMSprop-float64-lr=0.01-momentum=0.9': '287198cfd8671e129fad44d3',
    'RMSprop-float32-lr=0.01-centered=True': 'ba63c7881040aa6d3c0498b5',
    'RMSprop-float64-lr=0.01-centered=True': '0a967b3ca1f8d3de3ddcc7ea',
    'RMSprop-float32-lr=0.01-centered=True-momentum=0.5-weight_decay=0.01-maximize=True': '81be887487cf6e0f6ff80b54',
    'RMSprop-float64-lr=0.01-centered=True-momentum=0.5-weight_decay=0.01-maximize=True': '2859bedf2cd74381cd7ef0a7',
    'RMSprop-float32-lr=0.01-alpha=0.3-centered=True': '07fb52a41c6ac9c06e56ba3b',
    'RMSprop-float64-lr=0.01-alpha=0.3-centered=True': 'a70bf4424346f2c8d34a8164',
    'Adagrad-float32-': '1d348fc1ad2821f5746b0ec1',
    'Adagrad-float64-': '1cea6125f88113b9de78c8ca',
    'Adagrad-float32-lr=0.1-lr_decay=0.05-weight_decay=0.1': '809b84b60b898293aec8ee8e',
    'Adagrad-float64-lr=0.1-lr_decay=0.05-weight_decay=0.1': '94ead76bf9c054b040e2652b',
    'Adagrad-float32-lr=0.1-initial_accumulator_value=0.5-eps=1e-06': 'c697c4c890d9bd4de4d2c082',
    'Adagrad-float64-lr=0.1-initial_accumulator_value=0.5-eps=1e-06': 'dda63fe01c9118e3959fdfa8',
    'Adagrad-float32-lr=0.1-maximize=True': '45d1eadf9351ed152bc21777',
    'Adagrad-float64-lr=0.1-maximize=True': 'f7e53472d7615afe07b10eb4',
    'Adadelta-float32-': '6259231e52ffae295a49df8c',
    'Adadelta-float64-': 'f7b5da3a773999697062e398',
    'Adadelta-float32-lr=0.5-rho=0.8-eps=1e-05-weight_decay=0.1-maximize=True': 'be476ac91de9b0fab81ee606',
    'Adadelta-float64-lr=0.5-rho=0.8-eps=1e-05-weight_decay=0.1-maximize=True': '53a3cfc0c07add3df6ab62d5',
    'Adamax-float32-': 'c83a56c6ea27ca7a123ea181',
    'Adamax-float64-': 'c3c37bc5c5088565f3eb97fd',
    'Adamax-float32-lr=0.01-betas=(0.3, 0.99)-weight_decay=0.05-maximize=True': 'b947afab6e343cd4839fef58',
    'Adamax-float64-lr=0.01-betas=(0.3, 0.99)-weight_decay=0.05-maximize=True': '1f694f105ad982a7a112500d',
    'NAdam-float32-': 'a31c3f7daefc789225b08e12',
    'NAdam-float64-': 'e6ab796158d979906e7245fd',
    'NAdam-float32-lr=0.01-betas=(0.85, 0.99)-weight_decay=0.1-momentum_decay=0.01': '7d24cd8ca449c78629539de8',
    'NAdam-float64-lr=0.01-betas=(0.85, 0.99)-weight_decay=0.1-momentum_decay=0.01': 'e71b34a2ed7c2c00a7a8fe67',
    'NAdam-float32-lr=0.01-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': '4dba689b08005568c372d6d3',
    'NAdam-float64-lr=0.01-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': 'b5d25088a7d0c108f853af9a',
    'RAdam-float32-': '59eda770161067d11757e633',
    'RAdam-float64-': 'b221c8090b8bcf503a37b72e',
    'RAdam-float32-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1': 'c905bcfa6483e68da6f8081c',
    'RAdam-float64-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1': '57c37836eee3b15089320a76',
    'RAdam-float32-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': '9f607fcecc8b41612b5568fd',  # noqa: E501
    'RAdam-float64-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': '149fdd5aada4e6ea027b7dc2',  # noqa: E501
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[case_id(n, o, "") for n, o in GOLDEN_CASES])
def test_steps_equal_the_pre_refactor_updates_bit_for_bit(case, dtype):
    name, options = case
    assert run_case(gg, name, options, dtype) == GOLDEN[case_id(name, options, dtype)]


FUSABLE = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")
FUSABLE_CASES = [(name, options) for name, options in GOLDEN_CASES if name in FUSABLE]


@pytest.mark.parametrize("flags", [dict(fused=True), dict(foreach=True), dict(foreach=False, fused=False)],
                         ids=["fused", "foreach", "neither"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", FUSABLE_CASES, ids=[case_id(n, o, "") for n, o in FUSABLE_CASES])
def test_fused_and_foreach_equal_the_default_bit_for_bit_on_cpu(case, dtype, flags):
    name, options = case
    assert run_case(gg, name, options, dtype, extra=flags) == GOLDEN[case_id(name, options, dtype)]


def _trajectory(name, options, dtype, device, steps=5, shapes=((3, 4), (5,), ())):
    rng = np.random.default_rng(7)
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    params = [gg.tensor(v, device=device, requires_grad=True) for v in initial]
    optimizer = getattr(gg.optim, name)(params, **options)
    history = []
    for step in range(steps):
        for param, grad in zip(params, grads[step]):
            param.grad = gg.tensor(grad, device=device)
        optimizer.step()
        history.append([param.numpy().copy() for param in params])
    return history, optimizer


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("case", FUSABLE_CASES, ids=[case_id(n, o, "") for n, o in FUSABLE_CASES])
def test_fused_kernels_equal_the_unfused_step_on_the_device(case, dtype, device):
    """On CuPy fused=True runs one kernel per parameter (through the stand-in: its NumPy twin)."""
    if device == "cpu":
        pytest.skip("the kernels run on CUDA; on the CPU fused is the default arithmetic (tested above)")
    import cupy
    name, options = case
    if dtype == "float16" and name != "SGD":
        # The default eps (1e-8..1e-6) is 0 or subnormal in float16: both sides would divide by
        # about 0, and float32 arithmetic (the kernel) vs float16 rounding per operation (unfused) diverge.
        options = dict(options, eps=1e-3)
    expected, _ = _trajectory(name, options, dtype, device)
    launched = len(getattr(cupy, "launches", ()))
    got, optimizer = _trajectory(name, dict(options, fused=True), dtype, device)
    if getattr(cupy, "STANDIN", False):
        fused_launches = [entry for entry in cupy.launches[launched:] if entry[0].endswith("_step")]
        assert len(fused_launches) == 5 * 3        # one per parameter per step
    tolerance = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6),
                 "float16": dict(rtol=1e-2, atol=1e-2)}[dtype]
    for step, (ours, reference) in enumerate(zip(got, expected)):
        for value, wanted in zip(ours, reference):
            assert value.dtype == np.dtype(dtype)
            np.testing.assert_allclose(value.astype(np.float64), wanted.astype(np.float64), **tolerance,
                                       err_msg=f"{name} {options} step {step}")
    assert optimizer.param_groups[0]["fused"] is True


def test_fused_twins_compute_what_the_unfused_arithmetic_computes():
    """The twins (what the CUDA kernels compute) equal the default NumPy update bit for bit in float32/64."""
    from gpugrad.kernels import optim_kernels
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        param, grad = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
        exp_avg, exp_avg_sq = rng.standard_normal(7).astype(dtype), rng.random(7).astype(dtype)
        twin_state = [param.copy(), exp_avg.copy(), exp_avg_sq.copy()]
        step_size, bias_correction2_sqrt = 0.01 / (1 - 0.9 ** 1), math.sqrt(1 - 0.999 ** 1)
        optim_kernels.TWINS["gg_adam_step"](grad, 0.1, 1 - 0.01 * 0.1, 1 - 0.9, 0.999, 1 - 0.999, step_size,
                                            bias_correction2_sqrt, 1e-8, 0, 0, *twin_state)
        tensors = [gg.tensor(a.copy(), requires_grad=(i == 0)) for i, a in enumerate([param, exp_avg, exp_avg_sq])]
        from gpugrad.ops.optim_steps import adam_step_
        adam_step_([tensors[0]], [gg.tensor(grad)], [tensors[1]], [tensors[2]], None, [1], lr=0.01, beta1=0.9,
                   beta2=0.999, eps=1e-8, weight_decay=0.1)
        for twin_value, tensor in zip(twin_state, tensors):
            np.testing.assert_array_equal(twin_value, tensor.numpy())


@pytest.mark.parametrize("name", FUSABLE)
def test_fused_and_foreach_together_are_refused_as_in_torch(name):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        getattr(gg.optim, name)([gg.tensor([1.0], requires_grad=True)], fused=True, foreach=True)
    if name != "RMSprop":        # PyTorch's RMSprop has no fused (gpugrad's accepts it)
        with pytest.raises(RuntimeError, match="cannot be `True` together"):
            getattr(torch.optim, name)([torch.ones(1, requires_grad=True)], fused=True, foreach=True)
    with pytest.raises(ValueError, match="fused='yes' must be None, True or False"):
        getattr(gg.optim, name)([gg.tensor([1.0], requires_grad=True)], fused="yes")


@pytest.mark.parametrize("name", FUSABLE)
def test_foreach_and_fused_are_group_options_like_torchs(name):
    torch = pytest.importorskip("torch")
    ours = getattr(gg.optim, name)([gg.tensor([1.0], requires_grad=True)], fused=True)
    group = ours.state_dict()["param_groups"][0]
    assert group["fused"] is True and group["foreach"] is None
    if name != "RMSprop":
        theirs = getattr(torch.optim, name)([torch.ones(1, requires_grad=True)], fused=True)
        expected = theirs.state_dict()["param_groups"][0]
        assert (group["fused"], group["foreach"]) == (expected["fused"], expected["foreach"])
    # A checkpoint written before the options existed loads and takes the defaults.
    state = ours.state_dict()
    for saved in state["param_groups"]:
        del saved["fused"], saved["foreach"]
    fresh = getattr(gg.optim, name)([gg.tensor([1.0], requires_grad=True)])
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["fused"] is None


TORCH_FLAGS = [dict(foreach=True), dict(fused=True), dict(foreach=False)]


@pytest.mark.parametrize("flags", TORCH_FLAGS, ids=["foreach", "fused", "single-tensor"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", FUSABLE_CASES, ids=[case_id(n, o, "") for n, o in FUSABLE_CASES])
def test_fused_and_foreach_match_torch(case, dtype, flags, device):
    torch = pytest.importorskip("torch")
    name, options = case
    torch_flags = flags if not (name == "RMSprop" and "fused" in flags) else {}
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (5,), ()]
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [gg.tensor(v, device=device, requires_grad=True) for v in initial]
    theirs = [torch.tensor(v, requires_grad=True) for v in initial]
    optimizer = getattr(gg.optim, name)(ours, **options, **flags)
    reference = getattr(torch.optim, name)(theirs, **options, **torch_flags)
    tolerance = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    for step in range(6):
        for param, other in zip(ours, theirs):
            grad = rng.standard_normal(param.shape).astype(dtype)
            param.grad = gg.tensor(grad, device=device)
            other.grad = torch.tensor(grad)
        optimizer.step()
        reference.step()
        for param, expected in zip(ours, theirs):
            assert param.device == backend.as_device(device)
            np.testing.assert_allclose(param.numpy(), expected.detach().numpy(), **tolerance,
                                       err_msg=f"{name} {options} {flags} step {step}")


def test_fused_refuses_a_gradient_of_another_dtype_and_changes_nothing(device):
    if device == "cpu":
        pytest.skip("on the CPU fused runs the default arithmetic, which promotes as it always did")
    first = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    second = gg.tensor([3.0], device=device, requires_grad=True)
    optimizer = gg.optim.Adam([first, second], lr=0.1, fused=True)
    first.grad = gg.tensor([1.0, 1.0], device=device)
    second.grad = gg.tensor([1.0], dtype="float64", device=device)
    with pytest.raises(gg.DTypeError, match="fused kernel needs both of one dtype"):
        optimizer.step()
    assert first.numpy().tolist() == [1.0, 2.0] and second.numpy().tolist() == [3.0]
    assert len(optimizer.state) == 0


def test_steps_are_ops_that_bump_versions_and_build_no_graph():
    from gpugrad.ops.optim_steps import sgd_step_
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()                 # saves w for backward
    before = w._version
    sgd_step_([w], [gg.tensor([1.0, 1.0])], None, lr=0.5)
    assert w._version > before and w.grad_fn is None and w.is_leaf
    with pytest.raises(Exception, match="modified by an inplace operation|version"):
        y.backward()


def test_the_standin_elementwise_kernel_is_as_strict_as_a_launch_on_a_card():
    import cupy_standin as standin
    kernel = standin.ElementwiseKernel("T grad, float64 lr, float64 weight_decay, int32 maximize", "T param",
                                       "param = param - grad * lr;", "gg_sgd_step")
    param, grad = standin.asarray(np.ones(3, np.float32)), standin.asarray(np.full(3, 2.0, np.float32))
    kernel(grad, 0.5, 0.0, 0, param)
    assert param.get().tolist() == [0.0, 0.0, 0.0] and standin.launches[-1][0] == "gg_sgd_step"
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel(np.ones(3, np.float32), 0.5, 0.0, 0, param)               # a host array on a device kernel
    with pytest.raises(TypeError, match="dtype float32; T is bound to float64"):
        kernel(standin.asarray(np.ones(3)), 0.5, 0.0, 0, param)           # float64 grad, float32 param
    with pytest.raises(ValueError, match="does not match"):
        kernel(standin.asarray(np.ones(4, np.float32)), 0.5, 0.0, 0, param)
    with pytest.raises(TypeError, match="wrong number of arguments"):
        kernel(grad, 0.5, param)
    with pytest.raises(TypeError, match="scalar parameter"):
        kernel(grad, grad, 0.0, 0, param)
    with pytest.raises(standin.StandinLimitation, match="no NumPy twin"):
        standin.ElementwiseKernel("T x", "T y", "y = x;", "someone_elses_kernel")
