"""Starting a diffusion run from a trained UNet2DModel (`model.pretrained`).

The source is a published diffusers pipeline (a DDPMPipeline/DDIMPipeline folder, or a Hub id such as
`google/ddpm-cifar10-32`, downloaded once into the Hub cache), a bare UNet folder, or one of the studio's own runs
(its `best/` or `final/`), possibly at another `data.image_size`: a run trained at 32 px grows to 64 px, since the
UNet is convolutional and its levels do not depend on the image size.

The source's noise schedule and prediction target are kept (its weights only make sense under them): they replace
the form's `diffusion` fields, and the log says so. With `model.lora_rank` only LoRA adapters (peft) on its attention
projections and residual convolutions train; saved folders hold the merged UNet, so stock diffusers loads them.
"""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel

from ...ecosystem.hub import local_folder
from ...objectives.ddpm import BETA_SCHEDULES, PREDICTION_TYPES

FIELD = "model.pretrained"
# Attention projections (as text-to-image's LoRA) and the residual blocks' convolutions: many small published
# UNets have attention at one level only, so adapting attention alone would leave most of the network as it was.
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]


def source_folder(name: str) -> Path:
    """The folder `name` names, or the Hub model `user/name` downloaded (once) into the Hub cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    try:
        folder = local_folder(name)
    except FileNotFoundError as exc:  # offline and not cached, or the Hub refused: one line naming the field
        raise ValueError(str(exc).replace("checkpoint:", f"{FIELD}:", 1)) from None
    if not folder.is_dir():
        raise ValueError(f"{FIELD}: {name} is not a folder (nor a Hub id user/name)")
    return folder


def unet_folder(folder: Path) -> Path:
    """Where the UNet2DModel is: `unet/` of a pipeline folder, or the folder itself (a bare UNet, or a pipeline
    saved flat as the first diffusers releases did)."""
    for candidate in (folder / "unet", folder):
        config = candidate / "config.json"
        if config.is_file():
            kind = json.loads(config.read_text()).get("_class_name")
            if kind == "UNet2DModel":
                return candidate
            if kind == "UNet2DConditionModel":
                raise ValueError(f"{FIELD}: {folder} holds a text-conditioned UNet ({kind}); fine-tune it with the "
                                 "text-to-image family (family: t2i)")
    raise ValueError(f"{FIELD}: {folder} holds no diffusers UNet2DModel (unet/config.json or config.json)")


def load_unet(folder: Path) -> UNet2DModel:
    """The UNet of a folder; safetensors where there are any, else a .bin read by diffusers with
    torch.load(weights_only=True) (the older published pipelines hold only those)."""
    where = unet_folder(folder)
    return UNet2DModel.from_pretrained(where, use_safetensors=any(where.glob("*.safetensors")))


def scheduler_config(folder: Path) -> dict | None:
    """The noise schedule a pipeline folder was trained with: `scheduler/`, a flat folder's own file, or the
    `scheduler/` beside a bare `unet/` folder."""
    for candidate in (folder / "scheduler", folder, folder.parent / "scheduler"):
        file = candidate / "scheduler_config.json"
        if file.is_file():
            return json.loads(file.read_text())
    return None


def kept_schedule(config, log: logging.Logger) -> DDPMScheduler | None:
    """The source's noise schedule, written into `config.diffusion` (prediction, steps, betas); None without
    `model.pretrained` or when the source has no scheduler (then the form's schedule is used, and the log says so)."""
    name = config.model.pretrained
    if not name:
        return None
    objective = getattr(config.diffusion, "objective", "ddpm")
    if objective != "ddpm":
        raise ValueError(f"diffusion.objective: {objective} cannot fine-tune model.pretrained, a UNet trained as a "
                         "DDPM; use objective ddpm")
    return adopt_schedule(scheduler_config(source_folder(name)), config, name, log)


def adopt_schedule(found: dict | None, config, name: str, log: logging.Logger) -> DDPMScheduler | None:
    """A DDPMScheduler of a source's scheduler config (any diffusers scheduler's: the betas and the prediction are
    what matter), written into `config.diffusion`; None (the form's schedule, logged) when the source has none."""
    if found is None:
        log.warning("%s: %s has no scheduler/; training it with the form's noise schedule (%s, %s prediction)",
                    FIELD, name, config.diffusion.beta_schedule, config.diffusion.prediction)
        return None
    scheduler = DDPMScheduler.from_config(found)
    c, d = scheduler.config, config.diffusion
    form = (d.beta_schedule, d.prediction, d.num_train_timesteps)
    prediction = {v: k for k, v in PREDICTION_TYPES.items()}.get(c.prediction_type)
    if prediction is None:
        raise ValueError(f"{FIELD}: {name} predicts {c.prediction_type!r}, which this studio does not train")
    beta = {v: k for k, v in BETA_SCHEDULES.items()}.get(c.beta_schedule)
    d.prediction, d.num_train_timesteps = prediction, c.num_train_timesteps
    if beta:  # (others, such as Stable Diffusion's scaled_linear, are kept in the scheduler itself)
        d.beta_schedule = beta
    if form != (d.beta_schedule, d.prediction, d.num_train_timesteps) or not beta:
        log.info("%s: keeping %s's noise schedule (%s betas over %d steps, %s prediction) instead of the form's "
                 "(%s, %s prediction, %d steps)", FIELD, name, c.beta_schedule, c.num_train_timesteps, prediction, *form)
    return scheduler


def pretrained_unet(config, num_classes: int, log: logging.Logger) -> torch.nn.Module:
    """The source's UNet, checked against the data, at `data.image_size`; with adapters when `model.lora_rank`."""
    m, d = config.model, config.data
    unet = load_unet(source_folder(m.pretrained))
    u = unet.config
    made = u.sample_size if isinstance(u.sample_size, int) else u.sample_size[0]
    if u.in_channels != d.channels:
        raise ValueError(f"data.channels {d.channels} does not fit {FIELD} {m.pretrained}: its UNet takes "
                         f"{u.in_channels} channels")
    factor = 2 ** (len(u.block_out_channels) - 1)
    if d.image_size % factor:
        raise ValueError(f"data.image_size {d.image_size} does not fit {FIELD} {m.pretrained}: its UNet (trained at "
                         f"{made} px) halves images {len(u.block_out_channels) - 1} times, so it takes multiples of "
                         f"{factor} px")
    embeds = u.num_class_embeds or 0
    if embeds and embeds != num_classes + 1:
        raise ValueError(f"model.class_conditional: {FIELD} {m.pretrained} knows {embeds - 1} classes; the data has "
                         f"{num_classes if m.class_conditional else 'none (model.class_conditional is off)'}")
    if num_classes and not embeds:
        raise ValueError(f"model.class_conditional: {FIELD} {m.pretrained} is not class-conditional; set "
                         "model.class_conditional: false")
    if made != d.image_size:
        log.info("%s: %s was trained at %d px; it continues at %d px", FIELD, m.pretrained, made, d.image_size)
    unet.register_to_config(sample_size=d.image_size)  # what it now makes, and what its saved config says
    if m.lora_rank:
        log.info("%s: training LoRA adapters of rank %d on %s", FIELD, m.lora_rank, m.pretrained)
        return add_unet_lora(unet, m.lora_rank, m.lora_alpha)
    log.info("%s: fine-tuning all weights of %s", FIELD, m.pretrained)
    return unet


def add_unet_lora(unet: UNet2DModel, rank: int, alpha: float | None = None) -> UNet2DModel:
    """Freeze `unet` and add trainable adapters that start at zero (B = 0): the model starts as the source."""
    from peft import LoraConfig, inject_adapter_in_model

    unet.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian",
                                       target_modules=LORA_TARGETS), unet)
    for name, p in unet.named_parameters():
        p.requires_grad_("lora_" in name)
    return unet


def merged_unet(unet: torch.nn.Module) -> torch.nn.Module:
    """A plain UNet2DModel with the adapters folded into its weights (the model itself is left as it is); a model
    without adapters as it is."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if not any(isinstance(m, BaseTunerLayer) for m in unet.modules()):
        return unet
    merged = copy.deepcopy(unet)
    for module in merged.modules():
        if isinstance(module, BaseTunerLayer):
            module.merge()
    state = {k.replace(".base_layer.", "."): v for k, v in merged.state_dict().items() if "lora_" not in k}
    plain = UNet2DModel.from_config(merged.config)
    plain.load_state_dict(state)
    return plain.to(next(unet.parameters()).device).eval()
