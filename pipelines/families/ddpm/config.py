"""The DDPM family's config: a UNet, a noise schedule and the shared sections."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import (
    DiffusionConfig,
    ModelConfig,
    RunConfig,
    check_samplers,
    norm_groups,
)


class DDPMConfig(RunConfig):
    family: Literal["ddpm"] = Field("ddpm", description="Model family.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The UNet.")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig, description="Noise schedule, prediction target and loss weighting.")

    @model_validator(mode="after")
    def _check_geometry(self) -> DDPMConfig:
        size, levels = self.data.image_size, len(self.model.channel_mults)
        if self.model.lora_rank and not self.model.pretrained:
            raise ValueError("model.lora_rank: LoRA adapts a pretrained UNet; set model.pretrained (or lora_rank: 0)")
        if size % 2 ** (levels - 1) and not self.model.pretrained:  # (a pretrained UNet's own levels are checked when it loads)
            raise ValueError(f"data.image_size {size} must be divisible by {2 ** (levels - 1)} for {levels} UNet levels (model.channel_mults)")
        groups = norm_groups(self.model.base_channels)
        if self.model.base_channels % groups:
            raise ValueError("model.base_channels must be a multiple of 4")
        check_samplers(self)
        return self
