"""The CuPy extra that fits this machine's NVIDIA driver: ``,cuda12``, ``,cuda13`` or nothing.

The README's first command asks this script which extra to install, before
gpugrad (or even NumPy) is installed, so it uses the standard library only and
is run by its path, not imported::

    pip install -e ".[examples$(python gpugrad/install_extra.py)]"

It prints ``,cuda13`` when ``nvidia-smi`` reports a driver for CUDA 13 or
newer (drivers run older CUDA builds), ``,cuda12`` for a CUDA 12 driver, and
nothing where there is no NVIDIA driver (the CPU install).  Without a working
``nvidia-smi`` it falls back to the ``CUDA_VERSION`` variable that NVIDIA's
container images set (how ``docker/Dockerfile.cuda`` picks, at build time,
with no GPU attached).  Each extra installs ``cupy-cudaXXx[ctk]``: CuPy plus the
CUDA toolkit libraries it loads (runtime, NVRTC, cuBLAS, ...), from PyPI, so a
machine with only a driver runs the GPU path.  What it chose, and why, goes to
stderr.

Examples
--------
>>> cuda_version_from_nvidia_smi("| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |")
(13, 0)
>>> extra_for((12, 8)), extra_for((13, 0)), extra_for((14, 1)), extra_for(None)
(',cuda12', ',cuda13', ',cuda13', '')
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

#: Driver CUDA major version -> the extra in pyproject.toml.  CuPy 14 has no
#: build for CUDA 11; a driver newer than 13 runs the CUDA 13 build.
EXTRAS = {12: "cuda12", 13: "cuda13"}
NEWEST = max(EXTRAS)


def cuda_version_from_nvidia_smi(text):
    """``(major, minor)`` from ``nvidia-smi``'s banner (``CUDA Version: 13.0``), else None.

    Examples
    --------
    >>> cuda_version_from_nvidia_smi("No devices were found") is None
    True
    """
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def cuda_version_from_string(text):
    """``(major, minor)`` from ``"12.6.3"`` or ``"13"``, else None.

    Examples
    --------
    >>> cuda_version_from_string("12.6.3"), cuda_version_from_string("")
    ((12, 6), None)
    """
    match = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(?:\.\d+)*\s*", text or "")
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def extra_for(version):
    """The extras fragment to append after ``examples`` for a driver's CUDA version.

    Examples
    --------
    >>> extra_for((11, 8))
    ''
    """
    if version is None or version[0] < min(EXTRAS):
        return ""
    return "," + EXTRAS[min(version[0], NEWEST)]


def detect(environ=None, run=subprocess.run):
    """``(version, source)``: the driver's CUDA version and where it was read.

    ``nvidia-smi`` first (the driver is what matters), then ``CUDA_VERSION``.
    """
    environ = os.environ if environ is None else environ
    try:
        result = run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False)
        if result.returncode == 0:
            version = cuda_version_from_nvidia_smi(result.stdout)
            if version is not None:
                return version, "nvidia-smi"
    except (OSError, subprocess.SubprocessError):
        pass
    version = cuda_version_from_string(environ.get("CUDA_VERSION", ""))
    if version is not None:
        return version, "CUDA_VERSION"
    return None, None


def main(argv=None, environ=None, run=subprocess.run, stdout=None, stderr=None):
    """Print the extras fragment; ``--require`` exits 1 when there is none (images)."""
    argv = sys.argv[1:] if argv is None else argv
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    version, source = detect(environ, run)
    extra = extra_for(version)
    if extra:
        note = f"CUDA {version[0]}.{version[1]} from {source}: installing CuPy{extra[1:].replace('cuda', ' for CUDA ')}"
        if version[0] > NEWEST:
            note += f" (newest CuPy build; a CUDA {version[0]} driver runs it)"
        print(f"install_extra: {note} with its CUDA libraries from PyPI", file=stderr)
    elif version is not None:
        print(f"install_extra: CUDA {version[0]}.{version[1]} from {source} is older than CuPy 14 supports "
              f"(CUDA {min(EXTRAS)}+): installing for the CPU; update the NVIDIA driver for the GPU path",
              file=stderr)
    else:
        print("install_extra: no NVIDIA driver found (nvidia-smi, CUDA_VERSION): installing for the CPU",
              file=stderr)
    print(extra, file=stdout)
    if "--require" in argv and not extra:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
