"""The block-table widths decode graphs are captured at (pure Python; the graphs themselves
are tested on the GPU, tests/gpu/test_cuda_graphs.py)."""


def test_width_buckets():
    from trtcompile.runtime.cuda_graphs import width_buckets

    assert width_buckets(64) == [64]
    assert width_buckets(40) == [40]
    assert width_buckets(100) == [64, 100]
    assert width_buckets(2048) == [64, 256, 1024, 2048]
    assert width_buckets(8192) == [64, 256, 1024, 4096, 8192]
