"""The text-to-image family: a diffusers UNet2DConditionModel attending to a frozen text encoder's token states.

Every caption of the data (and the test prompts, and the empty caption) is encoded once, cached on disk per
encoder, and held as a table on the device; a batch looks its captions up. Caption dropout swaps in the empty
caption, which is also the "unconditional" side of classifier-free guidance unless a negative prompt is given.

With `latent.vae` the UNet denoises an autoencoder's latents instead of pixels: the training images are
encoded once (cached on disk like the captions) and samples are decoded. With `model.lora_rank` only LoRA
adapters on a pretrained UNet's attention layers train, and only they are saved; with `model.lora_text_encoder`
a Stable Diffusion pipeline's text encoder gets adapters as well and trains with the UNet (one module), so the table
holds token ids and captions are encoded every step. DreamBooth's prior preservation is in dreambooth.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...data.propose import spread
from ...models.unet import build_text_unet, load_pretrained_unet
from ...sample.diffusion import denoise, make_sampler, seed_noise, to_uint8
from ...train.family import SingleModelFamily
from ..ddpm.train import DDPMFamily
from .dreambooth import pick_class_rows, prior_preservation_loss, with_class_images
from .latent import cached_latents, decode, downscale_factor, load_vae
from .lora import TextConditionedUNet, add_lora, add_text_lora, lora_only, save_lora, save_text_lora
from .model import TEXT_FILE
from .stable_diffusion import adopt_pipeline, instance_captions, pipeline_schedule
from .text import MINILM, TextEncoder, cached_embeddings


def local_or_id(name: str) -> str:
    """An existing local path made absolute (a checkpoint is used from other working directories), else as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


