"""The GPU install: the extra the README's first command picks for a driver,
and that the CUDA extras resolve on PyPI to CuPy with the CUDA libraries it loads.

CI has no GPU: the selector runs against canned ``nvidia-smi`` banners (and a
fake ``nvidia-smi`` on PATH), and the extras are resolved with ``pip install
--dry-run`` (skipped, saying so, where the package index cannot be reached).
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPOSITORY = Path(__file__).resolve().parents[1]
SELECTOR = REPOSITORY / "gpugrad" / "install_extra.py"
PYPROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]

# The script by its path, as the README runs it (not through gpugrad/__init__).
_spec = importlib.util.spec_from_file_location("install_extra", SELECTOR)
install_extra = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_extra)

BANNER = ("+-----------------------------------------------------------------------------+\n"
          "| NVIDIA-SMI {driver}    Driver Version: {driver}    CUDA Version: {cuda}     |\n")


def _smi(cuda, returncode=0):
    def run(command, **kwargs):
        assert command == ["nvidia-smi"]
        return SimpleNamespace(returncode=returncode, stdout=BANNER.format(driver="580.65.06", cuda=cuda))
    return run


def _no_smi(command, **kwargs):
    raise FileNotFoundError("nvidia-smi")


def _choose(run, environ=None, argv=()):
    out, err = io.StringIO(), io.StringIO()
    code = install_extra.main(list(argv), environ or {}, run, out, err)
    return code, out.getvalue().strip(), err.getvalue()


@pytest.mark.parametrize("cuda,extra", [("12.0", ",cuda12"), ("12.8", ",cuda12"), ("13.0", ",cuda13"),
                                        ("13.2", ",cuda13"), ("14.1", ",cuda13"), ("11.8", "")])
def test_selector_maps_the_driver_cuda_major_to_an_extra(cuda, extra):
    code, chosen, note = _choose(_smi(cuda))
    assert (code, chosen) == (0, extra)
    assert f"CUDA {cuda}" in note and "nvidia-smi" in note
    if not extra:
        assert "CPU" in note and "driver" in note


def test_selector_without_a_driver_installs_for_the_cpu():
    code, chosen, note = _choose(_no_smi)
    assert (code, chosen) == (0, "") and "no NVIDIA driver" in note
    # A broken driver (nvidia-smi fails) is no driver; --require (the image) refuses.
    assert _choose(_smi("13.0", returncode=9))[1] == ""
    assert _choose(_no_smi, argv=["--require"])[0] == 1


def test_selector_falls_back_to_cuda_version_as_in_the_image():
    code, chosen, note = _choose(_no_smi, {"CUDA_VERSION": "12.6.3"})
    assert (code, chosen) == (0, ",cuda12") and "CUDA_VERSION" in note
    assert _choose(_no_smi, {"CUDA_VERSION": "13.0.1"})[1] == ",cuda13"
    # The driver wins over the variable: it is what runs the code.
    assert _choose(_smi("13.0"), {"CUDA_VERSION": "12.6.3"})[1] == ",cuda13"


def test_selector_script_runs_with_the_standard_library_alone(tmp_path):
    """As the README runs it, before anything is installed: -I -S means no
    site-packages (no NumPy) and no current folder, and a fake nvidia-smi on PATH."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' '| NVIDIA-SMI 580.65.06  Driver Version: 580.65.06  "
                    "CUDA Version: 13.0 |'\n")
    fake.chmod(0o755)
    environment = {"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-I", "-S", str(SELECTOR)], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, ",cuda13\n"), result.stderr
    fake.unlink()
    result = subprocess.run([sys.executable, "-I", "-S", str(SELECTOR)], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "\n"), result.stderr


def test_extras_bring_cupy_with_its_cuda_libraries():
    assert EXTRAS["cuda12"] == ["cupy-cuda12x[ctk]>=14,<15"]
    assert EXTRAS["cuda13"] == ["cupy-cuda13x[ctk]>=14,<15"]
    assert set(install_extra.EXTRAS.values()) == {"cuda12", "cuda13"} <= set(EXTRAS)


def test_readme_has_two_set_up_commands_and_the_first_picks_cupy():
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands), "one command each"
    assert commands[0] == 'pip install -e ".[examples$(python gpugrad/install_extra.py)]" && python examples/mnist1d.py'
    assert commands[1].startswith('pip install -e ".[test]"')
    # The command's $(...) expands to an extras list pip accepts, with and without a GPU.
    for fragment in ("", ",cuda12", ",cuda13"):
        extras = f"examples{fragment}".split(",")
        assert all(extra in EXTRAS for extra in extras)


_NETWORK_TROUBLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                    "ConnectTimeout", "ProxyError", "Max retries exceeded", "Failed to establish",
                    "Connection refused", "Name or service not known", "ReadTimeout")


@pytest.mark.slow
@pytest.mark.parametrize("extra,major", [("cuda12", 12), ("cuda13", 13)])
def test_cuda_extra_resolves_to_cupy_and_the_cuda_libraries(extra, major, tmp_path):
    """pip resolves the extra's requirements (no install, no GPU needed) to CuPy
    for that CUDA major plus the runtime, NVRTC and cuBLAS of the same major."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--only-binary=:all:", "--retries", "1", "--timeout", "20",
               "--report", str(report), *EXTRAS[extra]]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=400, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 400 s")
    output = result.stdout + result.stderr
    if result.returncode != 0 and any(marker in output for marker in _NETWORK_TROUBLE):
        pytest.skip(f"the package index is unreachable: {output.strip().splitlines()[-1]}")
    assert result.returncode == 0, output[-3000:]
    installs = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert re.match(r"14\.", installs.get(f"cupy-cuda{major}x", "")), installs
    suffix = "-cu12" if major == 12 else ""  # CUDA 13's wheels dropped the suffix
    for library in ("nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cublas"):
        version = installs.get(library + suffix)
        assert version is not None and version.split(".")[0] == str(major), (library, installs)


def test_cupy_imports_without_a_gpu():
    """Where CuPy is installed, importing it needs no GPU (gpugrad's detection relies on that)."""
    result = subprocess.run([sys.executable, "-c", "import cupy; print(cupy.__version__)"], capture_output=True,
                            text=True, timeout=120, check=False)
    if "No module named 'cupy'" in result.stderr:
        pytest.skip("CuPy is not installed here")
    assert result.returncode == 0, result.stderr[-2000:]
