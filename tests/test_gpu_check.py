"""benchmarks/gpu_check.sh's machinery, proved on the CPU (GPU_CHECK_DRY_RUN=1).

The GPU run happens once, on a machine CI does not have, so everything that is
not about the GPU is checked here: the suite split into chunks each under its
own limit, SIGINT at the limit so pytest prints its summary, a crash reported
as a crash (not a failure or a missed target), the total budget clipping the
limits, one table printed, and at most 8 files in the results folder.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "benchmarks" / "gpu_check.sh"

_spec = importlib.util.spec_from_file_location("gpu_check_summary", REPOSITORY / "benchmarks" / "gpu_check_summary.py")
summary_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary_module)

FAKE_TESTS = {
    "test_fake_pass.py": "def test_ok():\n    assert True\n",
    "test_fake_fail.py": "def test_ok():\n    pass\n\n\ndef test_wrong():\n    assert 1 == 2\n",
    "test_fake_hang.py": "import time\n\n\ndef test_quick():\n    pass\n\n\ndef test_hangs():\n    time.sleep(600)\n",
    "test_fake_crash.py": ("import os\nimport signal\n\n\ndef test_segfault():\n"
                           "    os.kill(os.getpid(), signal.SIGSEGV)\n"),
}


def _needs_tools():
    for tool in ("bash", "timeout"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _run(tmp_path, files, timeout=300, **variables):
    _needs_tools()
    out = tmp_path / "out"
    environment = dict(os.environ, GPU_CHECK_DRY_RUN="1", OUT=str(out), PYTHON=sys.executable,
                       MPLBACKEND="Agg", **{k: str(v) for k, v in variables.items()})
    if files is not None:
        environment["GPU_CHECK_SUITE_FILES"] = " ".join(str(f) for f in files)
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=environment,
                            timeout=timeout, check=False)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return result, summary, out


def _fake_suite(tmp_path):
    folder = tmp_path / "fake"
    folder.mkdir()
    for name, text in FAKE_TESTS.items():
        (folder / name).write_text(text)
    return [folder / name for name in FAKE_TESTS]


def _verdict_per_file(summary, out):
    """suite-N's verdict keyed by the fake test file that chunk ran (from the log headers)."""
    log = (out / "suite.log").read_text()
    chunk_files = dict(re.findall(r"^=== gpu_check (suite-\d+) \(limit \d+s\): .*?(test_fake_\w+\.py)", log,
                                  re.MULTILINE))
    return {chunk_files[s["step"]]: s for s in summary["steps"] if s["kind"] == "suite"}


def test_chunks_sigint_and_crash_are_told_apart(tmp_path):
    result, summary, out = _run(tmp_path, _fake_suite(tmp_path), GPU_CHECK_STEPS="suite", GPU_CHECK_CHUNKS=4,
                                LIMIT_CHUNK=25, GPU_CHECK_GRACE=20)
    assert summary is not None, result.stdout + result.stderr
    assert result.returncode == 1, "failures must fail the script"
    by_file = _verdict_per_file(summary, out)
    assert by_file["test_fake_pass.py"]["verdict"] == "PASS"
    assert by_file["test_fake_fail.py"]["verdict"] == "FAIL"
    assert by_file["test_fake_fail.py"]["counts"] == {"failed": 1, "passed": 1}
    # SIGINT at the limit: pytest printed its summary (the quick test had passed).
    hang = by_file["test_fake_hang.py"]
    assert hang["verdict"] == "TIMEOUT" and hang["exit"] == "124", hang
    assert hang["counts"].get("passed") == 1, hang
    assert "KeyboardInterrupt" in (out / "suite.log").read_text()
    # SIGINT ended it, not the KILL after the grace period (pytest winds down in
    # seconds, more on a loaded CI machine: hence the generous grace here).
    assert 25 <= hang["seconds"] < 25 + 20
    crash = by_file["test_fake_crash.py"]
    assert crash["verdict"] == "CRASH" and "SIGSEGV" in crash["note"], crash
    # No -x: the chunks after a failure and a crash still ran (all four are there).
    assert len(by_file) == 4
    targets = {t["target"]: t for t in summary["targets"]}
    assert "incomplete" in targets["CUDA suite failures"]["result"]
    assert sorted(p.name for p in out.iterdir()) == ["suite.log", "summary.json", "summary.md"]
    # One table, printed.
    assert re.search(r"^suite-\d+\s+CRASH", result.stdout, re.MULTILINE)
    assert "CUDA suite failures" in result.stdout


