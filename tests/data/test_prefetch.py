"""Reading batches ahead in a thread (CUDA runs pin them too; that path runs in bench/gpu_smoke.py)."""
import threading

import pytest
import torch

from pipelines.data.prefetch import prefetch


def batches(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"batch {i} is unreadable")
        yield {"images": torch.full((2, 1, 4, 4), i, dtype=torch.uint8), "index": i}


def test_same_batches_in_the_same_order():
    got = list(prefetch(batches(20), depth=3, pin=False))
    assert [b["index"] for b in got] == list(range(20)) and all(int(b["images"][0, 0, 0, 0]) == b["index"] for b in got)


def test_an_error_reading_a_batch_is_raised_where_batches_are_used():
    with pytest.raises(ValueError, match="batch 4 is unreadable"):
        list(prefetch(batches(10, fail_at=4), pin=False))


def test_stopping_early_ends_the_thread():
    stream = prefetch(batches(1000), depth=2, pin=False)
    assert next(stream)["index"] == 0
    stream.close()  # the loop broke off (a stop request): the reader thread must not linger
    assert not [t for t in threading.enumerate() if t.name == "batch-prefetch"]
