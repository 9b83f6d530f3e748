"""Fine-tuning a whole Stable-Diffusion-style pipeline (`model.pretrained` naming a StableDiffusionPipeline folder or
Hub id): its CLIP text encoder and tokenizer, its VAE (with its latent scaling factor) and its UNet, trained in full or
with LoRA adapters (`model.lora_rank`; `model.lora_text_encoder` adapts the text encoder too, see lora.py), under the
pipeline's own noise schedule (so as a DDPM: the other objectives are refused).

The pipeline's parts replace the form's `text.encoder`, `latent.vae` and `diffusion` fields, and the log says so.
DreamBooth: `dreambooth.instance_prompt` captions every training image with one prompt (e.g. "a photo of sks dog"),
so that a few photos of one subject need no captions; prior preservation with class images is in dreambooth.py.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ...ecosystem.hub import first_line, is_repo_id
from ..ddpm.pretrained import adopt_schedule, scheduler_config

FIELD = "model.pretrained"
PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# What a Hub pipeline's download leaves out: other formats, half-precision and non-EMA copies, the safety checker.
NOT_NEEDED = ["*.ckpt", "*.msgpack", "*.onnx", "*.onnx_data", "*.h5", "*fp16*", "*non_ema*", "safety_checker/*",
              "feature_extractor/*"]


def is_pipeline_folder(folder: Path) -> bool:
    """A diffusers text-to-image pipeline with every part the studio trains with (model_index.json names them)."""
    index = folder / "model_index.json"
    if not index.is_file():
        return False
    parts = json.loads(index.read_text())
    return all(part in parts and (folder / part).is_dir() for part in PARTS)


def pipeline_folder(name: str | None) -> Path | None:
    """The local folder of a Stable-Diffusion-style pipeline named by `model.pretrained` (a Hub pipeline downloaded
    once, only the parts used); None when `name` is something else (a bare UNet folder or Hub UNet)."""
    if not name:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return path if is_pipeline_folder(path) else None
    if not is_repo_id(name):
        return None
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    try:
        index = json.loads(Path(hf_hub_download(name, "model_index.json")).read_text())
        if not all(part in index for part in PARTS):
            return None
        folder = Path(snapshot_download(name, allow_patterns=["model_index.json", *(f"{p}/*" for p in PARTS)],
                                        ignore_patterns=NOT_NEEDED))
    except EntryNotFoundError:  # a Hub repository without model_index.json: a bare UNet, loaded as before
        return None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ValueError(f"{FIELD}: {name} is not a folder here, and the Hub model of that name is not in the local "
                         f"cache and cannot be downloaded now ({type(exc).__name__})") from None
    except HfHubHTTPError as exc:
        raise ValueError(f"{FIELD}: {name} is not a folder here, and the Hub said: {first_line(exc)}") from None
    return folder if is_pipeline_folder(folder) else None


def adopt_pipeline(config, log: logging.Logger) -> Path | None:
    """When `model.pretrained` is a whole pipeline: its text encoder (and the tokenizer's length) and VAE replace the
    form's; returns its folder (None otherwise)."""
    folder = pipeline_folder(config.model.pretrained)
    if folder is None:
        return None
    t, latent = config.text, config.latent
    check_objective(config)
    if config.data.channels != 3:
        raise ValueError(f"data.channels: {config.model.pretrained} makes RGB images; set data.channels: 3")
    tokenizer = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text()) \
        if (folder / "tokenizer" / "tokenizer_config.json").is_file() else {}
    max_length = min(int(tokenizer.get("model_max_length") or t.max_length), 512)
    log.info("%s: %s is a %s: using its text encoder and tokenizer (%d tokens), its VAE and its UNet, instead of the "
             "form's text.encoder %s and latent.vae %s", FIELD, config.model.pretrained,
             json.loads((folder / "model_index.json").read_text()).get("_class_name", "pipeline"), max_length,
             t.encoder, latent.vae or "(none)")
    t.encoder, t.max_length, latent.vae = str(folder), max_length, str(folder)
    return folder


def check_objective(config) -> None:
    """A pipeline's UNet fine-tunes under its own noise schedule and prediction target (kept), that is as a DDPM."""
    objective = config.diffusion.objective
    if objective != "ddpm":
        raise ValueError(f"diffusion.objective: {objective} cannot fine-tune {FIELD} {config.model.pretrained}, a "
                         "pipeline trained as a DDPM whose noise schedule is kept; use objective ddpm")


def pipeline_schedule(folder: Path | None, config, log: logging.Logger):
    """The pipeline's own noise schedule (None without a pipeline: the form's)."""
    if folder is None:
        return None
    return adopt_schedule(scheduler_config(folder), config, config.model.pretrained, log)


def instance_captions(captions: list[str], instance_prompt: str | None) -> list[str]:
    """DreamBooth: every image captioned with the instance prompt; else the data's own captions."""
    return [instance_prompt] * len(captions) if instance_prompt else captions
