"""gg.ops optimizer steps (``sgd_step_``, ``adam_step_``, ...) and ``foreach=``/``fused=``.

The golden digests below were recorded with the optimizers as they were before their
updates moved into ``gpugrad/ops/optim_steps.py`` (commit 55b4a26, NumPy, this test's
seeds): moving the arithmetic must not change one bit of any parameter or state.
"""
import hashlib

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
    for index, state in sorted(opt.state_dict()["state"].items()):
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
    'RAdam-float32-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': '9f607fcecc8b41612b5568fd',
    'RAdam-float64-lr=0.01-betas=(0.9, 0.9)-weight_decay=0.1-decoupled_weight_decay=True-maximize=True': '149fdd5aada4e6ea027b7dc2',
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[case_id(n, o, "") for n, o in GOLDEN_CASES])
def test_steps_equal_the_pre_refactor_updates_bit_for_bit(case, dtype):
    name, options = case
    assert run_case(gg, name, options, dtype) == GOLDEN[case_id(name, options, dtype)]
