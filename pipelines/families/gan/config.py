"""The GAN family's config: generator and discriminator widths, losses, step ratio, augmentation, collapse watch."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import RunConfig, Section, TrainingConfig


class GANModelConfig(Section):
    z_dim: int = Field(128, ge=8, le=1024, description="Length of the generator's noise vector z.")
    g_channels: int = Field(64, ge=8, le=1024, description="Generator width at full resolution (x2 per halving, up to x8).")
    d_channels: int = Field(64, ge=8, le=1024, description="Discriminator width at full resolution (x2 per halving, up to x8).")
    attention_resolutions: list[int] = Field([8], description="Feature-map sizes (pixels) with self-attention in G and D: 8 up to half the image size.")
    class_conditional: bool = Field(True, description="Use the dataset's labels if it has any (conditional batch norm in G, projection in D).")


class GANTrainingConfig(Section):
    loss: Literal["hinge", "nonsaturating"] = Field("hinge", description="Adversarial loss.")
    real_label: float = Field(0.95, gt=0.5, le=1.0, description="Non-saturating loss: the target for real images (one-sided label smoothing).")
    g_steps: int = Field(1, ge=1, le=10, description="Generator steps per discriminator step.")
    d_learning_rate: float = Field(4e-4, gt=0, le=1.0, description="Discriminator learning rate (the generator's is training.learning_rate).")
    warmup_epochs: int = Field(2, ge=0, description="Epochs of linear learning-rate warm-up for both networks.")
    augment: bool = Field(False, description="Differentiable augmentation of real and generated images for D (for small datasets).")
    augment_policy: list[Literal["color", "translation", "cutout"]] = Field(["color", "translation", "cutout"], description="Which augmentations.")
    collapse_ratio: float = Field(0.5, ge=0, lt=1, description="Warn when sample variety falls below this share of the real images' and of its own peak (0: never).")
    collapse_fd_jump: float = Field(2.0, ge=0, le=1e6, description="Warn when FID/FD rises above this multiple of its best (0: never).")
    collapse_rollback: bool = Field(False, description="On a collapse warning, roll back to best/ and halve D's learning rate.")


class GANTrainingSection(TrainingConfig):
    """The training section with a GAN's defaults (SAGAN: Adam (0, 0.9), constant learning rate, no clipping)."""
    learning_rate: float = Field(1e-4, gt=0, le=1.0, description="Generator learning rate (the discriminator's is gan.d_learning_rate).")
    adam_beta1: float = Field(0.0, ge=0, lt=1, description="Adam beta1 of both networks.")
    adam_beta2: float = Field(0.9, ge=0, lt=1, description="Adam beta2 of both networks.")
    weight_decay: float = Field(1e-5, ge=0, le=1.0, description="Weight decay of both networks.")
    warmup_steps: int = Field(0, ge=0, le=0, description="Unused: a GAN warms up over gan.warmup_epochs.")
    lr_schedule: Literal["cosine", "constant"] = Field("constant", description="Learning-rate schedule after warm-up.")
    grad_clip: float | None = Field(None, gt=0, le=1e6, description="Clip gradient norms to this value (empty: no clipping; spectral norm keeps D in check).")
    ema_decay: float = Field(0.9999, ge=0, lt=1, description="Largest EMA decay of the generator (reached after warm-up); 0 turns EMA off.")


class GANConfig(RunConfig):
    family: Literal["gan"] = Field("gan", description="Model family.")
    training: GANTrainingSection = Field(default_factory=GANTrainingSection, description="The optimizers, schedule, checkpoints and samples.")
    model: GANModelConfig = Field(default_factory=GANModelConfig, description="Generator and discriminator.")
    gan: GANTrainingConfig = Field(default_factory=GANTrainingConfig, description="Losses, step ratio, augmentation, collapse watch.")

    @model_validator(mode="after")
    def _check_gan(self) -> GANConfig:
        size = self.data.image_size
        if size not in (16, 32, 64, 128):
            raise ValueError(f"data.image_size must be 16, 32, 64 or 128 for a GAN (got {size})")
        both = [8 * 2 ** i for i in range(size.bit_length()) if 8 * 2 ** i <= size // 2]  # sizes G and D share
        if any(r not in both for r in self.model.attention_resolutions):
            raise ValueError(f"model.attention_resolutions {self.model.attention_resolutions}: at {size} px both networks "
                             f"have feature maps of {', '.join(map(str, both))} pixels")
        if self.early_stopping.loss_below is not None:
            raise ValueError("early_stopping.loss_below does not apply to GANs (their losses do not rank models); use patience")
        return self
