"""Activation kernels: compiled, run on the CPU through the shim, and checked
against their NumPy twins, independent references, PyTorch, and (on a GPU) CuPy.

What each group catches:

- compile: a .cu that NVCC/NVRTC rejects for sm_80 or sm_90, or a kernel in the
  Python table that the source lacks (every instantiation is named explicitly).
- shim: a kernel whose math differs from its twin (wrong formula, wrong branch
  for NaN/inf/-0, broken grid-stride loop, wrong bit order), by running the
  very same source as C++ on random and extreme inputs.
- twin: twins that disagree with high-precision references (mpmath) or with
  torch.nn.functional, in values and gradients.
- cuda: the RawModule path against the twin, skipped without a GPU.

Compilers and the harness are built once per session in a temporary folder.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import site
import subprocess
import sys
import threading

import numpy as np
import pytest

from gpugrad import backend
from gpugrad import kernels as K
from gpugrad.kernels import twins

KERNEL_DIR = os.path.dirname(K.SOURCE_PATH)
DTYPES = (np.float16, np.float32, np.float64)
SUFFIX = {np.dtype(np.float16): "f16", np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
# Parameter sets: defaults, and non-default values so a kernel that ignores its
# parameter fails.
PARAMS = {
    "leaky_relu": ({}, {"negative_slope": 0.2}),
    "elu": ({}, {"alpha": 1.5}),
    "softplus": ({}, {"beta": 2.0, "threshold": 10.0}),
}
CASES = [(name, params) for name in K.ACTIVATIONS for params in PARAMS.get(name, ({},))]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]

EXTREMES = [
    0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, 1.4e-45, -1.4e-45, 1e-38, -1e-38,
    6e-8, -6e-8, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 9.999, 10.0, 10.001, 19.999, 20.0, 20.001,
    -20.0, 40.0, -40.0, 88.7, 89.0, -88.7, -104.0, -200.0, 710.0, -710.0, 1e4, -1e4, 65504.0,
    65519.0, 65520.0, 1e5, -1e5, 1e19, 1e20, -1e20, 3e38, -3e38, 1e300, -1e300, 1.7e308,
]

# Tolerances: rtol of a few ulps of the compute type, atol for results that
# underflow to subnormals, and for gradients an absolute slack proportional to
# |grad| (a derivative that crosses zero, e.g. silu' near x = -1.28, is a sum of
# O(1) terms, so its absolute error is O(eps) however small its value).
RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}
ATOL = {np.dtype(np.float16): 6e-8, np.dtype(np.float32): 1e-37, np.dtype(np.float64): 1e-300}
GRAD_SLACK = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}


def sample(dtype, rng, n=1200):
    """Random values at several scales plus every extreme, in ``dtype``."""
    with np.errstate(over="ignore"):
        values = np.concatenate([
            rng.standard_normal(n // 3) * 3,
            rng.uniform(-30, 30, n // 3),
            np.exp(rng.uniform(-20, 6, n // 3)) * rng.choice([-1, 1], n // 3),
            np.array(EXTREMES),
        ])
        return values.astype(dtype)


def placed(array, offset_elements=0):
    """A copy of ``array`` at a 64-byte boundary plus ``offset_elements``.

    The mask kernels move 8 elements as one aligned vector when the pointers
    allow and fall back to scalars otherwise; tests place arrays both ways so
    each path runs (NumPy's own alignment is only 16 bytes, i.e. either).
    """
    array = np.ascontiguousarray(array)
    buffer = np.empty(array.nbytes + 128, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset_elements * array.itemsize
    out = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def assert_matches(actual, expected, dtype, grad=None, rtol=None, what="", atol=None):
    """Elementwise: NaN where NaN, same infinities, else within rtol/atol."""
    dtype = np.dtype(dtype)
    assert actual.dtype == expected.dtype == dtype, (actual.dtype, expected.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    rtol = RTOL[dtype] if rtol is None else rtol
    with np.errstate(invalid="ignore"):
        tolerance = rtol * np.maximum(np.abs(a), np.abs(e)) + (ATOL[dtype] if atol is None else atol)
        if grad is not None:
            tolerance = tolerance + GRAD_SLACK[dtype] * np.abs(np.asarray(grad, dtype=np.float64).ravel())
        ok = (a == e) | (np.isnan(a) & np.isnan(e)) | (np.abs(a - e) <= tolerance)
    if not ok.all():
        bad = np.flatnonzero(~ok)[:8]
        raise AssertionError(f"{what}: {int((~ok).sum())} of {a.size} differ; first at "
                             f"{bad.tolist()}: got {a[bad].tolist()}, expected {e[bad].tolist()}")


# --------------------------------------------------------------------------
# Compilers.
# --------------------------------------------------------------------------
def _instantiation_source():
    """activation.cu plus one explicit instantiation per (kernel, dtype)."""
    lines = [f'#include "{K.SOURCE_PATH}"']
    for kernel, family in K.KERNELS.items():
        for ctype in ("gg_half", "float", "double"):
            signature = K.FAMILIES[family].replace("T*", ctype + "*")
            lines.append(f"template __global__ void {kernel}<{ctype}>({signature});")
    return "\n".join(lines) + "\n"


def _find_nvrtc():
    candidates = []
    for root in site.getsitepackages() + [site.getusersitepackages()]:
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "libnvrtc.so*")))
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
    cuda_home = os.environ.get("CUDA_PATH") or os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    candidates += sorted(glob.glob(os.path.join(cuda_home, "lib64", "libnvrtc.so*")))
    # Whatever the dynamic loader finds (LD_LIBRARY_PATH, ldconfig), as CuPy would.
    candidates += [name for name in (ctypes.util.find_library("nvrtc"), "libnvrtc.so.13", "libnvrtc.so.12",
                                     "libnvrtc.so") if name]
    for path in candidates:
        if "builtins" in os.path.basename(path):
            continue
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _nvrtc_compile(nvrtc, arch):
    """Compile activation.cu as RawModule does (NVRTC + name expressions).

    Returns the lowered (mangled) names of every name expression.
    """
    with open(K.SOURCE_PATH, "rb") as handle:
        source = handle.read()
    program = ctypes.c_void_p()

    def check(status, step):
        if status != 0:
            raise AssertionError(f"NVRTC {step} failed with status {status}")

    check(nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"activation.cu", 0, None, None),
          "create")
    try:
        expressions = K.name_expressions() + list(K.PLAIN_KERNELS)
        for expression in expressions:
            check(nvrtc.nvrtcAddNameExpression(program, expression.encode()), "add name expression")
        # Exactly CuPy's options: ours, then the -ftz=true CuPy appends to every RawModule.
        options = [f"--gpu-architecture={arch}".encode(), b"--std=c++14", b"--fmad=false", b"-ftz=true"]
        status = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
        size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetProgramLog(program, log)
        assert status == 0, f"NVRTC could not compile activation.cu for {arch}:\n{log.value.decode()}"
        lowered = {}
        for expression in expressions:
            name = ctypes.c_char_p()
            check(nvrtc.nvrtcGetLoweredName(program, expression.encode(), ctypes.byref(name)),
                  f"lowered name of {expression}")
            lowered[expression] = name.value.decode()
        cubin_size = ctypes.c_size_t()
        check(nvrtc.nvrtcGetCUBINSize(program, ctypes.byref(cubin_size)), "cubin size")
        assert cubin_size.value > 0
        return lowered
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gg_kernels")


class Builds:
    """The session's compiler runs, all started at once so two cores overlap them.

    nvcc (PTX, then ptxas) for each architecture and g++ for the CPU shim are
    single-threaded and take seconds each; run one after another they were most
    of this file's time.  ``result(name)`` waits for one and returns
    (returncode, output).
    """

    ARCHS = ("sm_80", "sm_90")

    def __init__(self, build_dir):
        self.dir = build_dir
        self.processes, self.results = {}, {}
        self.nvcc = shutil.which("nvcc")
        self.cxx = shutil.which("g++") or shutil.which("c++")
        if self.nvcc is not None:
            source = build_dir / "instantiate.cu"
            source.write_text(_instantiation_source())
            ptxas = os.path.join(os.path.dirname(os.path.realpath(self.nvcc)), "ptxas")
            for arch in self.ARCHS:
                ptx = build_dir / f"activation_{arch}.ptx"
                command = [self.nvcc, f"-arch={arch}", "--ptx", "--fmad=false", "-ftz=true", "-std=c++14", str(source),
                           "-o", str(ptx)]
                script = " ".join(map(_quote, command))
                if os.path.exists(ptxas):
                    script += " && " + " ".join(map(_quote, [ptxas, f"-arch={arch}", str(ptx), "-o",
                                                             str(build_dir / f"{arch}.cubin")]))
                self.processes[arch] = self._start(["bash", "-c", script])
        # NVRTC runs in-process; ctypes drops the GIL, so a thread overlaps it too.
        self.nvrtc = _find_nvrtc()
        self.nvrtc_result = None
        if self.nvrtc is not None:
            self.nvrtc_thread = threading.Thread(target=self._run_nvrtc, daemon=True)
            self.nvrtc_thread.start()
        self.library = build_dir / "libgg_harness.so"
        if self.cxx is not None:
            self.processes["shim"] = self._start(
                [self.cxx, "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC",
                 "-I", KERNEL_DIR, os.path.join(KERNEL_DIR, "harness.cpp"), "-o", str(self.library)])

    def _run_nvrtc(self):
        try:
            self.nvrtc_result = _nvrtc_compile(self.nvrtc, "sm_90")
        except BaseException as error:  # noqa: BLE001 - re-raised in the test
            self.nvrtc_result = error

    def nvrtc_names(self):
        self.nvrtc_thread.join()
        if isinstance(self.nvrtc_result, BaseException):
            raise self.nvrtc_result
        return self.nvrtc_result

    @staticmethod
    def _start(command):
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self, name):
        if name not in self.results:
            process = self.processes[name]
            output, _ = process.communicate()
            self.results[name] = (process.returncode, output)
        return self.results[name]

    def close(self):
        for name, process in self.processes.items():
            if name not in self.results:
                process.kill()
                process.communicate()


def _quote(text):
    import shlex  # noqa: PLC0415
    return shlex.quote(str(text))


@pytest.fixture(scope="session")
def builds(build_dir):
    started = Builds(build_dir)
    yield started
    started.close()


@pytest.mark.parametrize("arch", Builds.ARCHS)
def test_cuda_source_compiles(arch, builds):
    """Every kernel x dtype compiles and assembles for the architecture."""
    expected_entries = 3 * len(K.KERNELS) + len(K.PLAIN_KERNELS)
    if builds.nvcc is not None:
        returncode, output = builds.result(arch)
        assert returncode == 0, f"nvcc/ptxas failed for {arch}:\n{output}"
        ptx = builds.dir / f"activation_{arch}.ptx"
        entries = [line for line in ptx.read_text().splitlines() if ".entry " in line]
        assert len(entries) == expected_entries, (len(entries), expected_entries)
        return
    nvrtc = _find_nvrtc()
    if nvrtc is None:
        pytest.skip("neither nvcc nor NVRTC (pip install 'cuda-toolkit[nvrtc]') is available")
    assert len(_nvrtc_compile(nvrtc, arch)) == expected_entries


def test_nvrtc_name_expressions(builds):
    """The exact RawModule path: NVRTC resolves every name expression.

    One architecture is enough here (the front end resolves the names, and
    test_cuda_source_compiles covers both); NVRTC takes seconds per compile.
    """
    if builds.nvrtc is None:
        pytest.skip("NVRTC not installed (pip install 'cuda-toolkit[nvrtc]')")
    lowered = builds.nvrtc_names()
    assert set(lowered) == set(K.name_expressions()) | set(K.PLAIN_KERNELS)
    # Templates get mangled names that still carry the kernel's name (profilers).
    assert all(expression.split("<")[0] in name for expression, name in lowered.items())


# --------------------------------------------------------------------------
# The CPU shim: activation.cu compiled as C++ and run thread by thread.
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shim(builds):
    if builds.cxx is None:
        pytest.skip("no C++ compiler for the CPU shim")
    returncode, output = builds.result("shim")
    assert returncode == 0, f"the CPU shim build failed:\n{output}"
    return Shim(ctypes.CDLL(str(builds.library)))


class Shim:
    """Calls h_<kernel>_<dtype> in the harness with NumPy arrays."""

    # A grid much smaller than the data, so every grid-stride loop loops.
    GRID, BLOCK = 3, 32

    def __init__(self, library):
        self.library = library

    def __call__(self, kernel, dtype, arrays, n, c=1, a=0.0, b=0.0):
        name = f"h_{kernel}" if dtype is None else f"h_{kernel}_{SUFFIX[np.dtype(dtype)]}"
        function = getattr(self.library, name)
        function.restype = None
        function.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 4 + [
            ctypes.c_longlong, ctypes.c_longlong, ctypes.c_double, ctypes.c_double]
        for array in arrays:
            assert array.flags.c_contiguous
        pointers = [array.ctypes.data for array in arrays] + [None] * (4 - len(arrays))
        function(self.GRID, self.BLOCK, *pointers, n, c, a, b)


def _kernel_params(name, params):
    return K._params(name, params)


def test_shim_exports_every_kernel(shim):
    for kernel in K.KERNELS:
        for suffix in SUFFIX.values():
            assert hasattr(shim.library, f"h_{kernel}_{suffix}"), kernel
    for kernel in K.PLAIN_KERNELS:
        assert hasattr(shim.library, f"h_{kernel}")


def test_shim_half_conversion_matches_numpy(shim, rng):
    """The shim's float16 rounding is NumPy's: nearest even, overflow to inf."""
    with np.errstate(over="ignore"):
        values = np.concatenate([
            rng.standard_normal(20000).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 18, 20000),
            np.array(EXTREMES).astype(np.float32),
            # Ties and near-ties at the float16 rounding points, normal and subnormal.
            (np.arange(-2000, 2000, dtype=np.float32) + np.float32(0.5)) * np.float32(2.0 ** -24),
            np.float32(65504) + np.arange(-40, 40, dtype=np.float32),
        ]).astype(np.float32)
    bits = np.empty(values.shape, dtype=np.uint16)
    shim.library.h_float_to_half.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong]
    shim.library.h_float_to_half(values.ctypes.data, bits.ctypes.data, values.size)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    got = bits.view(np.float16)
    same = (got.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), values[~same][:10]
    every_half = np.arange(65536, dtype=np.uint16)
    back = np.empty(65536, dtype=np.float32)
    shim.library.h_half_to_float.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong]
    shim.library.h_half_to_float(every_half.ctypes.data, back.ctypes.data, 65536)
    expected_back = every_half.view(np.float16).astype(np.float32)
    assert ((back == expected_back) | (np.isnan(back) & np.isnan(expected_back))).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_shim_forward_backward_match_twin(shim, name, params, dtype, rng):
    x = sample(dtype, rng)
    n = x.size
    a, b = _kernel_params(name, params)
    grad = rng.standard_normal(n).astype(dtype)

    y = np.empty_like(x)
    shim(f"gg_{name}_forward", dtype, [x, y], n, a=a, b=b)
    expected_y, saved = K.activation_forward_saving(name, x, **params)
    assert_matches(y, expected_y, dtype, what=f"{name} forward")

    grad_x = np.empty_like(x)
    if name in K.SAVES_MASK:
        for offset in (0, 1):  # vector path, then the scalar fallback
            x_placed, y_masked = placed(x, offset), placed(np.zeros_like(x), offset)
            words = np.empty(K._mask_size(n), dtype=np.uint8)
            shim(f"gg_{name}_forward_mask", dtype, [x_placed, y_masked, words], n, a=a, b=b)
            assert_matches(y_masked, expected_y, dtype, rtol=0.0, what=f"{name} forward_mask +{offset}")
            np.testing.assert_array_equal(words, saved, err_msg=f"{name} mask bits +{offset}")
            grad_placed, grad_x_placed = placed(grad, offset), placed(np.zeros_like(grad), offset)
            shim(f"gg_{name}_backward", dtype, [grad_placed, saved, grad_x_placed], n, a=a, b=b)
            expected_gx = K.activation_backward(name, grad, saved, **params)
            assert_matches(grad_x_placed, expected_gx, dtype, rtol=0.0, what=f"{name} backward +{offset}")
        grad_x = grad_x_placed
        exact = 0.0
    else:
        shim(f"gg_{name}_backward", dtype, [grad, np.ascontiguousarray(saved), grad_x], n, a=a, b=b)
        exact = None
    expected_gx = K.activation_backward(name, grad, saved, **params)
    assert_matches(grad_x, expected_gx, dtype, grad=grad, rtol=exact, what=f"{name} backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_shim_bias_kernels_match_twin(shim, name, params, dtype, rng):
    rows, columns = 61, 7  # 427 elements: not a multiple of 8, 32 or the grid
    x = rng.permuted(sample(dtype, rng, n=rows * columns))[: rows * columns].reshape(rows, columns)
    bias = (rng.standard_normal(columns) * 2).astype(dtype)
    grad = rng.standard_normal((rows, columns)).astype(dtype)
    a, b = _kernel_params(name, params)
    n = x.size

    expected_y, saved = K.bias_activation_forward(name, x, bias, **params)
    expected_gx, expected_gb = K.bias_activation_backward(name, grad, saved, **params)
    y = np.empty_like(x)
    if name in K.SAVES_MASK:
        for offset in (1, 0):  # scalar fallback, then the vector path (whose y is checked below)
            y = placed(np.zeros_like(x), offset)
            words = np.empty(K._mask_size(n), dtype=np.uint8)
            shim(f"gg_{name}_bias_forward_mask", dtype, [placed(x, offset), bias, y, words], n, c=columns, a=a, b=b)
            np.testing.assert_array_equal(words, saved, err_msg=f"{name} bias mask bits +{offset}")
            assert_matches(y, expected_y, dtype, rtol=0.0, what=f"{name} bias forward +{offset}")
    else:
        shim(f"gg_{name}_bias_forward", dtype, [x, bias, y], n, c=columns, a=a, b=b)
    assert_matches(y, expected_y, dtype, what=f"{name} bias forward")

    if name in K.SAVES_INPUT:
        grad_x = np.empty_like(x)
        shim(f"gg_{name}_bias_backward", dtype, [grad, x, bias, grad_x], n, c=columns, a=a, b=b)
        assert_matches(grad_x, expected_gx, dtype, grad=grad, what=f"{name} bias backward")
    # Bias gradient is the column sum of grad_x (rounding bounded by the sum of |terms|).
    terms = expected_gx.astype(np.float64)
    with np.errstate(invalid="ignore"):
        error = np.abs(expected_gb.astype(np.float64) - terms.sum(axis=0))
        bound = 4 * rows * np.finfo(twins.compute_dtype(dtype)).eps * np.abs(terms).sum(axis=0) \
            + np.finfo(dtype).eps * np.abs(terms.sum(axis=0))
    finite = np.isfinite(bound)
    assert (error[finite] <= bound[finite]).all(), (error, bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_shim_dropout_matches_twin(shim, dtype, p, rng):
    x = sample(dtype, rng, n=600)
    n = x.size
    uniform = rng.random(n, dtype=np.float32)
    uniform[:5] = [0.0, np.float32(0.3), np.nextafter(np.float32(0.3), np.float32(0)), 0.999, 0.5]
    scale = K._dropout_scale(p)
    expected_y, expected_words = twins.dropout_forward(x, uniform, p, scale)
    assert np.count_nonzero(np.unpackbits(expected_words, count=n, bitorder="little")) == \
        np.count_nonzero(uniform >= np.float32(p))
    grad = rng.standard_normal(n).astype(dtype)
    for offset in (0, 1):  # vector path, then the scalar fallback
        y = placed(np.zeros_like(x), offset)
        words = np.empty(K._mask_size(n), dtype=np.uint8)
        shim("gg_dropout_forward", dtype, [placed(x, offset), placed(uniform, offset), y, words], n, a=p, b=scale)
        np.testing.assert_array_equal(words, expected_words)
        assert_matches(y, expected_y, dtype, rtol=0.0, what=f"dropout forward +{offset}")
        grad_x = placed(np.zeros_like(x), offset)
        shim("gg_dropout_backward", dtype, [placed(grad, offset), words, grad_x], n, a=scale, b=0.0)
        assert_matches(grad_x, K.dropout_backward(grad, words, p), dtype, rtol=0.0, what=f"dropout backward +{offset}")


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 1001])
def test_shim_pack_unpack_match_numpy(shim, n, rng):
    flags = rng.random(n) < 0.4
    words = np.zeros(K._mask_size(n), dtype=np.uint8)
    as_bytes = flags.view(np.uint8)
    shim("gg_pack_mask", None, [as_bytes, words], n)
    np.testing.assert_array_equal(words, np.packbits(flags, bitorder="little"))
    back = np.zeros(n, dtype=np.uint8)
    shim("gg_unpack_mask", None, [words, back], n)
    np.testing.assert_array_equal(back.astype(bool), flags)


# --------------------------------------------------------------------------
# Flush-to-zero: CuPy compiles every RawModule with -ftz=true (after our
# options), so on the GPU float32 treats subnormal operands and results as
# zeros, comparisons included.  The shim emulates that with the SSE FTZ|DAZ
# bits; branches and mask bits must still be the twin's exactly, and values may
# differ only by the stated FTZ_ATOL.
# --------------------------------------------------------------------------
TINY32 = float(np.finfo(np.float32).tiny)  # 2^-126, the smallest normal float32
# What flushing a float32 subnormal intermediate may cost a float32 result
# (twins.py, "Flush-to-zero on the GPU"): 2^-116, i.e. a subnormal scaled by at
# most 2^10 on its way to the output (x * sigmoid(x) at x ~ -88 is 2^6.5 of it).
# float16 results cannot see it (their own resolution is 2^-24).
FTZ_ATOL = {np.dtype(np.float16): ATOL[np.dtype(np.float16)], np.dtype(np.float32): 2.0 ** -116,
            np.dtype(np.float64): ATOL[np.dtype(np.float64)]}


def subnormal_sample(dtype, rng):
    """Subnormals of both signs (float32's, and values that become subnormal
    once multiplied by a slope or added to a bias), both zeros, NaN, infinities,
    the smallest normals and the usual sample."""
    smallest = np.float32(2.0 ** -149)
    subnormals = np.concatenate([
        [smallest, np.nextafter(np.float32(TINY32), np.float32(0)), np.float32(1e-40), np.float32(3e-39)],
        rng.integers(1, 2 ** 23, 40).astype(np.uint32).view(np.float32),
    ]).astype(np.float32)
    values = np.concatenate([
        subnormals, -subnormals, [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, TINY32, -TINY32,
                                  2 * TINY32, -2 * TINY32, 1e-37, -1e-37, 5e-38, -5e-38],
        sample(np.float32, rng, n=300),
    ]).astype(np.float32)
    with np.errstate(over="ignore"):
        return values.astype(dtype)


@pytest.fixture
def flush_to_zero(shim):
    """Runs the shim's launches with FTZ|DAZ set, as float32 behaves under -ftz."""
    shim.library.h_set_flush_to_zero.restype = ctypes.c_int
    shim.library.h_set_flush_to_zero.argtypes = [ctypes.c_int]
    shim.library.h_float_compare_positive.restype = ctypes.c_int
    shim.library.h_float_compare_positive.argtypes = [ctypes.c_float]
    if not shim.library.h_set_flush_to_zero(1):
        pytest.skip("flush-to-zero emulation needs an x86 CPU (the SSE control register)")
    try:
        yield shim
    finally:
        shim.library.h_set_flush_to_zero(0)


def test_flush_to_zero_emulation_flushes(flush_to_zero):
    """The emulation has teeth: a plain float comparison sees 1e-40 as 0, as the GPU does."""
    library = flush_to_zero.library
    assert library.h_float_compare_positive(1e-40) == 0
    library.h_set_flush_to_zero(0)
    assert library.h_float_compare_positive(1e-40) == 1
    # And NumPy, sharing this thread, never runs flushed: the mode is per launch.
    library.h_set_flush_to_zero(1)
    flush_to_zero("gg_relu_forward", np.float32, [np.zeros(1, np.float32), np.zeros(1, np.float32)], 1)
    assert np.float32(1e-40) > 0 and np.float32(1e-40) * np.float32(1) != 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_shim_under_flush_to_zero_matches_twin(flush_to_zero, name, params, dtype, rng):
    """Under -ftz semantics: every mask bit and every branch is the twin's
    (relu/leaky_relu bits, elu' at subnormal x with alpha != 1, softplus's
    threshold, bias sums that are subnormal), values within FTZ_ATOL."""
    shim = flush_to_zero
    x = subnormal_sample(dtype, rng)
    n = x.size
    a, b = _kernel_params(name, params)
    atol = FTZ_ATOL[np.dtype(dtype)]
    grad = rng.standard_normal(n).astype(dtype)
    expected_y, saved = K.activation_forward_saving(name, x, **params)
    y = np.empty_like(x)
    shim(f"gg_{name}_forward", dtype, [x, y], n, a=a, b=b)
    assert_matches(y, expected_y, dtype, atol=atol, what=f"{name} forward under ftz")
    if name in K.SAVES_MASK:
        words = np.empty(K._mask_size(n), dtype=np.uint8)
        shim(f"gg_{name}_forward_mask", dtype, [x, y, words], n, a=a, b=b)
        np.testing.assert_array_equal(K.unpack_mask(words, x.shape), K.unpack_mask(saved, x.shape),
                                      err_msg=f"{name} mask bits under ftz")
        assert_matches(y, expected_y, dtype, atol=atol, what=f"{name} forward_mask under ftz")
    grad_x = np.empty_like(x)
    shim(f"gg_{name}_backward", dtype, [grad, np.ascontiguousarray(saved), grad_x], n, a=a, b=b)
    assert_matches(grad_x, K.activation_backward(name, grad, saved, **params), dtype, grad=grad, atol=atol,
                   rtol=0.0 if name in K.SAVES_MASK else None, what=f"{name} backward under ftz")

    # Bias sums that land on subnormals (and on zeros of either sign).
    columns = 4
    rows = 16
    bias = np.array([TINY32, -TINY32, 1e-38, -0.0], np.float32).astype(dtype)
    xb = np.resize(x, rows * columns).reshape(rows, columns).copy()
    xb[:4] = np.array([-1.1e-38, 1.1e-38, -1e-38, 0.0], np.float32).astype(dtype)  # subnormal, +0, 0, -0 sums
    nb = xb.size
    expected_yb, saved_b = K.bias_activation_forward(name, xb, bias, **params)
    expected_gxb, _ = K.bias_activation_backward(name, grad[:nb].reshape(xb.shape), saved_b, **params)
    yb = np.empty_like(xb)
    if name in K.SAVES_MASK:
        words = np.empty(K._mask_size(nb), dtype=np.uint8)
        shim(f"gg_{name}_bias_forward_mask", dtype, [xb, bias, yb, words], nb, c=columns, a=a, b=b)
        np.testing.assert_array_equal(K.unpack_mask(words, xb.shape), K.unpack_mask(saved_b, xb.shape),
                                      err_msg=f"{name} bias mask bits under ftz")
    else:
        shim(f"gg_{name}_bias_forward", dtype, [xb, bias, yb], nb, c=columns, a=a, b=b)
    assert_matches(yb, expected_yb, dtype, atol=atol, what=f"{name} bias forward under ftz")
    if name in K.SAVES_INPUT:
        gxb = np.empty_like(xb)
        gb = np.ascontiguousarray(grad[:nb].reshape(xb.shape))
        shim(f"gg_{name}_bias_backward", dtype, [gb, xb, bias, gxb], nb, c=columns, a=a, b=b)
        assert_matches(gxb, expected_gxb, dtype, grad=gb, atol=atol, what=f"{name} bias backward under ftz")


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
def test_shim_dropout_under_flush_to_zero_matches_twin(flush_to_zero, dtype, rng):
    """keep = u >= p decided on the bits: a subnormal p does not turn u = 0 into a kept element."""
    x = subnormal_sample(dtype, rng)
    n = x.size
    uniform = rng.random(n, dtype=np.float32)
    uniform[:4] = [0.0, 1e-40, 2e-40, 0.5]
    grad = rng.standard_normal(n).astype(dtype)
    for p in (1e-40, 0.3):
        scale = K._dropout_scale(p)
        expected_y, expected_words = twins.dropout_forward(x, uniform, p, scale)
        y, words = np.empty_like(x), np.empty(K._mask_size(n), dtype=np.uint8)
        flush_to_zero("gg_dropout_forward", dtype, [x, uniform, y, words], n, a=p, b=scale)
        np.testing.assert_array_equal(words, expected_words, err_msg=f"dropout mask under ftz, p={p}")
        assert_matches(y, expected_y, dtype, atol=FTZ_ATOL[np.dtype(dtype)], what=f"dropout under ftz p={p}")
        grad_x = np.empty_like(x)
        flush_to_zero("gg_dropout_backward", dtype, [grad, words, grad_x], n, a=scale, b=0.0)
        assert_matches(grad_x, K.dropout_backward(grad, words, p), dtype, atol=FTZ_ATOL[np.dtype(dtype)],
                       what=f"dropout backward under ftz p={p}")


# --------------------------------------------------------------------------
# The twins against independent references.
# --------------------------------------------------------------------------
def _mp_reference(name, params):
    """Each activation's definition in mpmath at 40 digits.

    gelu and gelu_tanh use erfc and 1/(1 + exp(-2u)) (identities of the
    textbook forms) because 1 + erf and 1 + tanh cancel to 0 even at 40 digits
    for x << 0.
    """
    mpmath = pytest.importorskip("mpmath")
    slope = params.get("negative_slope", 0.01)
    alpha = params.get("alpha", 1.0)
    beta = params.get("beta", 1.0)
    threshold = params.get("threshold", 20.0)

    def softplus(x, beta=1, threshold=20):
        return x if beta * x > threshold else mpmath.log(1 + mpmath.exp(beta * x)) / beta

    functions = {
        "relu": lambda x: x if x > 0 else 0 * x,
        "leaky_relu": lambda x: x if x > 0 else slope * x,
        "elu": lambda x: x if x > 0 else alpha * (mpmath.exp(x) - 1),
        "gelu": lambda x: x / 2 * mpmath.erfc(-x / mpmath.sqrt(2)),
        "gelu_tanh": lambda x: x / (1 + mpmath.exp(-2 * mpmath.sqrt(2 / mpmath.pi)
                                                   * (x + mpmath.mpf("0.044715") * x ** 3))),
        "silu": lambda x: x / (1 + mpmath.exp(-x)),
        "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
        "tanh": mpmath.tanh,
        "softplus": lambda x: softplus(x, beta, threshold),
        "mish": lambda x: x * mpmath.tanh(softplus(x)),
    }
    return mpmath, functions[name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_twin_matches_high_precision_reference(name, params, dtype, rng):
    mpmath, f = _mp_reference(name, params)
    mpmath.mp.dps = 40
    x = np.concatenate([rng.uniform(-12, 12, 60), rng.uniform(-1, 1, 20), [-30.0, -15.0, 15.0, 30.0]]).astype(dtype)
    # Stay away from kinks and the softplus threshold, where the derivative is a convention.
    x = x[(np.abs(x) > 1e-3) & (np.abs(x * params.get("beta", 1.0) - params.get("threshold", 20.0)) > 1e-3)]
    a, b = _kernel_params(name, params)
    exact = [mpmath.mpf(float(v)) for v in x]
    value = np.array([float(f(v)) for v in exact])
    slope = np.array([float(mpmath.diff(f, v)) for v in exact])
    curvature = np.array([float(mpmath.diff(f, v, 2)) for v in exact])
    eps = np.finfo(dtype).eps
    # Backward-error criterion: the twin rounds intermediates (x/sqrt2 before
    # erfc, u before sigmoid), so it may be off by what an input perturbation
    # of a few ulps gives, |x f'(x)| eps, on top of a few ulps of the result.
    got = twins.forward(name, x, a, b).astype(np.float64)
    bound = 16 * eps * (np.abs(value) + np.abs(x * slope)) + ATOL[np.dtype(dtype)]
    assert (np.abs(got - value) <= bound).all(), (x[np.abs(got - value) > bound], got[np.abs(got - value) > bound])

    if name in K.SAVES_MASK:
        derivative = np.where(twins.mask(name, x, a, b), 1.0, a if name == "leaky_relu" else 0.0)
    else:
        saved = twins.forward(name, x, a, b) if name in K.SAVES_OUTPUT else x
        derivative = twins.backward(name, np.ones_like(x), saved, a, b).astype(np.float64)
    # Derivatives are sums of O(1) terms, hence the absolute 16 eps.
    bound = 16 * eps * (1 + np.abs(slope) + np.abs(x * curvature))
    wrong = np.abs(derivative - slope) > bound
    assert not wrong.any(), (x[wrong], derivative[wrong], slope[wrong])


def test_derivative_conventions_match_pytorch():
    """relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha; relu(-0) = +0; NaN propagates."""
    x = np.array([0.0, -0.0, np.nan], dtype=np.float32)
    ones = np.ones_like(x)
    y, mask = K.activation_forward_saving("relu", x)
    assert not np.signbit(y[:2]).any() and np.isnan(y[2])
    np.testing.assert_array_equal(K.activation_backward("relu", ones, mask), [0.0, 0.0, 1.0])
    _, mask = K.activation_forward_saving("leaky_relu", x, negative_slope=0.25)
    np.testing.assert_array_equal(K.activation_backward("leaky_relu", ones, mask, negative_slope=0.25),
                                  [0.25, 0.25, 0.25])
    np.testing.assert_array_equal(K.activation_backward("elu", ones[:2], x[:2], alpha=2.0), [2.0, 2.0])
    for name in K.ACTIVATIONS:
        assert np.isnan(K.activation_forward(name, np.array([np.nan], np.float32)))[0], name


# Values where the torch comparison is by formula (not exact), with NaN/inf handled alike.
TORCH_SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 25.0, -25.0, 1e-30, -1e-30]


def _torch_function(torch, name, params):
    F = torch.nn.functional
    return {
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, params.get("negative_slope", 0.01)),
        "elu": lambda t: F.elu(t, params.get("alpha", 1.0)),
        "gelu": lambda t: F.gelu(t, approximate="none"),
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softplus": lambda t: F.softplus(t, params.get("beta", 1.0), params.get("threshold", 20.0)),
        "mish": F.mish,
    }[name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_twin_matches_torch(name, params, dtype, rng):
    torch = pytest.importorskip("torch")
    x = np.concatenate([rng.uniform(-8, 8, 400), rng.standard_normal(100), TORCH_SPECIAL]).astype(dtype)
    grad = rng.standard_normal(x.size).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_function(torch, name, params)(xt)
    (gxt,) = torch.autograd.grad(yt, xt, torch.tensor(grad))
    y, saved = K.activation_forward_saving(name, x, **params)
    grad_x = K.activation_backward(name, grad, saved, **params)
    # PyTorch uses the textbook forms (1 + erf, 1 + tanh, 1 - tanh^2): they lose
    # digits where the twins do not, so this is a formula check, not an ulp check.
    tol = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}[np.dtype(dtype)]
    finite = np.isfinite(x)
    expected_y = yt.detach().numpy()
    np.testing.assert_allclose(y[finite], expected_y[finite], rtol=tol, atol=tol, err_msg=f"{name} value")
    np.testing.assert_allclose(grad_x[finite], gxt.numpy()[finite], rtol=tol, atol=tol * 10,
                               err_msg=f"{name} gradient")
    # NaN in, NaN out; infinities go where PyTorch sends them.  (Reference in
    # float64: PyTorch's vectorised float32 CPU gelu returns NaN for +inf.)
    special = ~finite
    reference = _torch_function(torch, name, params)(torch.tensor(x[special].astype(np.float64)))
    np.testing.assert_array_equal(y[special], reference.numpy().astype(dtype), err_msg=f"{name} at inf/nan")


