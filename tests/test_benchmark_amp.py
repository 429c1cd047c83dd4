"""benchmarks/amp.py: the AMP rows are produced for every library and precision, with ratios."""

import pytest

from benchmarks import amp


def test_amp_rows_cover_every_precision_and_library():
    pytest.importorskip("torch")
    result = amp.run([8, 16, 4], batch=4, device="cpu", clock="cpu", budget=0.5)
    rows = {(row["library"], row["precision"]): row for row in result["rows"]}
    assert set(rows) == {(library, p) for library in ("gpugrad", "torch") for p in amp.PRECISIONS}
    assert rows[("gpugrad", "fp32")]["vs_fp32"]["ratio"] == 1.0
    assert all(row["median_ms"] > 0 for row in rows.values())
    assert rows[("gpugrad", "bf16")]["peak_bytes"] > 0 and rows[("torch", "bf16")]["peak_bytes"] is None
    assert "vs_torch" in rows[("gpugrad", "fp16")]
    table = amp.format_markdown(result)
    assert table.count("\n| gpugrad |") == 3 and table.count("\n| torch |") == 3


def test_the_suite_measures_amp_rows_every_run(tmp_path):
    # python -m benchmarks carries the AMP rows (issue 17): six participants, the low-precision
    # ratios against gpugrad's own float32 step and against PyTorch in the same precision,
    # and the float32 steps of both libraries agreeing on the loss from the same weights.
    import json
    import os
    import subprocess
    import sys
    pytest.importorskip("torch")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "amp_mlp", "--out", str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": root})
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = json.loads((tmp_path / "results-cpu.json").read_text())["benchmarks"]
    assert set(record["participants"]) == {"gpugrad", "gpugrad-bf16", "gpugrad-fp16", "torch", "torch-bf16",
                                           "torch-fp16"}
    pairs = {(c["candidate"], c["reference"]) for c in record["comparisons"]}
    assert {("gpugrad-bf16", "gpugrad"), ("gpugrad-fp16", "gpugrad"), ("gpugrad-bf16", "torch-bf16"),
            ("gpugrad-fp16", "torch-fp16"), ("gpugrad", "torch")} <= pairs
    assert record["participants"]["torch"]["agreement"] < 1e-5
    assert record["amp_memory"]["gpugrad-bf16"] > 0
    assert "Peak memory of one AMP step" in (tmp_path / "results-cpu.md").read_text()
