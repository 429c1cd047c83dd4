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
