"""The super-resolution family's config: HR images, how LR inputs are made, the model, and both stages."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ...config import (
    DataConfig,
    EarlyStoppingConfig,
    RunConfig,
    Section,
    TrainingConfig,
)

SR_SIZES = Literal["ultra_lite", "lite", "standard", "swinir_lite", "swinir_classical", "swinir_real"]
SWINIR_WINDOW = 8  # the official layouts' window: LR patches are whole windows


class SRDataConfig(DataConfig):
    """The data section with super-resolution's meaning of image_size and held-out images."""
    dataset: str = Field("photos", description="HR images: 'photos' (scikit-image's photos, whole), an image folder, or a Hugging Face dataset id.")
    image_size: int = Field(256, ge=32, le=2048, description="HR images are cropped to a centre square and resized to this size (pixels); keep it at or below your images' size.")
    channels: Literal[3] = Field(3, description="Super-resolution models work in RGB (grayscale images are converted).")
    val_fraction: float = Field(0.125, ge=0.0, lt=0.5, description="Fraction of the images held out for validation (PSNR/SSIM during training).")
    test_fraction: float = Field(0.125, ge=0.0, lt=0.5, description="Fraction of the images held out for the final test.")


class SRModelConfig(Section):
    size: SR_SIZES = Field("lite", description="ultra_lite / lite: SRVGGNetCompact (lite = realesr-general-x4v3's layout); standard: RRDBNet (RealESRGAN_x4plus's); swinir_lite / swinir_classical / swinir_real: SwinIR in the official lightweight (S), classical (M) and real-world (M, x4) layouts.")
    scale: Literal[2, 3, 4] = Field(4, description="Upscaling factor (RRDBNet: 2 or 4; swinir_real: 4).")
    embed_dim: int | None = Field(None, ge=6, le=1024, multiple_of=6, description="SwinIR sizes: the transformer's width, a multiple of its 6 heads (empty: the official layout's, 60 or 180).")
    depths: list[int] | None = Field(None, min_length=1, max_length=16, description="SwinIR sizes: transformer blocks in each residual group, e.g. [2, 2] (empty: the official layout's, [6, 6, 6, 6] or [6, 6, 6, 6, 6, 6]).")


class SRSettings(Section):
    source: Literal["on_the_fly", "pairs"] = Field("on_the_fly", description="LR inputs made while training, or read from pairs prepared by `python -m pipelines degrade`.")
    pairs_dir: str | None = Field(None, description="source pairs: the --output folder of `python -m pipelines degrade` (its HR images are data.dataset).")
    degradation: Literal["bicubic", "realesrgan"] = Field("bicubic", description="source on_the_fly: plain bicubic downscaling, or Real-ESRGAN's two-stage blur/resize/noise/JPEG.")
    patch_size: int = Field(96, ge=16, le=1024, description="HR patch size (pixels) cut at random from the training images.")
    patches_per_epoch: int = Field(512, ge=1, le=1_000_000, description="Random patches that make one epoch (images are reused).")
    augment: bool = Field(True, description="Random flips and 90-degree rotations of the patches.")
    init_weights: str | None = Field(None, description="Start from these weights: a run folder, a model folder, or an official Real-ESRGAN .pth of the same layout.")
    gan_start_epoch: int | None = Field(None, ge=1, description="Stage 2 after this many epochs of L1: L1 + perceptual + GAN loss with a U-Net discriminator (empty: L1 only).")
    l1_weight: float = Field(1.0, ge=0, le=1e6, description="Weight of the L1 loss.")
    perceptual_weight: float = Field(1.0, ge=0, le=1e6, description="Stage 2: weight of the VGG19 perceptual loss (skipped, with a note in the log, when no VGG19 weights are on the machine).")
    gan_weight: float = Field(0.1, ge=0, le=1e6, description="Stage 2: weight of the adversarial loss.")
    d_learning_rate: float = Field(1e-4, gt=0, le=1.0, description="Stage 2: discriminator learning rate.")
    d_channels: int = Field(64, ge=8, le=512, description="Stage 2: discriminator width.")
    vgg_weights: str | None = Field(None, description="VGG19 weights file (torchvision's vgg19-dcbb9e9d.pth); empty: $STUDIO_VGG_WEIGHTS, <workspace>/weights/, torch's hub cache.")


class SREvaluationConfig(Section):
    every_epochs: int = Field(5, ge=0, description="PSNR/SSIM of the EMA model on held-out images, and the bicubic baseline, every N epochs (0: off).")
    split: Literal["train", "val", "test"] = Field("val", description="Images scored during training.")
    num_images: int = Field(8, ge=1, le=1000, description="Score at most this many images (whole images, so keep it small on a CPU).")
    final: bool = Field(True, description="At the end, score best/ on final_split.")
    final_split: Literal["train", "val", "test"] = Field("test", description="Held-out images of the final evaluation.")


