"""diffusers UNet2DModel built from the studio's ModelConfig."""
from __future__ import annotations

from diffusers import UNet2DConditionModel, UNet2DModel

from ..config import ModelConfig, norm_groups
from .loading import load_component


def build_unet(model: ModelConfig, image_size: int, channels: int, num_classes: int = 0) -> UNet2DModel:
    """Level i works at image_size / 2**i pixels; it gets attention when that size is listed.

    A class-conditional UNet has one extra class embedding (index num_classes): the "no label" used by
    label dropout and classifier-free guidance.
    """
    block_channels = tuple(model.base_channels * m for m in model.channel_mults)
    attention = [image_size // 2 ** i in model.attention_resolutions for i in range(len(block_channels))]
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=block_channels,
        layers_per_block=model.layers_per_block,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        dropout=model.dropout,
        norm_num_groups=norm_groups(model.base_channels),
        attention_head_dim=min(block_channels[-1], 64) // 2 if block_channels[-1] < 64 else 32,
        num_class_embeds=num_classes + 1 if model.class_conditional and num_classes else None,
    )


def build_text_unet(model, image_size: int, channels: int, cross_attention_dim: int) -> UNet2DConditionModel:
    """A diffusers UNet2DConditionModel whose levels at `model.cross_attention_resolutions` (and its middle)
    attend to the caption's token states. `image_size` and `channels` are the UNet's input: a latent's with a VAE."""
    block_channels = tuple(model.base_channels * m for m in model.channel_mults)
    attention = [image_size // 2 ** i in model.cross_attention_resolutions for i in range(len(block_channels))]
    return UNet2DConditionModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=block_channels,
        layers_per_block=model.layers_per_block,
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        norm_num_groups=norm_groups(model.base_channels),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=model.attention_heads,  # diffusers' name for the number of heads here
    )


def load_pretrained_unet(name: str) -> UNet2DConditionModel:
    """A UNet2DConditionModel from a folder (or a pipeline folder with unet/) or a hub id (or a hub pipeline's unet/)."""
    return load_component(UNet2DConditionModel, name, "unet", "model.pretrained")
