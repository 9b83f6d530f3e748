"""Run configuration: pydantic models, YAML load/save, and error messages that name the field.

A run config has a `family` and the sections that family needs. Every field has a default and a
one-line description (the studio turns these into form fields and tooltips). Unknown keys are refused.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class _Yaml12Loader(yaml.SafeLoader):
    """YAML where only true/false are booleans: `mixed_precision: no` and `compile: off` stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Yaml12Loader)


class ConfigError(ValueError):
    """A config was refused. `errors` holds (field path, message) pairs; str() lists them all."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("\n".join(f"{field}: {msg}" for field, msg in errors))


# Bounds that keep absurd values out before anything is written: seeds are numpy's (0 .. 2**32 - 1), a budget is
# at most a week, and no float is infinite or NaN (allow_inf_nan=False on every section).
MAX_SEED = 2**32 - 1
MAX_MINUTES = 7 * 24 * 60
MAX_STEPS = 10**9


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    dataset: str = Field("digits", description="Built-in name (digits, faces, photos, shapes), an image folder path, or a Hugging Face dataset id.")
    image_size: int = Field(16, ge=8, le=1024, description="Training resolution in pixels (square).")
    channels: Literal[1, 3] = Field(3, description="1 for grayscale, 3 for RGB; images are converted on load.")
    resize: Literal["bicubic", "lanczos", "bilinear", "nearest"] = Field("bicubic", description="Resampling filter used to resize images.")
    center_crop: bool = Field(True, description="Crop the centre square before resizing (otherwise the image is squashed).")
    random_flip: bool = Field(False, description="Flip training images horizontally at random.")
    num_samples: int | None = Field(None, ge=1, description="Use at most this many images (before the split); empty (0 in the app) for all.")
    val_fraction: float = Field(0.05, ge=0.0, lt=0.5, description="Fraction of the images held out for validation.")
    test_fraction: float = Field(0.05, ge=0.0, lt=0.5, description="Fraction of the images held out for the final test.")
    split_seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the train/validation/test split and of synthetic data.")
    synthetic_count: int = Field(5000, ge=10, le=1_000_000, description="How many images the synthetic 'shapes' set makes.")
    holdout: list[str] = Field([], description="shapes: colour-shape combinations never drawn, e.g. ['red circle', 'blue square'] (to measure generalisation to unseen ones).")
    image_column: str = Field("image", description="Hugging Face datasets: the image column.")
    label_column: str | None = Field("label", description="Hugging Face datasets: the class label column (empty for none).")
    caption_column: str | None = Field(None, description="Hugging Face datasets: the caption column (empty for none).")
    hub_split: str = Field("train", description="Hugging Face datasets: the split to load.")
    workers: int = Field(0, ge=0, le=256, description="Processes that prepare the dataset into the cache (0: all cores).")
    max_megapixels: float = Field(100.0, gt=0, le=10_000, description="Larger images are skipped (read from their header, never decoded).")

    @field_validator("holdout")
    @classmethod
    def _known_combinations(cls, v: list[str]) -> list[str]:
        from .data.builtin import COLOURS, SHAPES

        for item in v:
            words = item.split()
            if len(words) != 2 or words[0] not in COLOURS or words[1] not in SHAPES:
                raise ValueError(f"{item!r} is not '<colour> <shape>' with a colour of {', '.join(COLOURS)} "
                                 f"and a shape of {', '.join(SHAPES)}")
        return v


class ModelConfig(Section):
    base_channels: int = Field(32, ge=4, le=1024, description="Channels of the first UNet level.")
    channel_mults: list[int] = Field([1, 2, 2], min_length=1, max_length=6, description="Channel multiplier per UNet level; each level after the first halves the resolution.")
    layers_per_block: int = Field(1, ge=1, le=4, description="Residual blocks per UNet level.")
    attention_resolutions: list[int] = Field([4], description="Feature-map sizes (pixels) that get self-attention.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout inside residual blocks.")
    class_conditional: bool = Field(False, description="Condition on class labels (needs a labelled dataset).")
    label_dropout: float = Field(0.1, ge=0.0, le=1.0, description="Share of labels dropped during training, for classifier-free guidance.")
    pretrained: str | None = Field(None, description="Start from this diffusers UNet2DModel instead of a new one: a DDPMPipeline/DDIMPipeline folder or Hub id (google/ddpm-cifar10-32), a UNet folder, or a run's best/ or final/ (at another data.image_size: growing it). Its noise schedule and prediction are kept; the other model fields are then unused.")
    lora_rank: int = Field(0, ge=0, le=512, description="Train LoRA adapters of this rank on model.pretrained (attention and residual convolutions) instead of all its weights (0: off); saved merged into the UNet.")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA scaling numerator (the adapters are scaled by alpha / rank; default: the rank).")

    @field_validator("channel_mults")
    @classmethod
    def _positive_mults(cls, v: list[int]) -> list[int]:
        if any(m < 1 for m in v):
            raise ValueError("every multiplier must be a whole number >= 1")
        return v


class DiffusionConfig(Section):
    objective: Literal["ddpm", "flow", "edm"] = Field(
        "ddpm", description="Training objective: ddpm (a noise schedule and a prediction target), flow (rectified flow: "
        "straight paths, the velocity), or edm (Karras et al.'s preconditioned denoiser).")
    # ddpm
    num_train_timesteps: int = Field(1000, ge=10, le=10000, description="ddpm: diffusion steps during training.")
    beta_schedule: Literal["linear", "cosine", "sigmoid"] = Field("cosine", description="ddpm: noise schedule.")
    prediction: Literal["epsilon", "v", "sample"] = Field("v", description="ddpm: what the UNet predicts: the noise, the velocity v, or the clean image.")
    loss_weighting: Literal["none", "min_snr"] = Field("min_snr", description="ddpm: per-timestep loss weights: none, or min-SNR-gamma.")
    snr_gamma: float = Field(5.0, gt=0, le=1000, description="ddpm: gamma of min-SNR weighting.")
    # flow
    timestep_sampling: Literal["uniform", "logit_normal"] = Field(
        "logit_normal", description="flow: how training draws t in [0, 1]: uniform, or logit-normal (more weight mid-way).")
    logit_mean: float = Field(0.0, ge=-5, le=5, description="flow: mean of the logit-normal t.")
    logit_std: float = Field(1.0, gt=0, le=5, description="flow: standard deviation of the logit-normal t.")
    shift: float = Field(1.0, gt=0, le=100, description="flow: resolution shift s of t (t' = s t / (1 + (s - 1) t)), in training "
                         "and sampling alike; above 1 for large images (SD3 uses 3 at 1024 px).")
    # edm
    p_mean: float = Field(-1.2, ge=-10, le=10, description="edm: mean of log sigma during training (log-normal noise levels).")
    p_std: float = Field(1.2, gt=0, le=10, description="edm: standard deviation of log sigma during training.")
    sigma_data: float | None = Field(None, gt=0, le=10, description="edm: standard deviation of the data (empty: measured on the training images).")

    @model_validator(mode="after")
    def _options_of_the_objective(self) -> DiffusionConfig:
        """A field of another objective set away from its default would be silently ignored: refuse it."""
        for name, owner in OBJECTIVE_FIELDS.items():
            if owner != self.objective and getattr(self, name) != DiffusionConfig.model_fields[name].default:
                raise ValueError(f"{name}: an option of objective {owner}, "
                                 f"not of {self.objective} ({OBJECTIVE_REASONS[self.objective]})")
        return self


OBJECTIVE_FIELDS = {"num_train_timesteps": "ddpm", "beta_schedule": "ddpm", "prediction": "ddpm", "loss_weighting": "ddpm",
                    "snr_gamma": "ddpm", "timestep_sampling": "flow", "logit_mean": "flow", "logit_std": "flow",
                    "shift": "flow", "p_mean": "edm", "p_std": "edm", "sigma_data": "edm"}
# The samplers of each objective (pipelines/objectives builds them); here, torch-free, for the config's own checks.
OBJECTIVE_SAMPLERS = {"ddpm": ("dpm++", "ddim", "ddpm", "pndm", "euler"), "flow": ("euler", "heun", "dpm++"),
                      "edm": ("heun", "dpm++", "euler")}
OBJECTIVE_REASONS = {"ddpm": "it draws discrete timesteps from its beta schedule",
                     "flow": "it always predicts the velocity on straight paths, with unit loss weights",
                     "edm": "its preconditioning fixes the target and the loss weight per sigma"}


SAMPLER_NAMES = Literal["ddpm", "ddim", "dpm++", "pndm", "euler", "heun"]
EXTRACTOR_NAMES = Literal["auto", "inception", "digits-cnn", "photo-cnn", "hog-colour"]


class TrainingConfig(Section):
    epochs: int = Field(40, ge=1, le=100_000, description="Passes over the training data.")
    max_minutes: float | None = Field(None, gt=0, le=MAX_MINUTES, description="Wall-clock budget; the run stops cleanly and writes final/ when it is spent.")
    batch_size: int = Field(64, ge=1, le=4096, description="Images per step on each device (before accumulation).")
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="Micro-batches per optimizer step.")
    auto_batch_size: bool = Field(True, description="On CUDA, shrink the batch until it fits and keep the effective batch through accumulation.")
    learning_rate: float = Field(1e-3, gt=0, le=1.0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, le=1.0, description="AdamW weight decay.")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2.")
    lr_schedule: Literal["cosine", "constant"] = Field("cosine", description="Learning-rate schedule after warm-up.")
    warmup_steps: int = Field(200, ge=0, le=MAX_STEPS, description="Optimizer steps of linear learning-rate warm-up.")
    grad_clip: float | None = Field(1.0, gt=0, le=1e6, description="Clip the gradient norm to this value (empty: no clipping).")
    max_skipped_steps: int = Field(10, ge=1, le=100_000, description="Steps whose loss or gradient norm is not finite are skipped; this many in a row fail the run.")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="Largest EMA decay (reached after warm-up); 0 turns EMA off.")
    ema_warmup_power: float = Field(0.75, gt=0, le=1, description="EMA warm-up: decay = 1 - (1 + step) ** -power, capped at ema_decay.")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field("auto", description="auto: bf16 (or fp16) on CUDA, bf16 on CPUs with native bf16 (AVX-512 BF16/AMX), else fp32.")
    compile: Literal["auto", "on", "off"] = Field("auto", description="torch.compile the model (auto: on CUDA only).")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of weights, noise and data order.")
    checkpoint_every_epochs: int = Field(10, ge=1, le=100_000, description="Write checkpoint-<step>/ every N epochs.")
    keep_last: int = Field(2, ge=1, le=10_000, description="Keep only the newest K checkpoint-<step>/ folders.")
    sample_every_epochs: int = Field(5, ge=1, le=100_000, description="Write samples/epoch_<n>.png every N epochs.")
    num_sample_images: int = Field(16, ge=1, le=256, description="Images in each sample grid (fixed seeds).")
    sample_sampler: SAMPLER_NAMES = Field("dpm++", description="Sampler for the sample grids.")
    sample_steps: int = Field(20, ge=1, le=1000, description="Sampler steps for the sample grids.")
    log_every_steps: int = Field(10, ge=1, le=MAX_STEPS, description="Write metrics to the run store every N optimizer steps.")
    num_processes: int = Field(1, ge=1, le=64, description="Processes (one per GPU) the studio trains this run with, through accelerate launch (from a terminal: accelerate launch --num_processes N).")
    log_with: list[Literal["tensorboard", "wandb", "mlflow"]] = Field([], description="Experiment trackers that also get the config, metrics, evaluations and sample grids (through accelerate), besides the run store.")
    tracker_project: str = Field("studio", min_length=1, description="The trackers' project: the W&B project, the MLflow experiment, the TensorBoard subfolder of <run>/trackers/.")


class EvaluationConfig(Section):
    every_epochs: int = Field(10, ge=0, le=100_000, description="FID/KID from the EMA weights every N epochs (0: off; best/ then follows the loss).")
    num_samples: int = Field(1000, ge=10, le=100_000, description="Generated images per evaluation during training.")
    split: Literal["train", "val", "test"] = Field("train", description="Real images the samples are compared with during training.")
    extractor: EXTRACTOR_NAMES = Field(
        "auto", description="Features: auto = Inception (true FID) where its weights are on the machine, else digits-cnn on digits, photo-cnn on colour photos of 24-64 px, else hog-colour.")
    sampler: SAMPLER_NAMES = Field("dpm++", description="Diffusion sampler used for evaluation samples.")
    steps: int = Field(20, ge=1, le=1000, description="Sampler steps for evaluation samples.")
    kid_subset_size: int = Field(1000, ge=2, le=100_000, description="KID subset size (lowered to the smaller image count when needed).")
    final: bool = Field(True, description="When training ends (evaluation on), evaluate best/ on final_split with final_num_samples images.")
    final_split: Literal["train", "val", "test"] = Field("test", description="Held-out real images of the final evaluation.")
    final_num_samples: int = Field(2000, ge=10, le=100_000, description="Generated images in the final evaluation.")


class EarlyStoppingConfig(Section):
    patience: int = Field(0, ge=0, le=100_000, description="Evaluations without a better FID (PSNR for super-resolution) before the learning rate is cut (0: off).")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="Learning-rate multiplier at each cut.")
    max_lr_cuts: int = Field(2, ge=0, le=1000, description="Cuts allowed; the next plateau stops the run.")
    loss_below: float | None = Field(None, gt=0, le=1e6, description="Stop once the epoch loss is below this and has not improved for loss_patience epochs (empty: off).")
    loss_patience: int = Field(20, ge=1, le=100_000, description="Epochs without a better epoch loss for the loss rule.")
    loss_plateau: int = Field(0, ge=0, le=100_000, description="Epochs without a better epoch loss before the learning rate is cut by lr_factor (0: off).")


class NotifyConfig(Section):
    webhook: str | None = Field(None, pattern=r"^https?://\S+$", description="URL that gets a JSON POST when the run completes, fails, is stopped or interrupted (default: $PIPELINES_WEBHOOK).")


class RunConfig(Section):
    """Base of every family's config: the family, an optional run name, the data and the training loop."""
    family: str = Field(description="Model family (each family's config class fixes it).")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                             description="Run name (letters, digits, _ . -); default <dataset>_<size>x<size>.")
    data: DataConfig = Field(default_factory=DataConfig, description="Where the images come from and how they are prepared.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="The optimizer, schedule, checkpoints and samples.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="FID/KID during and after training.")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig, description="Learning-rate cuts and stops on plateaus.")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="Where to send word when the run ends.")

    @model_validator(mode="after")
    def _check_evaluation_split(self) -> RunConfig:
        e = self.evaluation
        if e.every_epochs and e.split != "train" and getattr(self.data, f"{e.split}_fraction") == 0:
            raise ValueError(f"evaluation.split is {e.split}, but data.{e.split}_fraction is 0, so that split is empty")
        if self.early_stopping.patience and not e.every_epochs:
            raise ValueError("early_stopping.patience needs evaluations (evaluation.every_epochs above 0)")
        return self


