"""Mixed precision owned by each run.

accelerate keeps its precision setting in process-wide state, and the app trains several runs (maybe with
different settings) in one process, so a run does its own autocast and fp16 grad scaling; accelerate
still places the model and wraps it for several GPUs.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matmuls run natively (elsewhere bf16 autocast is emulated and slow)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_mixed_precision(setting: str) -> str:
    """auto: bf16 on CUDA GPUs that support it, else fp16; on the CPU, bf16 where the CPU computes it natively
    (bench/train_throughput.py: faster at the same loss on such a CPU), else fp32."""
    cuda = torch.cuda.is_available()
    if setting == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "no"
    if setting == "fp16" and not cuda:
        return "no"  # fp16 autocast is a GPU feature; on the CPU it only loses precision
    return setting


class Precision:
    def __init__(self, mode: str, device: torch.device):
        self.mode, self.device_type = mode, device.type
        self.dtype = DTYPES.get(mode)
        self.scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype else nullcontext()

    def backward(self, loss: torch.Tensor, accelerator) -> None:
        accelerator.backward(self.scaler.scale(loss) if self.scaler else loss)

    def step(self, optimizer, parameters, max_norm: float | None, finite_loss: bool = True) -> float:
        """Unscale, clip, step; returns the gradient norm before clipping. A step whose norm is not finite (or
        whose loss was not, `finite_loss`) is not applied: the norm returned says so (NaN for a bad loss)."""
        if self.scaler:
            self.scaler.unscale_(optimizer)
        # The norm can be inf while every gradient is finite (their squares overflow): check it, not the gradients.
        norm = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm or float("inf"))) if finite_loss else math.nan
        applied = math.isfinite(norm)
        if self.scaler and applied:
            self.scaler.step(optimizer)
            self.scaler.update()
        elif self.scaler:  # skipped: lower the loss scale as the scaler does for an overflow it finds itself
            self.scaler.update(self.scaler.get_scale() * self.scaler.get_backoff_factor())
        elif applied:
            optimizer.step()
        return norm

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
