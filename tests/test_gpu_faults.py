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
        # Inside an op: 16 MiB + the 32 MiB cat fit in 64 MiB; exp's 32 MiB output does not,
        # so exp (and not cat, which stays under the limit) is the op that reports it.
        quarter = gg.ones(1024, 1024, 4, device="cuda")       # 16 MiB
        pair = gg.cat([quarter, quarter])                     # 32 MiB: 48 MiB in use
        with pytest.raises(gg.OutOfMemoryError, match=r"^exp: the GPU ran out of memory"):
            gg.exp(pair)
        del quarter, pair
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