def check_samplers(config: RunConfig) -> None:
    """The sample grids' and the evaluations' samplers must sample the config's diffusion objective."""
    objective = config.diffusion.objective
    allowed = OBJECTIVE_SAMPLERS[objective]
    for field, name in (("training.sample_sampler", config.training.sample_sampler), ("evaluation.sampler", config.evaluation.sampler)):
        if name not in allowed:
            raise ValueError(f"{field}: {name} does not sample objective {objective}; allowed: {', '.join(allowed)}")


def norm_groups(base_channels: int) -> int:
    """GroupNorm groups that divide every level's channels (multiples of base_channels)."""
    return 32 if base_channels % 32 == 0 else 8 if base_channels % 8 == 0 else 4


# Each family's config class, by family name: filled by the families as pipelines.families registers them.
CONFIG_CLASSES: dict[str, type[RunConfig]] = {}


def register_config(family: str, cls: type[RunConfig]) -> None:
    CONFIG_CLASSES[family] = cls


# pydantic's bound errors, said as a person would: "at least 8 (got 7)".
BOUND_WORDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
               "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}


def _describe(err: dict) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind in BOUND_WORDS:
        bound, words = BOUND_WORDS[kind]
        msg = f"{words} {err['ctx'][bound]}"
    if kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ")
        # Model-level checks name their own field first ("data.image_size must ..." or "training.x: ...").
        named = re.match(r"([a-z_]+(?:\.[a-z_]+)+)(:?)\s", msg) if not err["loc"] else None
        if named:
            return named.group(1), msg[named.end():] if named.group(2) else msg
        # A section's own check names its field first ("prediction: ..."): the path goes on with that name.
        own = re.match(r"([a-z_]+): ", msg) if err["loc"] else None
        if own:
            return f"{loc}.{own.group(1)}", msg[own.end():]
    return loc, f"{msg} (got {err.get('input')!r})" if "input" in err and not isinstance(err["input"], dict) else msg