# --------------------------------------------------------------------------
# Behaviour of the public functions (NumPy path; the CUDA test reuses them).
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000])
def test_pack_unpack_round_trip(n, rng):
    flags = rng.random((n, 3)) < 0.5
    words = K.pack_mask(flags)
    assert words.dtype == np.uint8 and words.shape == ((3 * n + 7) // 8,)
    np.testing.assert_array_equal(words, np.packbits(flags.ravel(), bitorder="little"))
    np.testing.assert_array_equal(K.unpack_mask(words, flags.shape), flags)


def test_saved_bytes_per_element():
    assert K.saved_bytes_per_element("relu", np.float32) == 0.125
    assert K.saved_bytes_per_element("leaky_relu", np.float16) == 0.125
    assert K.saved_bytes_per_element("dropout", np.float64) == 0.125
    assert K.saved_bytes_per_element("sigmoid", np.float32) == 4
    assert K.saved_bytes_per_element("gelu", np.float64) == 8
    x = np.zeros((64, 64), np.float32)
    _, saved = K.activation_forward_saving("relu", x)
    assert saved.nbytes == x.size * K.saved_bytes_per_element("relu", x.dtype)
    _, saved = K.activation_forward_saving("tanh", x)
    assert saved.nbytes == x.size * K.saved_bytes_per_element("tanh", x.dtype)
    with pytest.raises(ValueError, match="unknown activation"):
        K.saved_bytes_per_element("swish", np.float32)


def test_bad_arguments_raise_typed_errors():
    from gpugrad.errors import DTypeError, ShapeError
    with pytest.raises(ValueError, match="unknown activation 'gelu2'"):
        K.activation_forward("gelu2", np.zeros(2))
    with pytest.raises(TypeError, match="negative_slope"):
        K.activation_forward("relu", np.zeros(2), negative_slope=0.1)
    with pytest.raises(DTypeError, match="int64"):
        K.activation_forward("relu", np.zeros(2, np.int64))
    with pytest.raises(ShapeError, match="mask"):
        K.activation_backward("relu", np.zeros(9), np.zeros(1, np.uint8))
    with pytest.raises(ShapeError, match="shape"):
        K.activation_backward("gelu", np.zeros(3), np.zeros(4))
    with pytest.raises(ShapeError, match="bias"):
        K.bias_activation_forward("relu", np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="outside"):
        K.dropout_forward(np.zeros(2), 1.5, np.random.default_rng(0))


def _on(xp, array):
    return array if xp is np else xp.asarray(array)


def _host(array):
    return backend.to_numpy(array)


def assert_bias_grad_close(actual, expected, grad_x, grad, dtype):
    """Column sums of terms that may differ by the backward slack (a few ulps of
    |grad_x| + |grad|), so the bound is that slack summed over the column."""
    scale = (np.abs(grad_x.astype(np.float64)) + np.abs(grad.astype(np.float64))).sum(axis=0)
    eps = np.finfo(dtype).eps
    with np.errstate(invalid="ignore"):
        error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        ok = (error <= 64 * eps * scale) | np.isnan(scale) | np.isinf(scale)
    assert ok.all(), (actual[~ok], expected[~ok])


def _run_public_api(xp, name, params, dtype, rng, layout="strided"):
    """Every entry point for one activation on xp (numpy or cupy), on a (16, 32)
    input that is C-contiguous or a transposed strided view."""
    base = sample(dtype, rng, n=900)
    base = np.concatenate([base, np.zeros(1024 - base.size, dtype)])
    # Every extreme where both layouts read it: at even flat indices (even
    # columns, which the strided view keeps) of the first 16 rows (the
    # contiguous slice), not at the end of the sample where neither looked.
    where = np.arange(900, 900 + len(EXTREMES))  # sample() puts them after its 900 random values
    extremes = base[where].copy()
    # np.insert's indices refer to the array before insertion: i for the i-th
    # extreme lands it at 2i once the earlier ones are in.
    base = np.insert(np.delete(base, where), np.arange(len(EXTREMES)), extremes).reshape(32, 32)
    x = _on(xp, base)[:, ::2].T if layout == "strided" else _on(xp, base)[:16]
    # Check it, so the layouts cannot drift apart again.
    seen = _host(x).ravel()
    for value in extremes:
        assert (seen.view(f"u{seen.itemsize}") == value.view(f"u{value.itemsize}")).any() \
            or (np.isnan(value) and np.isnan(seen).any()), (layout, value)
    grad = _on(xp, rng.standard_normal((16, 32)).astype(dtype))
    bias = _on(xp, rng.standard_normal(32).astype(dtype))
    y, saved = K.activation_forward_saving(name, x, **params)
    y_plain = K.activation_forward(name, x, **params)
    grad_x = K.activation_backward(name, grad, saved, **params)
    yb, saved_b = K.bias_activation_forward(name, x, bias, **params)
    gxb, gbias = K.bias_activation_backward(name, grad, saved_b, **params)
    out = {"x": x, "y": y, "y_plain": y_plain, "grad_x": grad_x, "yb": yb, "gxb": gxb, "gbias": gbias}
    if name in K.SAVES_MASK:
        out["mask"] = saved
        out["mask_b"] = saved_b
    return out, _host(grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_public_api_shapes_and_layouts(name, params, dtype, rng):
    out, _ = _run_public_api(np, name, params, dtype, rng)
    for key in ("y", "y_plain", "grad_x", "yb", "gxb"):
        assert out[key].shape == (16, 32) and out[key].dtype == dtype, key
        assert out[key].flags.c_contiguous, key
    assert out["gbias"].shape == (32,) and out["gbias"].dtype == dtype
    np.testing.assert_array_equal(out["y"], out["y_plain"])
    np.testing.assert_array_equal(out["y"], twins.forward(name, np.ascontiguousarray(out["x"]),
                                                          *_kernel_params(name, params)))
    # Empty and 0-d inputs.
    empty = np.zeros((0, 5), dtype)
    y, saved = K.activation_forward_saving(name, empty, **params)
    assert y.shape == (0, 5) and K.activation_backward(name, empty, saved, **params).shape == (0, 5)
    scalar = np.asarray(0.5, dtype)
    y, saved = K.activation_forward_saving(name, scalar, **params)
    assert y.shape == () and K.activation_backward(name, np.ones((), dtype), saved, **params).shape == ()


def test_float16_overflow_and_compute_in_float32():
    # 300 * 300 overflows float16, but the math runs in float32: gelu_tanh(300) = 300 exactly.
    x = np.array([300.0, 60000.0, -300.0], np.float16)
    np.testing.assert_array_equal(K.activation_forward("gelu_tanh", x), np.array([300.0, 60000.0, -0.0], np.float16))
    np.testing.assert_array_equal(K.activation_forward("softplus", x), x.astype(np.float32).clip(0).astype(np.float16))
    # A float32 result beyond float16's range rounds to inf on the store.
    y, _ = K.bias_activation_forward("relu", np.array([[65504.0]], np.float16), np.array([32.0], np.float16))
    assert np.isinf(y).all()


def test_dropout_statistics_and_reproducibility():
    x = np.ones(100000, np.float32)
    y, words = K.dropout_forward(x, 0.25, np.random.default_rng(5))
    kept = K.unpack_mask(words, x.shape)
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(y, np.where(kept, np.float32(1 / 0.75), 0).astype(np.float32))
    y2, words2 = K.dropout_forward(x, 0.25, np.random.default_rng(5))
    np.testing.assert_array_equal(words, words2)
    zeros, _ = K.dropout_forward(x[:10], 1.0, np.random.default_rng(0))
    assert not zeros.any()
    same, words = K.dropout_forward(x[:10], 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(same, x[:10])
    np.testing.assert_array_equal(K.dropout_backward(x[:10] * 3, words, 0.0), x[:10] * 3)


# --------------------------------------------------------------------------
# The GPU branch of the launcher without a GPU: a stand-in "cupy" whose
# RawModule runs the kernels through the CPU shim.  It checks what the real
# GPU run would otherwise be the first to see: every launch passes arrays of
# the template's dtype, C-contiguous, and scalars of the exact C types
# (np.int64 for long long, np.float64 for double) in the kernel's order.
# --------------------------------------------------------------------------
class _FakeGpuArray(np.ndarray):
    """Counts as a cupy.ndarray for gpugrad.backend."""

    @property
    def device(self):
        return _FakeDevice(0)


class _FakeDevice:
    """cupy.cuda.Device: an id, attributes, and a context manager."""

    def __init__(self, index=0):
        self.id = index
        self.attributes = {"MultiProcessorCount": 1}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fake_cupy(shim):
    import types

    def wrap(array):
        return np.asarray(array).view(_FakeGpuArray)

    c_types = {"gg_half": np.float16, "float": np.float32, "double": np.float64}
    suffixes = {"gg_half": "f16", "float": "f32", "double": "f64"}

    def check_args(expression, args):
        kernel, _, ctype = expression.partition("<")
        ctype = ctype.rstrip(">")
        if kernel in K.PLAIN_KERNELS:
            kinds = ["const unsigned char*", "unsigned char*", "long long"]
        else:
            kinds = [kind.strip().replace("T*", ctype + "*") for kind in K.FAMILIES[K.KERNELS[kernel]].split(",")]
        assert len(args) == len(kinds), (expression, len(args), kinds)
        for kind, arg in zip(kinds, args):
            if kind.endswith("*"):
                assert isinstance(arg, np.ndarray) and arg.flags.c_contiguous, (expression, kind)
                element = kind.replace("const ", "").rstrip("*")
                expected = {"unsigned char": np.uint8, "float": np.float32}.get(element) or c_types[element]
                assert arg.dtype == expected or (expected is np.uint8 and arg.dtype == np.bool_), \
                    (expression, kind, arg.dtype)
            elif kind == "long long":
                assert type(arg) is np.int64, (expression, kind, type(arg))
            else:
                assert type(arg) is np.float64, (expression, kind, type(arg))
        return kernel, suffixes.get(ctype)

    class RawModule:
        def __init__(self, code, options, name_expressions):
            assert "GG_ACTIVATIONS(GG_MASK_KERNELS" in code and "--fmad=false" in options
            self.names = set(name_expressions)

        def get_function(self, expression):
            assert expression in self.names, expression

            def launch(grid, block, args):
                kernel, suffix = check_args(expression, args)
                arrays = [a for a in args if isinstance(a, np.ndarray)]
                integers = [int(a) for a in args if isinstance(a, np.int64)] + [1]
                floats = [float(a) for a in args if isinstance(a, np.float64)] + [0.0, 0.0]
                Shim.GRID, Shim.BLOCK = grid[0], block[0]
                shim(kernel, None if suffix is None else np.dtype(c_types[expression[expression.index("<") + 1:-1]]),
                     arrays, integers[0], integers[1], floats[0], floats[1])
            return launch

    fake = types.SimpleNamespace(
        ndarray=_FakeGpuArray, uint8=np.uint8, bool_=np.bool_, float32=np.float32,
        RawModule=RawModule, cuda=types.SimpleNamespace(Device=_FakeDevice),
        asarray=wrap, asnumpy=lambda a: np.asarray(a).view(np.ndarray).copy(),
        zeros=lambda *a, **k: wrap(np.zeros(*a, **k)), ones_like=lambda a: wrap(np.ones_like(a)),
        empty=lambda *a, **k: wrap(np.empty(*a, **k)), empty_like=lambda a: wrap(np.empty_like(a, order="C")),
    )
    return fake


@pytest.fixture
def fake_cupy(shim, monkeypatch):
    fake = _fake_cupy(shim)
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.setattr(backend, "_cupy_checked", True)
    monkeypatch.setattr(backend, "_cuda_count", 1)
    monkeypatch.setattr(K, "_module", None)
    monkeypatch.setattr(K, "_functions", {})
    monkeypatch.setattr(K, "_sm_counts", {})
    monkeypatch.setattr(K, "_resident", {})
    grid, block = Shim.GRID, Shim.BLOCK
    yield fake
    Shim.GRID, Shim.BLOCK = grid, block


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_gpu_branch_through_fake_cupy(fake_cupy, name, params, dtype):
    gpu, grad = _run_public_api(fake_cupy, name, params, dtype, np.random.default_rng(1))
    cpu, _ = _run_public_api(np, name, params, dtype, np.random.default_rng(1))
    assert_bias_grad_close(_host(gpu.pop("gbias")), cpu.pop("gbias"), cpu["gxb"], grad, dtype)
    for key, value in cpu.items():
        assert isinstance(gpu[key], _FakeGpuArray), key
        if value.dtype == np.uint8:
            np.testing.assert_array_equal(_host(gpu[key]), value, err_msg=f"{name} {key}")
        else:
            assert_matches(_host(gpu[key]), value, value.dtype, what=f"{name} {key}",
                           grad=grad if key in ("grad_x", "gxb") else None)
    y, saved = K.activation_forward_saving(name, fake_cupy.zeros((0, 3), dtype), **params)
    assert y.shape == (0, 3) and K.activation_backward(name, fake_cupy.zeros((0, 3), dtype), saved,
                                                       **params).shape == (0, 3)


def test_gpu_branch_dropout_and_masks_through_fake_cupy(fake_cupy):
    x = fake_cupy.asarray(np.random.default_rng(0).standard_normal((301, 5)).astype(np.float32))[:, ::2]
    y, words = K.dropout_forward(x, 0.4, np.random.default_rng(3))
    expected_y, expected_words = K.dropout_forward(np.asarray(x).view(np.ndarray), 0.4, np.random.default_rng(3))
    np.testing.assert_array_equal(_host(words), expected_words)
    np.testing.assert_array_equal(_host(y), expected_y)
    grad = fake_cupy.asarray(np.arange(y.size, dtype=np.float32).reshape(y.shape))
    np.testing.assert_array_equal(_host(K.dropout_backward(grad, words, 0.4)),
                                  K.dropout_backward(_host(grad), expected_words, 0.4))
    flags = fake_cupy.asarray(np.random.default_rng(1).random((13, 77)) < 0.5)
    packed = K.pack_mask(flags)
    np.testing.assert_array_equal(_host(packed), np.packbits(_host(flags), bitorder="little"))
    np.testing.assert_array_equal(_host(K.unpack_mask(packed, (13, 77))), _host(flags))


# --------------------------------------------------------------------------
# CUDA: the RawModule kernels against the twins (skipped without a GPU).
# --------------------------------------------------------------------------
# CUDA's libm is documented at up to 4 ulp (erfcf) where glibc/SciPy are ~1 ulp.
GPU_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-13}


@pytest.fixture
def cupy_module():
    """CuPy, or a clean skip where CUDA is unavailable (no CuPy, driver or GPU)."""
    if not backend.cuda_is_available():
        pytest.skip("CUDA not available (no CuPy or no GPU)")
    return backend.cupy_module()


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_cuda_matches_twin(cupy_module, name, params, dtype, layout):
    cp = cupy_module
    gpu, grad = _run_public_api(cp, name, params, dtype, np.random.default_rng(1), layout)
    cpu, _ = _run_public_api(np, name, params, dtype, np.random.default_rng(1), layout)
    # atol: float32 arithmetic on the GPU flushes subnormal intermediates (-ftz=true,
    # see FTZ_ATOL); branches and mask bits do not, so masks compare exactly.
    atol = FTZ_ATOL[np.dtype(dtype)]
    for key in ("y", "y_plain", "yb"):
        assert gpu[key].flags.c_contiguous
        assert_matches(_host(gpu[key]), cpu[key], dtype, rtol=GPU_RTOL[np.dtype(dtype)], atol=atol,
                       what=f"{name} {key}")
    for key in ("grad_x", "gxb"):
        assert_matches(_host(gpu[key]), cpu[key], dtype, grad=grad, rtol=GPU_RTOL[np.dtype(dtype)], atol=atol,
                       what=f"{name} {key}")
    for key in ("mask", "mask_b"):
        if key in gpu:
            np.testing.assert_array_equal(_host(gpu[key]), cpu[key], err_msg=f"{name} {key}")
    assert_bias_grad_close(_host(gpu["gbias"]), cpu["gbias"], cpu["gxb"], grad, dtype)
    empty = cp.zeros((0, 3), dtype)
    y, saved = K.activation_forward_saving(name, empty, **params)
    assert y.shape == (0, 3) and K.activation_backward(name, empty, saved, **params).shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_cuda_subnormals_match_twin(cupy_module, name, params, dtype, rng):
    """On the GPU, under CuPy's -ftz=true: subnormals of both signs, zeros, NaN
    and infinities give the twin's mask bits exactly and its values within FTZ_ATOL."""
    cp = cupy_module
    x = subnormal_sample(dtype, rng)
    grad = rng.standard_normal(x.size).astype(dtype)
    rtol, atol = GPU_RTOL[np.dtype(dtype)], FTZ_ATOL[np.dtype(dtype)]
    y, saved = K.activation_forward_saving(name, cp.asarray(x), **params)
    expected_y, expected_saved = K.activation_forward_saving(name, x, **params)
    assert_matches(_host(y), expected_y, dtype, rtol=rtol, atol=atol, what=f"{name} forward")
    if name in K.SAVES_MASK:
        np.testing.assert_array_equal(_host(saved), expected_saved, err_msg=f"{name} mask bits")
    grad_x = K.activation_backward(name, cp.asarray(grad), saved, **params)
    assert_matches(_host(grad_x), K.activation_backward(name, grad, expected_saved, **params), dtype, grad=grad,
                   rtol=rtol, atol=atol, what=f"{name} backward")
    # Bias sums that are subnormal or zero of either sign.
    xb = np.resize(x, 64).reshape(16, 4).copy()
    xb[:4] = np.array([-1.1e-38, 1.1e-38, -1e-38, 0.0], np.float32).astype(dtype)
    bias = np.array([TINY32, -TINY32, 1e-38, -0.0], np.float32).astype(dtype)
    yb, saved_b = K.bias_activation_forward(name, cp.asarray(xb), cp.asarray(bias), **params)
    expected_yb, expected_saved_b = K.bias_activation_forward(name, xb, bias, **params)
    assert_matches(_host(yb), expected_yb, dtype, rtol=rtol, atol=atol, what=f"{name} bias forward")
    if name in K.SAVES_MASK:
        np.testing.assert_array_equal(_host(saved_b), expected_saved_b, err_msg=f"{name} bias mask bits")
    gb = grad[:64].reshape(16, 4)
    gxb, _ = K.bias_activation_backward(name, cp.asarray(gb), saved_b, **params)
    expected_gxb, _ = K.bias_activation_backward(name, gb, expected_saved_b, **params)
    assert_matches(_host(gxb), expected_gxb, dtype, grad=gb, rtol=rtol, atol=atol, what=f"{name} bias backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cuda_dropout_and_masks(cupy_module, dtype):
    cp = cupy_module
    x = cp.asarray(np.random.default_rng(0).standard_normal((301, 5)).astype(dtype))[:, ::2]
    y, words = K.dropout_forward(x, 0.4, backend.generator(backend.Device("cuda:0")))
    kept = K.unpack_mask(words, x.shape)
    expected = twins.mask_backward(_host(x), _host(kept), K._dropout_scale(0.4), 0.0)
    assert_matches(_host(y), expected, dtype, rtol=0.0, what="cuda dropout")
    assert abs(float(kept.mean()) - 0.6) < 0.05
    grad = cp.ones_like(y)
    np.testing.assert_array_equal(_host(K.dropout_backward(grad, words, 0.4)),
                                  K.dropout_backward(_host(grad), _host(words), 0.4))
    flags = cp.asarray(np.random.default_rng(1).random(1001) < 0.5)
    np.testing.assert_array_equal(_host(K.pack_mask(flags)), np.packbits(_host(flags), bitorder="little"))
    np.testing.assert_array_equal(_host(K.unpack_mask(K.pack_mask(flags), (1001,))), _host(flags))


# --------------------------------------------------------------------------
# The activation table (gpugrad/kernels/table.py) is the one list.
# --------------------------------------------------------------------------
def test_cuda_activation_list_matches_the_table():
    """activation.cu's GG_ACTIVATIONS names every row, with the kernel set of what it saves."""
    import re
    with open(K.SOURCE_PATH, encoding="utf-8") as source:
        code = source.read()
    block = code[code.index("#define GG_ACTIVATIONS("):code.index("GG_ACTIVATIONS(GG_MASK_KERNELS")]
    listed = re.findall(r"(MASK|OUTPUT|INPUT)\((\w+), gg_(\w+)_op\)", block)
    assert [(kind.lower(), name) for kind, name, _ in listed] == [(row.saves, row.name) for row in K.TABLE]
    assert all(name == op for _, name, op in listed)
    for row in K.TABLE:
        assert f"struct gg_{row.name}_op" in code, row.name


class _NumpyMath:
    """The namespace a row's ``second`` is written over, in NumPy float64."""
    exp, tanh, where = staticmethod(np.exp), staticmethod(np.tanh), staticmethod(np.where)

    @staticmethod
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    @staticmethod
    def softplus(x):
        return np.log1p(np.exp(x))


@pytest.mark.parametrize("row", K.TABLE, ids=lambda row: row.name)
def test_table_derivatives_agree(row):
    """Per row: the twin's f' equals the reference f', which is the central
    difference of the reference f; the row's f'' is the central difference of f'."""
    rng = np.random.default_rng(4)
    for params in row.samples:
        x = rng.uniform(-3, 3, 200)
        x = x[np.abs(x) > 0.05]                         # away from the kinks at 0
        if "threshold" in params:
            x = x[np.abs(x * params["beta"] - params["threshold"]) > 0.05]
        h = 1e-6
        numeric = (row.reference(x + h, **params) - row.reference(x - h, **params)) / (2 * h)
        saved = row.reference(x, **params) if row.saves == "output" else x
        np.testing.assert_allclose(row.reference_derivative(saved, **params), numeric, rtol=1e-6, atol=1e-7)
        a, b = K._params(row.name, params)
        if row.saves == "mask":
            kept = twins.mask(row.name, x, a, b)
            twin = twins.mask_backward(np.ones_like(x), kept, 1.0, K._mask_off(row.name, a, b))
        else:
            twin = twins.backward(row.name, np.ones_like(x), saved, a, b)
        np.testing.assert_allclose(twin, row.reference_derivative(saved, **params), rtol=1e-12, atol=1e-14)
        if row.second is None:
            continue
        if row.saves == "output":      # d f'(y) / dy, from d f'(y(x)) / dx = (d f'(y) / dy) f'(x)
            step = (row.reference_derivative(row.reference(x + h)) - row.reference_derivative(row.reference(x - h)))
            second_numeric = step / (2 * h) / row.reference_derivative(saved)
        else:
            step = row.reference_derivative(x + h, **params) - row.reference_derivative(x - h, **params)
            second_numeric = step / (2 * h)
        np.testing.assert_allclose(row.second(saved, _NumpyMath, **params), second_numeric, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
