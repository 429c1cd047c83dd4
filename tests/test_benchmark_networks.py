"""The real-network benchmarks (benchmarks/networks.py) build, agree with PyTorch and report memory."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", ["logistic", "mlp", "cnn", "gru", "digits", "transformer"])
def test_network_gradients_agree_with_torch(name):
    from benchmarks import networks

    ours, theirs = networks.gpugrad_network(name), networks.torch_network(name)
    ours.step()
    theirs.step()
    got, expected = ours.snapshot()["gradients"], theirs.snapshot()["gradients"]
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))


def test_suite_runs_network_benchmarks_with_memory(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "net_logistic,net_gru", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    records = {r["key"]: r for r in json.loads((tmp_path / "results-cpu.json").read_text())["benchmarks"]}
    assert set(records) == {"net_logistic", "net_gru"}
    for record in records.values():
        statuses = {c["status"] for c in record["comparisons"] if c["candidate"] == "gpugrad"}
        assert statuses and statuses <= {"PASS", "MISS"}
        assert record["memory"]["gpugrad_bytes"] > 0 and record["memory"]["torch_bytes"] > 0


def test_main_job_vs_torch_times_both_libraries(tmp_path):
    pytest.importorskip("mnist1d")
    out = tmp_path / "main_job.json"
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "main_job_vs_torch.py"), "--quick", "--models",
         "logistic", "mlp", "--json", str(out)], check=False, capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT})
    assert completed.returncode == 0, completed.stderr
    assert "| total" in completed.stdout
    figures = json.loads(out.read_text())
    assert figures["threads"] == 1 and [row["model"] for row in figures["models"]] == ["logistic", "mlp"]
    for row in figures["models"]:
        assert row["steps"] == 10
        for library in ("gpugrad", "torch"):
            assert row[library]["wall_s"] > 0 and 0.0 <= row[library]["accuracy"] <= 1.0
    assert figures["totals"]["gpugrad"]["wall_s"] == pytest.approx(
        sum(row["gpugrad"]["wall_s"] for row in figures["models"]))
