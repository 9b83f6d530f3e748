"""What the Train tab shows for each model family. A new family adds one entry here (and its engine
family and config class in pipelines); the form is generated from its config fields."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class FamilyUI:
    name: str
    label: str
    preset_prefix: str
    default_preset: str
    form_fields: tuple[str, ...]  # dotted config paths shown as form fields; the rest is in the YAML

    def presets(self) -> list[str]:
        return sorted(p.name for p in CONFIG_DIR.glob(f"{self.preset_prefix}*.yaml"))


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
}
