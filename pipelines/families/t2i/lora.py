"""LoRA adapters (peft) on the attention projections of a pretrained diffusers UNet, and optionally of a Stable
Diffusion pipeline's CLIP text encoder (`model.lora_text_encoder`).

A LoRA run trains and saves only the adapters: a checkpoint holds `unet_lora/` (as diffusers'
`save_lora_adapter` writes it, which `UNet2DConditionModel.load_lora_adapter` reads back) and `lora.json`
naming the base UNet, so its UNet part is megabytes where the base model is gigabytes. The text encoder's
adapters go to `text_encoder_lora/` as diffusers' `save_lora_weights` writes them (names `text_encoder.*`, the
LoRA config in the file's metadata), which `StableDiffusionPipeline.load_lora_weights` reads back.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import torch

from ...models.unet import load_pretrained_unet

LORA_FILE = "lora.json"
ADAPTER_DIR = "unet_lora"
WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' name; it looks for a .bin unless told
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # self- and cross-attention, as diffusers' LoRA training scripts
TEXT_ADAPTER_DIR = "text_encoder_lora"
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]  # CLIP's self-attention, as diffusers' train_dreambooth_lora.py
# Diffusers' names of a CLIPTextModel's adapters; its loader drops `text_model.` where transformers flattened CLIP.
TEXT_PREFIX = "text_model."


def lora_config(rank: int, alpha: float | None, targets: list[str]):
    """Adapters of `rank` on the `targets` projections; they start at zero (B = 0), so a model starts as its base."""
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=targets)


def add_lora(unet: torch.nn.Module, rank: int, alpha: float | None = None) -> torch.nn.Module:
    """Freeze `unet` and add trainable adapters."""
    unet.requires_grad_(False)
    unet.add_adapter(lora_config(rank, alpha, TARGETS))
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


def add_text_lora(text_model: torch.nn.Module, rank: int, alpha: float | None = None) -> torch.nn.Module:
    """A copy of the frozen text encoder with trainable adapters that start at zero; the copy shares the base
    weights (no second copy in memory) and the original stays as it was."""
    from peft import inject_adapter_in_model

    adapted = copy.deepcopy(text_model, memo={id(p): p for p in text_model.parameters()})
    # peft itself: transformers' `add_adapter` refuses peft releases older than the one it was built against.
    inject_adapter_in_model(lora_config(rank, alpha, TEXT_TARGETS), adapted)
    for name, p in adapted.named_parameters():
        p.requires_grad_("lora_" in name)
    return adapted


class TextConditionedUNet(torch.nn.Module):
    """The UNet and a trained text encoder as one module, so that the shared optimizer, EMA, gradient clipping, DDP
    wrapping and checkpoints cover both; called as the UNet is, with token ids instead of token states."""

    def __init__(self, unet: torch.nn.Module, text_encoder: torch.nn.Module):
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder

    def text_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        states = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return {"encoder_hidden_states": states, "encoder_attention_mask": attention_mask}

    def forward(self, sample, timestep, input_ids, attention_mask):
        return self.unet(sample, timestep, **self.text_states(input_ids, attention_mask))


def save_text_lora(text_model: torch.nn.Module, folder: Path, rank: int, alpha: float | None) -> None:
    from diffusers import StableDiffusionPipeline

    state = {TEXT_PREFIX + k.replace(".default.", "."): v.detach().cpu().contiguous()
             for k, v in text_model.state_dict().items() if "lora_" in k}
    StableDiffusionPipeline.save_lora_weights(folder / TEXT_ADAPTER_DIR, text_encoder_lora_layers=state, weight_name=WEIGHTS,
                                              text_encoder_lora_adapter_metadata=lora_config(rank, alpha, TEXT_TARGETS).to_dict())


def load_lora_text_encoder(text_model: torch.nn.Module, folder: str | Path) -> torch.nn.Module:
    """`text_model` with the adapters of `folder`'s text_encoder_lora/ (rank and alpha from its lora.json)."""
    from peft import inject_adapter_in_model
    from safetensors.torch import load_file

    folder = Path(folder)
    info = json.loads((folder / LORA_FILE).read_text())
    saved = load_file(folder / TEXT_ADAPTER_DIR / WEIGHTS)
    inject_adapter_in_model(lora_config(info["rank"], info["alpha"], TEXT_TARGETS), text_model)
    # text_encoder.text_model.<layer>.lora_A.weight -> <layer>.lora_A.default.weight (peft's name of the adapter)
    state = {re.sub(r"\.(lora_[AB])\.", r".\1.default.", k.removeprefix("text_encoder.").removeprefix(TEXT_PREFIX)): v
             for k, v in saved.items()}
    missing, unexpected = text_model.load_state_dict(state, strict=False)
    if unexpected or any("lora_" in k for k in missing):
        raise ValueError(f"checkpoint: {folder / TEXT_ADAPTER_DIR} does not fit its text encoder "
                         f"({len(unexpected)} unknown, {sum('lora_' in k for k in missing)} missing adapter weights)")
    return text_model.eval().requires_grad_(False)
