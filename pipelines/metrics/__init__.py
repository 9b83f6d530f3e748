"""Metrics: FID/KID and their feature extractors, PSNR/SSIM, prompt alignment, CLIP score.

What the studio needs to show them (names, smoothing) lives here, importable without torch.
"""
from __future__ import annotations

import numpy as np


def metric_label(extractor: str) -> str:
    """FID only for the Inception; the others are Fréchet distances named after their features."""
    return "FID" if extractor == "inception" else f"FD ({extractor})"


# What each extractor's distance measures, for model cards (a figure is comparable only with the same extractor).
EXTRACTOR_NOTES = {
    "inception": "the standard FID Inception network",
    "digits-cnn": "the studio's digit classifier (pipelines/metrics/digits_cnn.safetensors), not Inception",
    "photo-cnn": "the studio's small CIFAR-10 photo classifier (pipelines/metrics/photo_cnn.safetensors), not "
                 "Inception: not comparable with published FIDs",
    "hog-colour": "edge-orientation and colour-layout statistics (no network), not Inception",
}


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard draws it)."""
    out, avg = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out
