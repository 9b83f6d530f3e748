"""Mixed precision owned by each run.

accelerate keeps its precision setting in process-wide state, and the app trains several runs (maybe with
different settings) in one process, so a run does its own autocast and fp16 grad scaling; accelerate
still places the model and wraps it for several GPUs.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_mixed_precision(setting: str) -> str:
    """auto: bf16 on CUDA GPUs that support it, else fp16; fp32 on the CPU (see bench/train_throughput.py)."""
    cuda = torch.cuda.is_available()
    if setting == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
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

    def step(self, optimizer, parameters, max_norm: float | None) -> float:
        """Unscale, clip, step; returns the gradient norm before clipping."""
        if self.scaler:
            self.scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm or float("inf"))
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        return float(norm)

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