def _allowed_keys(cls: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc[:-1]:
        field = cls.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        cls = ann
    return list(cls.model_fields)


def validate_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a plain dict into the family's config class, raising ConfigError that names each bad field."""
    if not isinstance(raw, dict):
        raise ConfigError([("config", "must be a mapping of sections (data, model, training, ...)")])
    family = raw.get("family", next(iter(CONFIG_CLASSES), ""))  # by default the first registered (diffusion)
    cls = CONFIG_CLASSES.get(family)
    if cls is None:
        raise ConfigError([("family", f"unknown family {family!r}; allowed: {', '.join(CONFIG_CLASSES)}")])
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            field, msg = _describe(err)
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(cls, err["loc"])
                msg += f"; allowed: {', '.join(allowed)}" if allowed else ""
            errors.append((field, msg))
        raise ConfigError(errors) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` strings (values parsed as YAML) to a nested dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([(item, "overrides look like key.sub=value")])
        node = raw
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([(key, f"{part} is not a section")])
        node[leaf] = parse_yaml(value) if value.strip() else None
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = parse_yaml(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([(str(path), f"not valid YAML: {exc}")]) from None
        except OSError as exc:
            raise ConfigError([(str(path), f"cannot read: {exc.strerror}")]) from None
    return validate_config(apply_overrides(raw, overrides or []))


def config_to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(config_to_yaml(config))
