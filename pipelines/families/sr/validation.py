"""PSNR and SSIM of a super-resolution model on held-out images, against the bicubic baseline.

Scores are over whole 8-bit images (the model output rounded as a saved file would be), RGB, with a border
of `scale` pixels left out as is customary; the bicubic baseline is scored the same way, once per run.
"""
from __future__ import annotations

import logging
import time

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from ...train.callbacks import Callback
from ...train.evaluation import PeriodicEvaluation
from ...train.loop import USER_STOP


def psnr_ssim(pred: torch.Tensor, target: torch.Tensor, border: int) -> tuple[float, float]:
    """uint8 3 x H x W images -> (PSNR in dB, SSIM)."""
    crop = (slice(None), slice(border, -border or None), slice(border, -border or None))
    p, t = (x[crop][None].float() / 255.0 for x in (pred, target))
    return (peak_signal_noise_ratio(p, t, data_range=1.0).item(),
            structural_similarity_index_measure(p, t, data_range=1.0).item())


def score(upscale, data, num: int, scale: int) -> dict[str, float]:
    """Mean PSNR/SSIM of `upscale(lr)` and of bicubic over the first `num` images of `data`."""
    from .model import bicubic_up

    totals = {"psnr": 0.0, "ssim": 0.0, "psnr_bicubic": 0.0, "ssim_bicubic": 0.0}
    n = min(num, data.num_images)
    for i in range(n):
        lr, hr = data.pair(i)
        for suffix, pred in (("", upscale(lr)), ("_bicubic", bicubic_up(lr, scale))):
            p, s = psnr_ssim(pred, hr, scale)
            totals["psnr" + suffix] += p / n
            totals["ssim" + suffix] += s / n
    return {**totals, "psnr_gain": totals["psnr"] - totals["psnr_bicubic"], "images": n}


class SRValidator(PeriodicEvaluation):
    """Every N epochs and at the end (not after a person's stop): PSNR/SSIM of the EMA model on held-out
    images, logged as metrics and fired as an evaluation (higher PSNR is better) for best/ and plateaus."""

    def __init__(self, config, run, logger: logging.Logger):
        super().__init__(config.evaluation, run, logger)

    def score(self, trainer) -> dict:
        family, s, start = trainer.family, trainer.state, time.perf_counter()
        data = family.held_out()
        result = score(family.upscale, data, self.cfg.num_images, family.arch.scale)
        seconds = time.perf_counter() - start
        self.run.store.log_metrics(self.run.name, s.global_step, s.epoch,
                                   {k: v for k, v in result.items() if k != "images"})
        self.log.info("validation at epoch %d on %d images: PSNR %.2f dB (bicubic %.2f, %+.2f), SSIM %.4f "
                      "(bicubic %.4f) in %.1f s", s.epoch, result["images"], result["psnr"], result["psnr_bicubic"],
                      result["psnr_gain"], result["ssim"], result["ssim_bicubic"], seconds)
        # Stage 2 trades PSNR for texture: its numbers are compared among themselves (best/ and plateaus
        # start afresh at the switch), not with the L1 stage's.
        stage = ", stage 2" if family.trained_in_stage_two else ""
        return {"value": result["psnr"], "higher_is_better": True, "label": "PSNR", "seconds": seconds,
                "scale": f"PSNR on {result['images']} images{stage}", **result}

    def final_callback(self) -> Callback:
        return SRFinalEvaluation(self)


class SRFinalEvaluation(Callback):
    """At the end of a run (not after a person's stop), best/ scored on the final split, after final/ is written."""

    def __init__(self, validator: SRValidator):
        self.validator = validator

    def on_end(self, trainer) -> None:
        cfg, run, log = self.validator.cfg, self.validator.run, self.validator.log
        best = run.folder / "best"
        data = getattr(trainer.family.splits, cfg.final_split)
        if cfg.final and trainer.is_main and trainer.state.stop_reason != USER_STOP and best.is_dir() and data.num_images:
            from .model import load_upscaler

            try:
                upscaler = load_upscaler(best, trainer.accelerator.device)
                result = score(lambda lr: (upscaler.run(lr[None].float() / 255.0, tile=0)[0] * 255).round().to(torch.uint8),
                               data, data.num_images, upscaler.scale)
                s = trainer.state
                run.store.log_metrics(run.name, s.global_step, s.epoch,
                                      {f"{cfg.final_split}_{k}": v for k, v in result.items() if k != "images"})
                log.info("final evaluation of best/ on %d %s images: PSNR %.2f dB (bicubic %.2f, %+.2f), SSIM %.4f (bicubic %.4f)",
                         result["images"], cfg.final_split, result["psnr"], result["psnr_bicubic"], result["psnr_gain"],
                         result["ssim"], result["ssim_bicubic"])
            except Exception as exc:  # noqa: BLE001  the run itself is complete and saved: say why and go on
                log.warning("final evaluation skipped: %s: %s", type(exc).__name__, exc)
        trainer.accelerator.wait_for_everyone()
