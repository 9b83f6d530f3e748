"""A tiny model family living outside pipelines/: a "generator" that learns the mean colour of its training images
and draws it. It shows that a family is one module with a SPEC: registered through PIPELINES_FAMILIES, it trains
from the command line, samples through the API and shows in the Train tab and Compare, with no engine file edited."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from pipelines.config import RunConfig
from pipelines.families.spec import FamilySpec, Form
from pipelines.train.family import SingleModelFamily

HERE = Path(__file__).resolve().parent
COLOUR_FILE = "colour.json"


class ColourConfig(RunConfig):
    family: Literal["colour"] = Field("colour", description="Model family.")


class Colour(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.rgb = torch.nn.Parameter(torch.zeros(channels))  # in [-1, 1], as the training images


class ColourFamily(SingleModelFamily):
    name = "colour"

    def build_model(self) -> torch.nn.Module:
        return Colour(self.config.data.channels)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        mean = batch["images"].mean(dim=(2, 3))
        return ((self.model.rgb - mean) ** 2).mean(), {}

    def sample_images(self, num: int, seed: int, **options) -> np.ndarray:
        return ColourModel(self.ema.model.rgb.detach().cpu(), self.config.data.image_size, Path(".")).draw(num)

    def save_model(self, folder: Path) -> None:
        (Path(folder) / COLOUR_FILE).write_text(json.dumps({"rgb": self.ema.model.rgb.tolist(),
                                                             "image_size": self.config.data.image_size}))


@dataclass
class ColourModel:
    rgb: torch.Tensor
    image_size: int
    path: Path
    meta: dict = field(default_factory=dict)
    num_classes = 0
    takes_prompt = False
    holds = f"colour model ({COLOUR_FILE})"

    @property
    def channels(self) -> int:
        return len(self.rgb)

    @property
    def label(self) -> str:
        return f"{self.path.name} {self.image_size}px"

    @staticmethod
    def recognises(folder: Path) -> bool:
        return (Path(folder) / COLOUR_FILE).is_file()

    @classmethod
    def load(cls, folder, device="cpu") -> ColourModel:
        saved = json.loads((Path(folder) / COLOUR_FILE).read_text())
        meta_file = Path(folder) / "studio.json"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        return cls(torch.tensor(saved["rgb"]), saved["image_size"], Path(folder), meta)

    def draw(self, num: int) -> np.ndarray:
        value = ((self.rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        return np.broadcast_to(value, (num, self.image_size, self.image_size, len(value))).copy()

    def sample(self, request, callback=None) -> np.ndarray:
        return self.draw(request.num)

    def interpolate(self, request, seed_b: int, frames: int) -> np.ndarray:
        return self.draw(frames)


SPEC = FamilySpec(
    name="colour",
    noun="colour",
    package=__name__.rsplit(".", 1)[0],
    config=ColourConfig,
    trainer="colour_family:ColourFamily",
    model="colour_family:ColourModel",
    kind="images",
    form=Form(label="One colour (test family)", preset_prefix="colour_", default_preset="colour_digits.yaml",
              fields=("data.image_size", "training.epochs", "training.learning_rate"), config_dir=HERE),
)