def test_budget_clips_every_limit(tmp_path):
    """However the per-step limits are set, the total budget wins: with 32 s, a
    hanging chunk gets what is left and the next one does not start."""
    fake = _fake_suite(tmp_path)
    hang, passing = fake[2], fake[0]
    result, summary, out = _run(tmp_path, [hang, passing], GPU_CHECK_STEPS="suite", GPU_CHECK_CHUNKS=2,
                                LIMIT_CHUNK=300, GPU_CHECK_BUDGET=32, GPU_CHECK_GRACE=3)
    assert summary is not None, result.stdout + result.stderr
    steps = [s for s in summary["steps"] if s["kind"] == "suite"]
    assert steps[0]["verdict"] == "TIMEOUT" and steps[0]["limit"] <= 32 - 15 - 3
    assert steps[1]["verdict"] == "TIMEOUT" and steps[1]["exit"] == "budget"
    assert summary["total_seconds"] <= 32
    assert result.returncode == 1


@pytest.mark.slow
def test_full_dry_run_writes_at_most_eight_files(tmp_path):
    """Every step of the real script on the CPU: kernels, suite, bandwidth, the
    MLP step, the captured-step rows and the MNIST-1D job against PyTorch; one JSON,
    one markdown table, logs."""
    pytest.importorskip("torch")
    pytest.importorskip("mnist1d")
    passing = _fake_suite(tmp_path)[0]
    result, summary, out = _run(tmp_path, [passing], timeout=900, GPU_CHECK_BUDGET=800, LIMIT_KERNELS=200,
                                LIMIT_BANDWIDTH=200, LIMIT_TRAIN=200, LIMIT_GRAPH=200,
                                LIMIT_MNIST1D=300)
    assert summary is not None, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8
    assert files == sorted(["summary.json", "summary.md", "kernels.log", "suite.log", "bandwidth.log",
                            "train.log", "graph.log", "mnist1d.log"])
    assert summary["files"] == files
    assert [s["step"] for s in summary["steps"]] == ["kernels", "suite-1", "bandwidth", "train", "graph",
                                                        "mnist1d"]
    assert all(s["verdict"] == "PASS" for s in summary["steps"]), summary["steps"]
    assert set(summary["details"]) == {"kernel_bandwidth", "gpu_train_step", "gpu_graph_step",
                                      "gpu_train_mnist1d"}
    assert {t["status"] for t in summary["targets"]} == {"n/a (dry run)"}
    wanted = {t["target"] for t in summary["targets"]}
    assert {"CUDA suite failures", "every kernel equal to its twin", "gelu backward vs plain CuPy ops",
            "activation kernels vs device-to-device copy", "MLP step time vs PyTorch eager",
            "MLP step peak memory vs PyTorch", "MNIST-1D main job (MLP) time vs PyTorch eager",
            "captured small MLP step vs PyTorch eager", "captured MNIST-1D MLP step vs PyTorch eager"} <= wanted
    markdown = (out / "summary.md").read_text()
    assert "| step | verdict |" in markdown and "| target | wanted | result | status |" in markdown


def test_script_follows_the_rules_of_one_shot():
    text = SCRIPT.read_text()
    assert re.search(r"^PYTHON=\$\{PYTHON:-python3\}$", text, re.MULTILINE)
    assert "set -u -o pipefail" in text and "set -e" not in text and "set -x" not in text
    assert not re.search(r"pytest[^\n]*\s-x\b", text), "no -x: every failure is reported"
    assert "timeout -s INT -k" in text
    # The suite's CUDA command lives in one place, at the top.
    assert len(re.findall(r"^SUITE_ENV=\(GPUGRAD_TEST_DEVICES=cuda GPUGRAD_DEVICE=cuda\)$", text, re.MULTILINE)) == 1
    assert len(re.findall(r"^SUITE_PYTEST=\(-m pytest -p no:cacheprovider .*-n 8\)$", text, re.MULTILINE)) == 1
    limits = [int(v) for v in re.findall(r"^BUDGET=\$\{GPU_CHECK_BUDGET:-(\d+)\}", text, re.MULTILINE)]
    assert limits and limits[0] < 360, "the whole script under 6 minutes"


