"""CLIP score (Hessel et al. 2021): 100 * max(cos(image embedding, caption embedding), 0), averaged over images.

Computed with transformers' CLIPModel and its processor from a hub id or a folder. `auto` uses
openai/clip-vit-base-patch32 when it is already in the local Hugging Face cache and nothing otherwise:
evaluation never downloads.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..sample.images import as_rgb

AUTO, DEFAULT = "auto", "openai/clip-vit-base-patch32"


class ClipScorer:
    def __init__(self, name: str, device: str | torch.device = "cpu", local_only: bool = False):
        from transformers import CLIPModel, CLIPProcessor

        try:
            self.model = CLIPModel.from_pretrained(name, local_files_only=local_only).eval().requires_grad_(False).to(device)
            self.processor = CLIPProcessor.from_pretrained(name, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise ValueError(f"evaluation.clip_model: cannot load a CLIP model from {name!r} ({str(exc).splitlines()[0]})") from None
        self.name, self.device = name, torch.device(device)

    @torch.no_grad()
    def scores(self, images: np.ndarray, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The CLIP score of each uint8 N x H x W x C image with its text."""
        out = []
        for start in range(0, len(images), batch_size):
            pictures = [Image.fromarray(img) for img in as_rgb(images[start:start + batch_size])]
            inputs = self.processor(text=list(texts[start:start + batch_size]), images=pictures, return_tensors="pt",
                                    padding=True, truncation=True).to(self.device)
            result = self.model(**inputs)  # image_embeds and text_embeds come normalised
            cosine = (result.image_embeds * result.text_embeds).sum(-1)
            out.append((100 * cosine.clamp(min=0)).float().cpu().numpy())
        return np.concatenate(out)


def resolve(name: str | None) -> tuple[str | None, bool]:
    """(the CLIP model to score with or None, whether it must come from the local cache only): `name`, or for
    `auto` the default model if its config, weights and processor files are all cached."""
    if name != AUTO:
        return name or None, False
    from huggingface_hub import try_to_load_from_cache

    def cached(*files):
        return any(isinstance(try_to_load_from_cache(DEFAULT, f), str) for f in files)

    found = cached("config.json") and cached("model.safetensors", "pytorch_model.bin") and cached("preprocessor_config.json")
    return (DEFAULT, True) if found else (None, True)
