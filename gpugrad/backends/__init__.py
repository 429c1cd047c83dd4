"""``gg.backends``: PyTorch's backend switches, as harmless settings.

gpugrad computes with NumPy and CuPy and calls no cuDNN or TF32 paths of its
own, so ``gg.backends.cudnn.benchmark = True`` and friends are stored and read
back but change nothing: results are the same either way (and gpugrad's
kernels are deterministic).  ``mps`` is never available.

Examples
--------
>>> import gpugrad as gg
>>> gg.backends.cudnn.benchmark = True
>>> gg.backends.cudnn.benchmark, gg.backends.mps.is_available()
(True, False)
"""

import types as _types

__all__ = ["cudnn", "cuda", "mps", "mkldnn", "openmp"]


def _false():
    return False


def _flags(name, doc, **settings):
    module = _types.SimpleNamespace(**settings)
    module.__doc__ = doc
    module.__name__ = f"gpugrad.backends.{name}"
    module.is_available = _false
    return module


cudnn = _flags("cudnn", "cuDNN switches (stored only: gpugrad does not call cuDNN).",
               enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
cudnn.version = lambda: None
mps = _flags("mps", "Apple MPS: not supported by gpugrad.")
mps.is_built = _false
mkldnn = _flags("mkldnn", "oneDNN switches (stored only).", enabled=True)
openmp = _flags("openmp", "OpenMP (stored only).")
cuda = _types.SimpleNamespace(__doc__="CUDA matmul switches (stored only: gpugrad uses no TF32 paths).",
                              matmul=_types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                                                            allow_bf16_reduced_precision_reduction=True),
                              is_built=lambda: True)
