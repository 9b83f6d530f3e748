"""Batches read ahead in a background thread into pinned memory, so a GPU does not wait for the host."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

_DONE = object()


def prefetch(batches: Iterator[dict], depth: int = 2, pin: bool = True) -> Iterator[dict]:
    """The same batches, in the same order, read `depth` ahead, their tensors in pinned (page-locked) memory (`pin`:
    CUDA only). Only for data whose batches draw nothing from torch's global RNG (a thread would reorder the draws)."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for batch in batches:
                if pin:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                if not put(batch):
                    return
        except BaseException as exc:  # raised where the batches are used
            put(exc)
        put(_DONE)

    thread = threading.Thread(target=work, name="batch-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the loop stopped early (a stop, a budget): let the thread end
        stop.set()
        thread.join()
