"""The text-to-image family: a diffusers UNet2DConditionModel attending to a frozen text encoder's token states.

Every caption of the data (and the test prompts, and the empty caption) is encoded once, cached on disk per
encoder, and held as a table on the device; a batch looks its captions up. Caption dropout swaps in the empty
caption, which is also the "unconditional" side of classifier-free guidance unless a negative prompt is given.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel

from ..models.text import TextEncoder, cached_embeddings
from ..models.unet import build_text_unet
from ..sample.diffusion import denoise, make_sampler, seed_noise, to_uint8
from .ddpm import DDPMFamily
from .family import SingleModelFamily

TEXT_FILE = "text_encoder.json"


class T2IFamily(DDPMFamily):
    name = "t2i"

    def __init__(self, config, splits, accelerator, precision, **context):
        SingleModelFamily.__init__(self, config, splits, accelerator, precision, **context)
        self.set_noise_schedule()
        self.num_classes = 0
        captions = [c for part in (splits.train, splits.val, splits.test) for c in part.captions]
        if not any(captions):
            raise ValueError(f"data.dataset: {config.data.dataset} has no captions (captions.json, metadata.jsonl, "
                             "or data.caption_column for a hub dataset)")
        self.encoder = TextEncoder(config.text.encoder, config.text.max_length, accelerator.device)
        s = config.sampling
        texts = sorted({"", s.negative_prompt, *s.prompts, *captions})
        states, mask = cached_embeddings(self.encoder, texts, self.workspace / "cache" if self.workspace else None)
        self.text_index = {t: i for i, t in enumerate(texts)}
        self.states, self.mask = states.to(accelerator.device), mask.to(accelerator.device)
        self.log.info("text encoder %s: %d distinct captions, %d tokens of %d dimensions", config.text.encoder,
                      len(texts), config.text.max_length, self.encoder.dim)

    def build_model(self) -> torch.nn.Module:
        m, d = self.config.model, self.config.data
        if not m.pretrained:
            return build_text_unet(m, d.image_size, d.channels, self.encoder.dim)
        folder = Path(m.pretrained).expanduser()
        folder = folder / "unet" if (folder / "unet").is_dir() else folder
        try:
            unet = UNet2DConditionModel.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise ValueError(f"model.pretrained: cannot load a UNet2DConditionModel from {folder} ({exc})") from None
        if unet.config.cross_attention_dim != self.encoder.dim:
            raise ValueError(f"model.pretrained: the UNet attends to {unet.config.cross_attention_dim}-dimensional text states, "
                             f"text.encoder {self.config.text.encoder} gives {self.encoder.dim}")
        if unet.config.in_channels != d.channels:
            raise ValueError(f"data.channels: the pretrained UNet takes {unet.config.in_channels} channels")
        self.log.info("fine-tuning the UNet of %s", m.pretrained)
        return unet

    def text_ids(self, texts: list[str]) -> torch.Tensor:
        """Rows of the embedding table; texts not in it yet (new prompts) are encoded and added."""
        new = sorted({t for t in texts if t not in self.text_index})
        if new:
            states, mask = self.encoder.encode(new)
            self.text_index.update({t: len(self.text_index) + i for i, t in enumerate(new)})
            self.states = torch.cat([self.states, states.to(self.states.device)])
            self.mask = torch.cat([self.mask, mask.to(self.mask.device)])
        return torch.tensor([self.text_index[t] for t in texts], device=self.accelerator.device)

    def prepare_batch(self, batch: dict) -> dict:
        return {**super().prepare_batch(batch), "text": self.text_ids(batch["captions"])}

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ids = batch["text"]
        drop = torch.rand(len(ids), device=ids.device) < self.config.text.caption_dropout
        ids = torch.where(drop, torch.full_like(ids, self.text_index[""]), ids)
        return self.denoising_loss(batch["images"], **self.conditioning(ids))

    def conditioning(self, ids: torch.Tensor) -> dict:
        return {"encoder_hidden_states": self.states[ids], "encoder_attention_mask": self.mask[ids]}

    @torch.no_grad()
    def generate(self, prompts: list[str], seed: int, sampler: str, steps: int, guidance: float,
                 negative_prompt: str = "") -> np.ndarray:
        """Image i from `prompts[i]` and the noise of seed `seed + i`, with the EMA weights."""
        d = self.config.data
        noise = seed_noise(list(range(seed, seed + len(prompts))), (d.channels, d.image_size, d.image_size))
        cond = self.conditioning(self.text_ids(prompts))
        uncond = self.conditioning(self.text_ids([negative_prompt] * len(prompts)))
        images = denoise(self.ema.model, make_sampler(sampler, self.noise_scheduler), noise, steps, cond, uncond,
                         guidance, seed=seed)
        return to_uint8(images)

    def sample_images(self, num: int, seed: int, sampler: str | None = None, steps: int | None = None) -> np.ndarray:
        """The test prompts in turn (image i: prompt i mod P), fixed seeds."""
        s, t = self.config.sampling, self.config.training
        prompts = [s.prompts[i % len(s.prompts)] for i in range(num)]
        return self.generate(prompts, seed, sampler or t.sample_sampler, steps or t.sample_steps, s.guidance, s.negative_prompt)

    def grid_columns(self, num: int) -> int | None:
        return min(len(self.config.sampling.prompts), num)  # one prompt per column

    def save_model(self, folder: Path) -> None:
        super().save_model(folder)  # unet/ and scheduler/, as diffusers writes them
        text = {"encoder": self.config.text.encoder, "max_length": self.config.text.max_length, "dim": self.encoder.dim}
        (Path(folder) / TEXT_FILE).write_text(json.dumps(text, indent=2))

    def meta(self) -> dict:
        d = self.config.data
        return {"image_size": d.image_size, "channels": d.channels, "num_classes": 0, "dataset": d.dataset,
                "text_encoder": self.config.text.encoder, "prompts": list(self.config.sampling.prompts)}

    def evaluator(self, run, logger):
        from .t2i_alignment import AlignmentEvaluator

        if self.config.evaluation.every_epochs and self.config.data.dataset == "shapes":
            return AlignmentEvaluator(self.config, run, logger)
        return None
