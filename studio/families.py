"""What the Train tab shows for each model family. A new family adds one entry here (and its engine
family and config class in pipelines); the form is generated from its config fields."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Chart:
    """A chart of logged values in the Runs tab, with a short guide to reading it (Markdown)."""
    metrics: tuple[str, ...]
    title: str
    guide: str = ""


@dataclass(frozen=True)
class FamilyUI:
    name: str
    label: str
    preset_prefix: str
    default_preset: str
    form_fields: tuple[str, ...]  # dotted config paths shown as form fields; the rest is in the YAML
    loss_metrics: tuple[str, ...] = ("loss",)  # drawn together in the Runs tab's loss chart
    lr_metrics: tuple[str, ...] = ("lr",)  # and in its learning-rate chart
    charts: tuple[Chart, ...] = ()  # the family's own charts (at most MAX_CHARTS)
    fid: bool = True  # whether the family's evaluations are FID/FD (the Runs tab's FD chart and table)
    other_presets: tuple[str, ...] = ()  # presets in configs/ without the prefix

    def presets(self) -> list[str]:
        return sorted(p.name for p in CONFIG_DIR.glob(f"{self.preset_prefix}*.yaml")) + list(self.other_presets)


FAMILY_UIS: dict[str, FamilyUI] = {
    "ddpm": FamilyUI(
        name="ddpm",
        label="Diffusion (DDPM)",
        preset_prefix="ddpm_",
        default_preset="ddpm_digits16.yaml",
        form_fields=(
            "data.image_size", "data.channels", "data.num_samples", "data.random_flip",
            "model.class_conditional", "model.base_channels", "diffusion.beta_schedule", "diffusion.prediction",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "training.sample_every_epochs", "training.checkpoint_every_epochs",
            "evaluation.every_epochs", "evaluation.num_samples", "evaluation.extractor", "early_stopping.patience",
        ),
    ),
    "gan": FamilyUI(
        name="gan",
        label="GAN (SAGAN-style)",
        preset_prefix="gan_",
        default_preset="gan_digits16.yaml",
        form_fields=(
            "data.image_size", "data.channels", "data.num_samples", "data.random_flip",
            "model.class_conditional", "model.g_channels", "model.d_channels", "gan.loss",
            "gan.g_steps", "training.learning_rate", "gan.d_learning_rate", "gan.augment",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.sample_every_epochs",
            "evaluation.every_epochs", "evaluation.num_samples", "early_stopping.patience", "gan.collapse_rollback",
        ),
        loss_metrics=("d_loss", "g_loss"),
        lr_metrics=("lr", "d_lr"),
        charts=(Chart(("d_real", "d_fake"), "D(x) and D(G(z))", (
            "**Reading a GAN.** D(x) and D(G(z)) are the mean sigmoid of D's score for real and for generated "
            "images (after augmentation, when it is on). In balance they wobble apart without running away: with the "
            "hinge loss, whose margins sit at 0.73 and 0.27, D(x) around 0.55–0.7 and D(G(z)) around 0.3–0.45 "
            "(non-saturating: about 0.6–0.9 and 0.2–0.5); the losses wander without a trend while FID falls. "
            "**Discriminator too strong:** D(x) pinned at or beyond its margin and D(G(z)) at or below its own for "
            "long, D loss near 0, G loss climbing: try more `g_steps`, a lower D learning rate or augmentation. "
            "**Collapse:** the samples look alike (the run warns when their variety drops) and FID jumps.")),),
    ),
    "sr": FamilyUI(
        name="sr",
        label="Super-resolution (ESRGAN family)",
        preset_prefix="sr_",
        default_preset="sr_lite_x4.yaml",
        form_fields=(
            "model.size", "model.scale", "data.image_size", "data.num_samples",
            "sr.source", "sr.degradation", "sr.pairs_dir", "sr.patch_size",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "sr.gan_start_epoch", "sr.init_weights", "evaluation.every_epochs", "early_stopping.patience",
        ),
        loss_metrics=("l1", "perceptual", "g_gan", "d_loss"),  # the last three in stage 2 only
        lr_metrics=("lr", "d_lr"),
        charts=(
            Chart(("psnr", "psnr_bicubic"), "PSNR on held-out images (dB, higher is better)", (
                "**Reading super-resolution.** `psnr` is the model's (EMA weights) on the held-out images, "
                "`psnr_bicubic` what plain bicubic enlargement of the same inputs scores: the gap is what training "
                "bought. With L1 only, PSNR climbs fast and then slowly; a stage-2 (GAN) model trades some PSNR for "
                "sharper texture, so judge it by the validation strips too.")),
            Chart(("ssim", "ssim_bicubic"), "SSIM on held-out images (higher is better)"),
        ),
        fid=False,
    ),
    "t2i": FamilyUI(
        name="t2i",
        label="Text-to-image (diffusion)",
        preset_prefix="t2i_",
        default_preset="t2i_shapes32.yaml",
        other_presets=("train_config.yaml",),
        form_fields=(
            "data.image_size", "data.num_samples", "data.synthetic_count", "data.random_flip",
            "text.encoder", "text.caption_dropout", "model.base_channels", "model.pretrained", "model.lora_rank",
            "latent.vae", "sampling.guidance",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "training.sample_every_epochs", "training.checkpoint_every_epochs", "evaluation.every_epochs",
            "evaluation.clip_model", "early_stopping.loss_plateau",
        ),
        charts=(
            Chart(("align_seen", "align_heldout"), "Prompt alignment on shapes (share of images right)", (
                "**Reading alignment.** Images are drawn from prompts of every colour-shape-background combination "
                "and read back by a checker (colour, shape, background all right counts). `align_seen`: combinations "
                "the model trained on; `align_heldout`: those kept out with `data.holdout` — how well it composes "
                "words it knows into pictures it never saw. Only on the built-in shapes data.")),
            Chart(("align_colour", "align_shape", "align_background"), "What the checker found right (seen combinations)"),
            Chart(("clip_score",), "CLIP score of the evaluation images with their prompts (0–100)", (
                "**Reading the CLIP score.** How well a CLIP model thinks each image matches its prompt (100 x the "
                "cosine of their embeddings, negatives counted as 0): higher is better, and only differences between "
                "checkpoints scored by the same CLIP model mean anything. Shown when `evaluation.clip_model` names a "
                "CLIP model or `auto` finds one in the local Hugging Face cache.")),
        ),
        fid=False,
    ),
}