@pytest.mark.parametrize("kind,status,seconds,limit,log,details,dry_run,verdict", [
    ("suite", "0", 3, 45, "=== 5 passed in 1.0s ===", None, False, "PASS"),
    ("suite", "1", 3, 45, "1 failed, 4 passed in 1.0s", None, False, "FAIL"),
    ("suite", "1", 3, 45, "[gw3] node down: Not properly terminated\nreplacing crashed worker gw3\n"
                          "1 failed, 4 passed in 1.0s", None, False, "CRASH"),
    ("suite", "124", 45, 45, "!!! KeyboardInterrupt !!!\n3 passed in 44.0s", None, False, "TIMEOUT"),
    ("suite", "137", 53, 45, "", None, False, "TIMEOUT"),
    ("suite", "137", 12, 45, "", None, False, "CRASH"),       # killed (out of memory) before its limit
    ("suite", "134", 2, 45, "", None, False, "CRASH"),
    ("suite", "5", 2, 45, "no tests ran", None, False, "FAIL"),
    ("kernels", "0", 9, 60, "70 passed, 3 skipped in 8.0s", None, False, "FAIL"),   # skips on a GPU
    ("kernels", "0", 9, 60, "70 passed, 3 skipped in 8.0s", None, True, "PASS"),
    ("bench", "1", 20, 45, "missed", {"all_pass": False}, False, "MISS"),
    ("bench", "1", 20, 45, "Traceback ...\nValueError: boom", None, False, "ERROR"),
    ("bench", "1", 20, 45, "", {"agree": False}, False, "FAIL"),
    ("bench", "139", 20, 45, "", {"all_pass": True}, False, "CRASH"),   # a crash is never a missed target
    ("bench", "skipped", 0, 0, "", None, False, "SKIPPED"),
    ("suite", "budget", 0, 3, "", None, False, "TIMEOUT"),
])
def test_verdicts(kind, status, seconds, limit, log, details, dry_run, verdict):
    assert summary_module.verdict_for(kind, status, seconds, limit, log, details, dry_run)[0] == verdict


def test_summary_doctests():
    import doctest
    failures, _ = doctest.testmod(summary_module)
    assert failures == 0


def _graph_result(captured_ms, agree=True):
    rows = [{"participant": "gpugrad eager", "ms_per_step": 1.2, "vs_torch_eager": 1.2 / 0.8},
            {"participant": "gpugrad captured", "ms_per_step": captured_ms, "vs_torch_eager": captured_ms / 0.8},
            {"participant": "pytorch eager", "ms_per_step": 0.8, "vs_torch_eager": 1.0},
            {"participant": "pytorch graph", "ms_per_step": 0.2, "vs_torch_eager": 0.25}]
    return {"agree": agree, "models": [{"model": name, "agree": agree, "rows": rows}
                                       for name in ("small MLP", "MNIST-1D MLP")]}


@pytest.mark.parametrize("captured_ms,agree,status", [(0.3, True, "PASS"), (0.5, True, "MISS"),
                                                      (0.3, False, "MISS")])
def test_captured_step_target(captured_ms, agree, status):
    """The issue's bar: a captured small-MLP step at most 0.5x PyTorch eager's time, and only when it replays right."""
    targets = summary_module.targets_against_results([], {"gpu_graph_step": _graph_result(captured_ms, agree)}, False)
    row = next(t for t in targets if t["target"] == "captured small MLP step vs PyTorch eager")
    assert row["status"] == status, row
    assert f"{captured_ms / 0.8:.2f}x" in row["result"] and "PyTorch graph 0.200" in row["result"]
    reported = next(t for t in targets if t["target"] == "captured MNIST-1D MLP step vs PyTorch eager")
    assert reported["status"] == ("PASS" if agree else "MISS")


def test_captured_rows_on_the_cpu_are_not_measured():
    cpu = _graph_result(0.3)
    for model in cpu["models"]:
        for row in model["rows"]:
            if "captured" in row["participant"] or "graph" in row["participant"]:
                row["ms_per_step"] = row["vs_torch_eager"] = None
    targets = summary_module.targets_against_results([], {"gpu_graph_step": cpu}, False)
    row = next(t for t in targets if t["target"] == "captured small MLP step vs PyTorch eager")
    assert row["status"] == "PENDING" and "needs CUDA" in row["result"]
