"""LoRA adapters (peft) on the attention projections of a pretrained diffusers UNet.

A LoRA run trains and saves only the adapters: a checkpoint holds `unet_lora/` (as diffusers'
`save_lora_adapter` writes it, which `UNet2DConditionModel.load_lora_adapter` reads back) and `lora.json`
naming the base UNet, so its UNet part is megabytes where the base model is gigabytes.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ...models.unet import load_pretrained_unet

LORA_FILE = "lora.json"
ADAPTER_DIR = "unet_lora"
WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' name; it looks for a .bin unless told
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # self- and cross-attention, as diffusers' LoRA training scripts


def add_lora(unet: torch.nn.Module, rank: int, alpha: float | None = None) -> torch.nn.Module:
    """Freeze `unet` and add trainable adapters; they start at zero (B = 0), so the model starts as the base."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=TARGETS))
    return unet


def lora_only(state: dict) -> dict:
    return {k: v for k, v in state.items() if "lora_" in k}


def is_lora_folder(path: str | Path) -> bool:
    return (Path(path) / LORA_FILE).exists()


def save_lora(unet, folder: Path, base: str, rank: int, alpha: float | None) -> None:
    unet.save_lora_adapter(folder / ADAPTER_DIR)
    info = {"base": base, "rank": rank, "alpha": alpha or rank, "sample_size": unet.config.sample_size}
    (folder / LORA_FILE).write_text(json.dumps(info, indent=2))


def load_lora_unet(folder: str | Path):
    """The base UNet named in `lora.json` with the folder's adapters."""
    folder = Path(folder)
    info = json.loads((folder / LORA_FILE).read_text())
    try:
        unet = load_pretrained_unet(info["base"])
    except ValueError as exc:
        raise ValueError(f"checkpoint: {folder} holds LoRA adapters of {info['base']}, which cannot be loaded ({exc})") from None
    unet.load_lora_adapter(str(folder / ADAPTER_DIR), prefix=None, weight_name=WEIGHTS)
    if "sample_size" in info:  # the size it was trained at, not the base's
        unet.register_to_config(sample_size=info["sample_size"])
    return unet
