"""plots/loss.png drawn from several threads at once (runs of the app share one process)."""
import threading

import numpy as np
from PIL import Image

from pipelines.train.plots import plot_run_metrics


def metric_rows(n=200):
    steps = np.arange(1, n + 1)
    loss = [{"step": int(s), "name": "loss", "value": float(1.0 / s + 0.01)} for s in steps]  # log scale: mathtext ticks
    lr = [{"step": int(s), "name": "lr", "value": 1e-3 * min(1.0, s / 20)} for s in steps]
    return loss + lr


def test_two_threads_plotting_at_once_both_write_every_plot(tmp_path):
    rows, errors = metric_rows(), []
    start = threading.Barrier(2)

    def draw(k):
        start.wait()
        for i in range(30):
            try:
                plot_run_metrics(rows, tmp_path / f"t{k}" / f"loss_{i}.png")
            except Exception as exc:  # noqa: BLE001  collected: an exception in a thread would pass unseen
                errors.append(exc)

    threads = [threading.Thread(target=draw, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(2):
        for i in range(30):
            image = np.asarray(Image.open(tmp_path / f"t{k}" / f"loss_{i}.png").convert("L"))
            assert image.std() > 5  # not blank: lines and labels were drawn


def test_no_plot_without_the_loss(tmp_path):
    assert plot_run_metrics([{"step": 1, "name": "lr", "value": 0.1}], tmp_path / "loss.png") is None
    assert not (tmp_path / "loss.png").exists()
