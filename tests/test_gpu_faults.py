"""GPU faults: out-of-memory becomes a gpugrad error and leaves the process usable."""

import pytest

import gpugrad as gg


@pytest.fixture
def cuda_only(device):
    if device != "cuda":
        pytest.skip("needs a GPU")
    return device


def test_out_of_memory_reports_requested_and_free_bytes(cuda_only):
    import cupy
    pool = cupy.get_default_memory_pool()
    previous_limit = pool.get_limit()
    pool.set_limit(size=64 * 1024 * 1024)       # a 64 MiB pool stands in for a full card
    try:
        with pytest.raises(gg.OutOfMemoryError, match=r"allocating [0-9,]+ bytes .* free") as info:
            gg.zeros(1024, 1024, 64, device="cuda")  # 256 MiB
        assert isinstance(info.value, MemoryError)
        small = gg.ones(1024, device="cuda") * 2     # the process is still usable
        assert float(small.sum()) == 2048.0
        big = gg.ones(1024, 1024, 8, device="cuda")  # 32 MiB fits
        with pytest.raises(gg.OutOfMemoryError, match="exp"):
            for _ in range(4):
                big = gg.exp(gg.cat([big, big]))     # grows past the limit inside an op
    finally:
        pool.set_limit(size=previous_limit)
    stats = gg.cuda.memory_stats()
    assert stats["total_device_bytes"] > 0 and stats["used_bytes"] >= 0


def test_memory_stats_without_gpu_are_zero():
    if gg.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gg.cuda.memory_stats() == {"used_bytes": 0, "total_bytes": 0, "free_device_bytes": 0,
                                      "total_device_bytes": 0}
    gg.cuda.empty_cache()   # harmless without a GPU