class T2IFamily(DDPMFamily):
    name = "t2i"

    def __init__(self, config, splits, accelerator, precision, **context):
        SingleModelFamily.__init__(self, config, splits, accelerator, precision, **context)
        self.pipeline = adopt_pipeline(config, self.log)  # a whole Stable Diffusion pipeline's parts, or None
        self.text_lora = config.model.lora_text_encoder
        if self.text_lora and self.pipeline is None:
            raise ValueError(f"model.lora_text_encoder: {config.model.pretrained} is not a whole Stable Diffusion pipeline "
                             "(model_index.json with text_encoder/ and tokenizer/), whose text encoder it would adapt")
        self.num_classes = 0
        captions = [c for part in (splits.train, splits.val, splits.test) for c in part.captions]
        captions = instance_captions(captions, config.dreambooth.instance_prompt)
        if not any(captions):
            raise ValueError(f"data.dataset: {config.data.dataset} has no captions (captions.json, metadata.jsonl, "
                             "or data.caption_column for a hub dataset)")
        self.class_images = getattr(splits, "class_images", None)  # prior preservation's, or None
        self.encoder = TextEncoder(config.text.encoder, config.text.max_length, accelerator.device)
        s = config.sampling
        class_prompt = [config.dreambooth.class_prompt] if self.class_images is not None else []
        texts = sorted({"", s.negative_prompt, *s.prompts, *captions, *class_prompt})
        if self.text_lora:  # the encoder trains: its states change every step, so only the token ids are kept
            self.text_rows, self.mask = self.encoder.tokenize(texts)
        else:
            self.text_rows, self.mask = cached_embeddings(self.encoder, texts, self.workspace / "cache" if self.workspace else None)
        self.text_index = {t: i for i, t in enumerate(texts)}  # the rows are on the CPU: a batch's go to the device
        self.log.info("text encoder %s: %d distinct captions, %d tokens of %d dimensions%s", config.text.encoder,
                      len(texts), config.text.max_length, self.encoder.dim, ", trained (LoRA)" if self.text_lora else "")
        if self.class_images is not None:
            self.log.info("prior preservation: %d class images (%s, '%s'), as many in each batch as instance images "
                          "(not counted in images per step), class loss weight %g",
                          len(self.class_images), config.dreambooth.class_data, config.dreambooth.class_prompt,
                          config.dreambooth.prior_loss_weight)
        self.vae = None
        if config.latent.vae:  # (in pixel space the config itself checks the UNet's levels)
            self.setup_latents(splits.train)
        self.set_objective()  # after the latents: EDM measures the standard deviation of what the UNet denoises

    @classmethod
    def load_data(cls, config, workspace=None, progress=None, should_stop=None):
        """The captioned data, and DreamBooth's class images (generated first when there are too few)."""
        splits = super().load_data(config, workspace, progress, should_stop)
        return with_class_images(splits, config, workspace, progress, should_stop)

    def data_std(self) -> float:
        if self.vae is None:
            return super().data_std()
        return float(self.latent_mean[spread(len(self.latent_mean), 4096)].float().std())

    def pretrained_schedule(self):
        return pipeline_schedule(self.pipeline, self.config, self.log)  # None: the form's

    def setup_latents(self, images) -> None:
        c = self.config
        self.vae = load_vae(c.latent.vae, self.accelerator.device, c.latent.slicing, c.latent.tiling)
        factor = downscale_factor(self.vae)
        if c.data.image_size % factor:
            raise ValueError(f"data.image_size {c.data.image_size}: latent.vae works on multiples of {factor} pixels")
        self.check_levels()  # the latent's levels, before the (long) encoding
        self.log.info("latent diffusion through %s: %d px images are %dx%dx%d latents; encoding %d training images "
                      "(cached)", c.latent.vae, c.data.image_size, *self.sample_shape, len(images))
        # The main process encodes and caches; the others then read its files instead of encoding as well.
        with self.accelerator.main_process_first():
            # Kept on the CPU (they can be gigabytes); a batch's rows go to the device.
            cache = self.workspace / "cache" if self.workspace else None
            self.latent_mean, self.latent_std = cached_latents(self.vae, images, cache, flips=c.data.random_flip)
            if self.class_images is not None:
                self.class_latents = cached_latents(self.vae, self.class_images, cache, flips=c.data.random_flip)

    def check_levels(self) -> None:
        m, (_, size, _) = self.config.model, self.sample_shape
        levels = [size // 2 ** i for i in range(len(m.channel_mults))]
        if not m.pretrained and (size % 2 ** (len(levels) - 1) or any(r not in levels for r in m.cross_attention_resolutions)):
            raise ValueError(f"model.cross_attention_resolutions {m.cross_attention_resolutions}: the UNet's levels are "
                             f"{', '.join(map(str, levels))} ({'latent elements' if self.vae else 'pixels'}), each a "
                             "whole half of the one before")

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """What the UNet denoises: an image, or with a VAE its latent."""
        d = self.config.data
        if self.vae is None:
            return d.channels, d.image_size, d.image_size
        size = d.image_size // downscale_factor(self.vae)
        return self.vae.config.latent_channels, size, size

    def build_model(self) -> torch.nn.Module:
        m = self.config.model
        channels, size, _ = self.sample_shape
        if not m.pretrained:
            return build_text_unet(m, size, channels, self.encoder.dim)
        unet = load_pretrained_unet(m.pretrained)
        if unet.config.cross_attention_dim != self.encoder.dim:
            raise ValueError(f"model.pretrained: the UNet attends to {unet.config.cross_attention_dim}-dimensional text states, "
                             f"text.encoder {self.config.text.encoder} gives {self.encoder.dim}")
        if unet.config.in_channels != channels:
            if self.vae is not None:
                raise ValueError(f"latent.vae: its latents have {channels} channels, the pretrained UNet takes {unet.config.in_channels}")
            hint = " (a latent UNet? set latent.vae to its autoencoder)" if unet.config.in_channels == 4 else ""
            raise ValueError(f"data.channels: the pretrained UNet takes {unet.config.in_channels} channels, not {channels}{hint}")
        unet.register_to_config(sample_size=size)  # what it now trains on, and what its saved config says it makes
        if m.lora_rank:
            self.log.info("training LoRA adapters of rank %d on the UNet%s of %s", m.lora_rank,
                          " and the text encoder" if self.text_lora else "", m.pretrained)
            unet = add_lora(unet, m.lora_rank, m.lora_alpha)
            if self.text_lora:
                return TextConditionedUNet(unet, add_text_lora(self.encoder.model, m.lora_rank, m.lora_alpha))
            return unet
        self.log.info("fine-tuning the UNet of %s", m.pretrained)
        return unet

    def text_ids(self, texts: list[str]) -> torch.Tensor:
        """Rows of the embedding table; texts not in it yet (new prompts) are encoded and added."""
        new = sorted({t for t in texts if t not in self.text_index})
        if new:
            rows, mask = (self.encoder.tokenize if self.text_lora else self.encoder.encode)(new)
            self.text_index.update({t: len(self.text_index) + i for i, t in enumerate(new)})
            self.text_rows = torch.cat([self.text_rows, rows.to(self.text_rows.device)])
            self.mask = torch.cat([self.mask, mask.to(self.mask.device)])
        return torch.tensor([self.text_index[t] for t in texts], device=self.accelerator.device)

    def prepare_batch(self, batch: dict) -> dict:
        text = self.text_ids(instance_captions(batch["captions"], self.config.dreambooth.instance_prompt))
        latents = (self.latent_mean, self.latent_std) if self.vae is not None else None
        prepared = {**batch, "images": self.training_images(batch, latents), "text": text}
        if self.class_images is None:
            return prepared
        # Prior preservation: as many class images, with the class prompt, after the instance images.
        chosen = self.class_images.batch(pick_class_rows(len(self.class_images), len(text)))
        images = self.training_images(chosen, self.class_latents if self.vae is not None else None)
        return {**prepared, "images": torch.cat([prepared["images"], images]), "instances": len(text),
                "text": torch.cat([text, self.text_ids(chosen["captions"])])}

    def training_images(self, batch: dict, latents: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """What the UNet learns to denoise: the images in [-1, 1], or with a VAE a fresh draw from each image's cached
        latent distribution (of the image or, half the time, its mirror)."""
        if latents is None:
            return super().prepare_batch(batch)["images"]
        index, device = batch["index"], self.accelerator.device
        view = (torch.rand(len(index)) < 0.5).long() if latents[0].shape[1] == 2 else 0
        mean, std = latents[0][index, view].to(device), latents[1][index, view].to(device)
        return mean + std * torch.randn_like(mean)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ids = batch["text"]
        drop = torch.rand(len(ids), device=ids.device) < self.config.text.caption_dropout
        ids = torch.where(drop, torch.full_like(ids, self.text_index[""]), ids)
        if "instances" not in batch:
            return self.denoising_loss(batch["images"], **self.conditioning(ids))
        weighted, mse = self.image_losses(batch["images"], **self.conditioning(ids))
        loss, logs = prior_preservation_loss(weighted, batch["instances"], self.config.dreambooth.prior_loss_weight)
        return loss, {**logs, "mse": mse.mean().item()}

    def conditioning(self, ids: torch.Tensor) -> dict:
        """What the UNet is called with: token states, or with a trained text encoder token ids (TextConditionedUNet
        encodes them)."""
        rows, device = ids.cpu(), ids.device
        values, mask = self.text_rows[rows].to(device), self.mask[rows].to(device)
        if self.text_lora:
            return {"input_ids": values, "attention_mask": mask}
        return {"encoder_hidden_states": values, "encoder_attention_mask": mask}

    @torch.no_grad()
    def generate(self, prompts: list[str], seed: int, sampler: str, steps: int, guidance: float,
                 negative_prompt: str = "") -> np.ndarray:
        """Image i from `prompts[i]` and the noise of seed `seed + i`, with the EMA weights."""
        noise = seed_noise(list(range(seed, seed + len(prompts))), self.sample_shape)
        cond = self.conditioning(self.text_ids(prompts))
        uncond = self.conditioning(self.text_ids([negative_prompt] * len(prompts)))
        unet = self.ema.model
        if self.text_lora:  # the prompts' states from the (EMA) trained text encoder, once rather than every step
            unet, cond, uncond = unet.unet, unet.text_states(**cond), unet.text_states(**uncond)
        images = denoise(unet, make_sampler(sampler, self.noise_scheduler), noise, steps, cond, uncond,
                         guidance, seed=seed)
        return to_uint8(images if self.vae is None else decode(self.vae, images))

    def sample_images(self, num: int, seed: int, sampler: str | None = None, steps: int | None = None) -> np.ndarray:
        """The test prompts in turn (image i: prompt i mod P), fixed seeds."""
        s, t = self.config.sampling, self.config.training
        prompts = [s.prompts[i % len(s.prompts)] for i in range(num)]
        return self.generate(prompts, seed, sampler or t.sample_sampler, steps or t.sample_steps, s.guidance, s.negative_prompt)

    def grid_columns(self, num: int) -> int | None:
        return min(len(self.config.sampling.prompts), num)  # one prompt per column

    def grid_captions(self, num: int, seed: int) -> list[str]:
        prompts = self.config.sampling.prompts
        return [prompts[i % len(prompts)] for i in range(num)]

    def save_model(self, folder: Path) -> None:
        folder, m, t = Path(folder), self.config.model, self.config.text
        if m.lora_rank:  # the adapters and the base's name; the base stays where it is
            self.noise_scheduler.save_pretrained(folder / "scheduler")
            model = self.ema.model
            save_lora(model.unet if self.text_lora else model, folder, local_or_id(m.pretrained), m.lora_rank, m.lora_alpha)
            if self.text_lora:
                save_text_lora(model.text_encoder, folder, m.lora_rank, m.lora_alpha)
        else:
            super().save_model(folder)  # unet/ and scheduler/, as diffusers writes them
        if self.vae is not None:
            self.vae.save_pretrained(folder / "vae")
        encoder = t.encoder if t.encoder == MINILM else local_or_id(t.encoder)
        text = {"encoder": encoder, "max_length": t.max_length, "dim": self.encoder.dim}
        (folder / TEXT_FILE).write_text(json.dumps(text, indent=2))

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.config.model.lora_rank:  # the base weights never change: resuming rebuilds them from the base
            state["model"], state["ema"]["weights"] = lora_only(state["model"]), lora_only(state["ema"]["weights"])
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.config.model.lora_rank:
            full = self.raw_model.state_dict()
            state = {**state, "model": {**full, **state["model"]},
                     "ema": {**state["ema"], "weights": {**self.ema.model.state_dict(), **state["ema"]["weights"]}}}
        super().load_state_dict(state)

    def meta(self) -> dict:
        d, m = self.config.data, self.config.model
        return {"image_size": d.image_size, "channels": d.channels, "num_classes": 0, "dataset": d.dataset,
                "text_encoder": self.config.text.encoder, "prompts": list(self.config.sampling.prompts),
                "vae": self.config.latent.vae, "lora_rank": m.lora_rank, "lora_text_encoder": self.text_lora,
                "pretrained": m.pretrained, "pipeline": self.pipeline is not None,
                "dreambooth": bool(self.config.dreambooth.instance_prompt), "objective": self.config.diffusion.objective}

    def evaluator(self, run, logger):
        """Alignment on shapes (the checker), and the CLIP score wherever a CLIP model can be had."""
        from ...metrics.clip_score import resolve
        from .alignment import AlignmentEvaluator

        e, shapes = self.config.evaluation, self.config.data.dataset == "shapes"
        if not e.every_epochs:
            return None
        clip_model, local_only = resolve(e.clip_model)
        if not (shapes or clip_model):
            self.log.info("no prompt-alignment evaluation: no CLIP model (evaluation.clip_model) for data other than shapes")
            return None
        prompts = sorted(set(self.splits.val.captions) - {""}) or list(self.config.sampling.prompts)
        return AlignmentEvaluator(self.config, run, logger, prompts, clip_model, local_only)