class SRTrainingSection(TrainingConfig):
    """The training section with super-resolution defaults (Real-ESRGAN's: Adam (0.9, 0.99), no weight decay)."""
    epochs: int = Field(100, ge=1, le=100_000, description="Epochs of sr.patches_per_epoch random patches each.")
    batch_size: int = Field(16, ge=1, le=4096, description="Patches per step on each device (before accumulation).")
    learning_rate: float = Field(2e-4, gt=0, le=1.0, description="Peak learning rate of the SR model.")
    weight_decay: float = Field(0.0, ge=0, le=1.0, description="AdamW weight decay.")
    adam_beta2: float = Field(0.99, ge=0, lt=1, description="Adam beta2.")
    warmup_steps: int = Field(50, ge=0, description="Optimizer steps of linear learning-rate warm-up.")
    grad_clip: float | None = Field(None, gt=0, le=1e6, description="Clip the gradient norm to this value (empty: no clipping).")
    sample_every_epochs: int = Field(5, ge=1, description="Write the validation strip (LR | bicubic | SR | HR) every N epochs.")
    num_sample_images: int = Field(4, ge=1, le=32, description="Held-out images in each validation strip.")


class SRConfig(RunConfig):
    family: Literal["sr"] = Field("sr", description="Model family.")
    data: SRDataConfig = Field(default_factory=SRDataConfig, description="The high-resolution images.")
    training: SRTrainingSection = Field(default_factory=SRTrainingSection, description="The optimizer, schedule, checkpoints and validation strips.")
    evaluation: SREvaluationConfig = Field(default_factory=SREvaluationConfig, description="PSNR/SSIM on held-out images.")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig, description="Learning-rate cuts and stops on PSNR plateaus.")
    model: SRModelConfig = Field(default_factory=SRModelConfig, description="The super-resolution network.")
    sr: SRSettings = Field(default_factory=SRSettings, description="LR inputs, patches, and the losses of both stages.")

    @model_validator(mode="after")
    def _check_sr(self) -> SRConfig:
        s, scale = self.sr, self.model.scale
        if self.model.size == "standard" and scale == 3:
            raise ValueError("model.scale: RRDBNet (size standard) upscales x2 or x4, not x3")
        m = self.model
        for name in ("embed_dim", "depths"):
            if getattr(m, name) is not None and not m.size.startswith("swinir"):
                raise ValueError(f"model.{name}: sets the shape of a SwinIR size; model.size {m.size} has none")
        if m.depths and not all(1 <= d <= 32 for d in m.depths):
            raise ValueError(f"model.depths: each group holds 1 to 32 blocks, got {m.depths}")
        if self.model.size == "swinir_real" and scale != 4:
            raise ValueError(f"model.scale: SwinIR's real-world layout (swinir_real) upscales x4, not x{scale}")
        if s.source == "pairs" and not s.pairs_dir:
            raise ValueError("sr.pairs_dir: source pairs needs the folder written by `python -m pipelines degrade`")
        # RRDBNet x2 folds 2x2 LR pixels into channels: its LR sizes must be even; SwinIR's are whole windows.
        swinir = self.model.size.startswith("swinir")
        fold = SWINIR_WINDOW if swinir else 2 if self.model.size == "standard" and scale == 2 else 1
        multiple = math.lcm(scale * fold, 8) if s.gan_start_epoch is not None else scale * fold
        if s.patch_size % multiple:
            why = " (and of 8 for the stage-2 discriminator)" if s.gan_start_epoch is not None else ""
            why += " (RRDBNet x2 needs even LR patches)" if fold == 2 else ""
            why += f" times SwinIR's {SWINIR_WINDOW}-pixel window (its LR patches are whole windows)" if swinir else ""
            raise ValueError(f"sr.patch_size {s.patch_size} must be a multiple of {multiple}: of the scale {scale}{why}")
        if s.patch_size > self.data.image_size:
            raise ValueError(f"sr.patch_size {s.patch_size} is larger than the HR images (data.image_size {self.data.image_size})")
        if s.gan_start_epoch is not None and s.gan_start_epoch >= self.training.epochs:
            raise ValueError(f"sr.gan_start_epoch {s.gan_start_epoch} is not before the last epoch (training.epochs {self.training.epochs})")
        if self.early_stopping.loss_below is not None and s.gan_start_epoch is not None:
            raise ValueError("early_stopping.loss_below: a GAN stage's loss does not rank models; use patience")
        return self

