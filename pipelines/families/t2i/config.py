"""The text-to-image family's config: captioned data, the frozen text encoder, the cross-attention UNet.

It also reads the shape of the notes the studio grew from (`configs/train_config.yaml`): `data.dataset_name`
(synthetic, custom, coco or a hub id), `data.dataset_path`, `data.train_split` and `training.num_epochs`
become the studio's own fields when the config is read, so such a file works as written.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ...config import (
    SAMPLER_NAMES,
    DataConfig,
    DiffusionConfig,
    check_samplers,
    EarlyStoppingConfig,
    RunConfig,
    Section,
    TrainingConfig,
)

COCO = "yerevann/coco-karpathy"  # COCO captions on the hub (image URLs need the network; a local copy works offline)
DEFAULT_PROMPTS = ["a red circle on a blue background", "a green square on a white background",  # the shapes template
                   "a yellow triangle on a black background", "a purple circle on a orange background",
                   "a white square on a red background", "a orange triangle on a green background",
                   "a blue circle on a yellow background", "a black square on a purple background"]


class T2IDataConfig(DataConfig):
    dataset: str = Field("shapes", description="'shapes' (captioned synthetic shapes), a folder with captions.json or metadata.jsonl, or a Hugging Face dataset id.")
    image_size: int = Field(32, ge=8, le=1024, description="Training resolution in pixels (square).")
    caption_column: str | None = Field("text", description="Hugging Face datasets: the caption column.")
    label_column: str | None = Field(None, description="Hugging Face datasets: a class label column (unused by text-to-image).")


class TextConfig(Section):
    encoder: str = Field("minilm", description="Frozen text encoder: 'minilm' (all-MiniLM-L6-v2, offline), a hub id or a folder (CLIP text encoders work too).")
    max_length: int = Field(16, ge=4, le=512, description="Tokens per caption (longer captions are cut).")
    caption_dropout: float = Field(0.1, ge=0.0, le=1.0, description="Share of captions replaced by the empty one in training, for classifier-free guidance.")


class T2IModelConfig(Section):
    base_channels: int = Field(32, ge=8, le=1024, description="Channels of the first UNet level.")
    channel_mults: list[int] = Field([1, 2, 2], min_length=1, max_length=6, description="Channel multiplier per UNet level; each level after the first halves the resolution.")
    layers_per_block: int = Field(1, ge=1, le=4, description="Residual blocks per UNet level.")
    cross_attention_resolutions: list[int] = Field([16, 8], description="Feature-map sizes whose blocks attend to the caption (pixels; latent elements with latent.vae).")
    attention_heads: int = Field(4, ge=1, le=64, description="Heads of each attention layer.")
    pretrained: str | None = Field(None, description="Fine-tune this diffusers UNet2DConditionModel (a folder, a pipeline folder with unet/, or a hub id) instead of a new one; a whole Stable Diffusion pipeline (folder or hub id) brings its text encoder, VAE and noise schedule too.")
    lora_rank: int = Field(0, ge=0, le=512, description="Train LoRA adapters of this rank on the attention layers of model.pretrained instead of all its weights (0: off).")
    lora_alpha: float | None = Field(None, gt=0, le=1e6, description="LoRA scaling numerator (the adapters are scaled by alpha / rank; default: the rank).")
    lora_text_encoder: bool = Field(False, description="With model.lora_rank and a whole Stable Diffusion pipeline as model.pretrained: train LoRA adapters of the same rank on its CLIP text encoder's attention (q, k, v, out projections) too, instead of keeping it frozen (captions are then encoded every step).")


class LatentConfig(Section):
    vae: str | None = Field(None, description="Latent diffusion: the diffusers AutoencoderKL (a hub id, a folder, or a pipeline folder with vae/) whose latents the UNet denoises; empty: pixel space.")
    slicing: bool = Field(True, description="Encode and decode one image of a batch at a time (less memory, same images).")
    tiling: bool = Field(False, description="Encode and decode in overlapping tiles (far less memory from about 512 px).")


class SamplingConfig(Section):
    guidance: float = Field(3.0, ge=1.0, le=30.0, description="Classifier-free guidance of sample grids and evaluations.")
    prompts: list[str] = Field(DEFAULT_PROMPTS, min_length=1, description="Fixed prompts of the test images written during training.")
    negative_prompt: str = Field("", description="What the guidance steers away from (empty: the unconditional model).")


class DreamBoothConfig(Section):
    instance_prompt: str | None = Field(None, description="DreamBooth: caption every training image with this prompt (e.g. 'a photo of sks dog'); the data then needs no captions. Empty: the data's captions.")
    class_prompt: str | None = Field(None, description="Prior preservation: the caption of the class images (e.g. 'a photo of a dog'), with dreambooth.class_data.")
    class_data: str | None = Field(None, description="Prior preservation: a folder of class images; those missing up to num_class_images are generated into it (PNG) from class_prompt with model.pretrained's pipeline, once, before training. Empty: off.")
    num_class_images: int = Field(100, ge=1, le=100_000, description="Class images used (and generated when the folder holds fewer).")
    prior_loss_weight: float = Field(1.0, ge=0.0, le=1000.0, description="Loss = instance loss + this x class-image loss.")

    @model_validator(mode="after")
    def _check_prior_preservation(self) -> DreamBoothConfig:
        if self.class_data or self.class_prompt:
            field = "class_prompt" if self.class_prompt else "class_data"
            if not self.instance_prompt:
                raise ValueError(f"{field}: prior preservation (class images) needs dreambooth.instance_prompt, "
                                 "the prompt of your subject (e.g. 'a photo of sks dog')")
            if not self.class_data:
                raise ValueError("class_data: a folder of class images (or one to generate them into) is needed "
                                 "with dreambooth.class_prompt")
            if not self.class_prompt:
                raise ValueError("class_prompt: the class images' caption (e.g. 'a photo of a dog') is needed "
                                 "with dreambooth.class_data")
        else:  # set away from the default without class images, it would be silently ignored
            for name in ("num_class_images", "prior_loss_weight"):
                if getattr(self, name) != DreamBoothConfig.model_fields[name].default:
                    raise ValueError(f"{name}: only used with prior preservation (dreambooth.class_data "
                                     "and dreambooth.class_prompt)")
        return self


class T2ITrainingSection(TrainingConfig):
    epochs: int = Field(200, ge=1, le=100_000, description="Passes over the training data.")
    checkpoint_every_epochs: int = Field(10, ge=1, description="Write checkpoint-<step>/ every N epochs.")
    sample_every_epochs: int = Field(50, ge=1, description="Write test images from sampling.prompts every N epochs.")
    num_sample_images: int = Field(16, ge=1, le=256, description="Test images per grid (the prompts in turn, fixed seeds).")


class T2IEvaluationConfig(Section):
    every_epochs: int = Field(10, ge=0, description="Prompt alignment every N epochs (on shapes: the colour/shape checker, seen and held-out combinations; with a CLIP model: CLIP score; 0: off).")
    num_samples: int = Field(96, ge=8, le=10_000, description="Images per evaluation (on shapes, for seen and for held-out combinations each; else for the held-out captions).")
    split: Literal["train", "val", "test"] = Field("val", description="Unused by the alignment checker; kept for the shared config checks.")
    sampler: SAMPLER_NAMES = Field("dpm++", description="Sampler of evaluation images.")
    steps: int = Field(20, ge=1, le=1000, description="Sampler steps of evaluation images.")
    clip_model: str | None = Field("auto", description="CLIP score of evaluation images with their prompts from this CLIP model (hub id or folder); 'auto': openai/clip-vit-base-patch32 if it is in the local Hugging Face cache (never downloaded); empty: off.")


class T2IEarlyStopping(EarlyStoppingConfig):
    loss_plateau: int = Field(20, ge=0, description="Epochs without a better epoch loss before the learning rate is cut by lr_factor (0: off).")


class T2IConfig(RunConfig):
    family: Literal["t2i"] = Field("t2i", description="Model family.")
    data: T2IDataConfig = Field(default_factory=T2IDataConfig, description="Captioned images.")
    training: T2ITrainingSection = Field(default_factory=T2ITrainingSection, description="The optimizer, schedule, checkpoints and test images.")
    text: TextConfig = Field(default_factory=TextConfig, description="The frozen text encoder and caption dropout.")
    model: T2IModelConfig = Field(default_factory=T2IModelConfig, description="The cross-attention UNet.")
    latent: LatentConfig = Field(default_factory=LatentConfig, description="Latent diffusion through a frozen autoencoder (off: pixel space).")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig, description="Noise schedule, prediction target and loss weighting.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Guidance and prompts of the test images.")
    dreambooth: DreamBoothConfig = Field(default_factory=DreamBoothConfig, description="One subject from a few photos: one prompt for every training image.")
    evaluation: T2IEvaluationConfig = Field(default_factory=T2IEvaluationConfig, description="Prompt alignment during training.")
    early_stopping: T2IEarlyStopping = Field(default_factory=T2IEarlyStopping, description="Learning-rate cuts on loss plateaus, and the stop rule.")

    @model_validator(mode="before")
    @classmethod
    def _seed_shape(cls, raw: Any) -> Any:
        """Read the seed notes' config keys as the studio's."""
        if not isinstance(raw, dict):
            return raw
        raw = {**raw}
        data, training = dict(raw.get("data") or {}), dict(raw.get("training") or {})
        name, path = data.pop("dataset_name", None), data.pop("dataset_path", None)
        if name == "custom" and not path:
            raise ValueError("data.dataset_path: dataset_name custom needs the folder of captioned images")
        if name == "synthetic" and "num_samples" in data:  # the notes' num_samples is how many shapes to draw
            data["synthetic_count"] = data.pop("num_samples")
        if name is not None:
            data["dataset"] = {"synthetic": "shapes", "custom": path, "coco": COCO}.get(name, name)
            if name == "coco":
                data.setdefault("image_column", "url")
                data.setdefault("caption_column", "sentences")
        if "train_split" in data:  # the share of images for training; the rest is held out
            split = data.pop("train_split")
            if not isinstance(split, (int, float)) or not 0.5 < split <= 1:
                raise ValueError(f"data.train_split: the share of images used for training, above 0.5 and at most 1 (got {split!r})")
            rest = round(1.0 - float(split), 6)
            data.setdefault("val_fraction", rest / 2)
            data.setdefault("test_fraction", rest / 2)
        if "num_epochs" in training:
            training["epochs"] = training.pop("num_epochs")
        if data:
            raw["data"] = data
        if training:
            raw["training"] = training
        return raw

    @model_validator(mode="after")
    def _check_geometry(self) -> T2IConfig:
        size, levels = self.data.image_size, len(self.model.channel_mults)
        if size % 2 ** (levels - 1):
            raise ValueError(f"data.image_size {size} must be divisible by {2 ** (levels - 1)} for {levels} UNet levels (model.channel_mults)")
        if self.model.base_channels % 8:
            raise ValueError("model.base_channels must be a multiple of 8")
        if self.model.lora_rank and not self.model.pretrained:
            raise ValueError("model.lora_rank: LoRA adapts a pretrained UNet; set model.pretrained (or lora_rank: 0)")
        if self.model.lora_text_encoder and not self.model.lora_rank:
            raise ValueError("model.lora_text_encoder: needs model.lora_rank above 0 (the adapters' rank) and a whole "
                             "Stable Diffusion pipeline as model.pretrained")
        sizes = [size // 2 ** i for i in range(levels)]
        if not self.latent.vae and not self.model.pretrained and any(r not in sizes for r in self.model.cross_attention_resolutions):
            raise ValueError(f"model.cross_attention_resolutions {self.model.cross_attention_resolutions}: the UNet's levels are "
                             f"{', '.join(map(str, sizes))} pixels at data.image_size {size}")
        combos = {tuple(h.split()) for h in self.data.holdout}
        if self.data.dataset == "shapes" and len(combos) >= 24:
            raise ValueError("data.holdout: every colour-shape combination is held out; nothing would be drawn")
        if self.latent.vae and self.data.channels != 3:
            raise ValueError("data.channels: latent diffusion (latent.vae) works on RGB images; set data.channels: 3")
        if self.data.dataset in (None, ""):
            raise ValueError("data.dataset: empty (with dataset_name custom, give dataset_path)")
        check_samplers(self)
        return self

