"""Upscaling with a super-resolution model: loading any model file, and tiled inference.

A model comes from a run (its final/, best/ or newest checkpoint), a folder written by training
(`sr_model.safetensors` + `sr_config.json`), a lone `.safetensors`, or an official Real-ESRGAN or SwinIR `.pth`
(read with weights_only, so a file cannot run code).
Tiles are cut with `tile_pad` pixels of context; with padding at least the receptive field the result
equals the untiled one, and only one tile is on the device at a time. SwinIR sees each tile (or the whole
image) as upstream's test script does: mirrored to past a multiple of its window, then cropped.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from ...checkpoints import list_checkpoints, read_meta
from ...sample.checks import check_tiling
from .networks import SRArch, infer_arch, load_matching
from .swinir import DERIVED, is_swinir

MODEL_FILE = "sr_model.safetensors"
ARCH_FILE = "sr_config.json"


@dataclass
class Upscaler:
    model: torch.nn.Module
    arch: SRArch
    path: Path
    meta: dict = field(default_factory=dict)

    scale = property(lambda self: self.arch.scale)

    @property
    def label(self) -> str:
        run, step = self.meta.get("run"), self.meta.get("step")
        name = f"{run} step {step}" if run else self.path.name
        return f"{name} ({self.arch.arch} x{self.scale})"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    takes_prompt = False
    holds = f"super-resolution model ({MODEL_FILE})"

    @staticmethod
    def recognises(folder: Path) -> bool:
        return is_sr_folder(folder)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu", half: bool = False) -> Upscaler:
        return load_upscaler(folder, device, half)

    @torch.no_grad()
    def run(self, image: torch.Tensor, tile: int = 256, tile_pad: int = 16, pre_pad: int = 0,
            progress: Callable[[int, int], None] | None = None, dtype: torch.dtype = torch.float32,
            gray: bool = False) -> torch.Tensor:
        """1 x C x H x W floats in [0, 1] (on the CPU) -> 1 x C x sH x sW (on the CPU): floats in [0, 1], or with
        `dtype` uint8 / int32 the 8-bit / 16-bit values (each tile is quantised as it comes: an 8192 x 8192 result
        in floats alone would take 800 MB). `gray` averages the channels into one."""
        check_tiling(tile, tile_pad, pre_pad)
        s = self.scale
        # Reflect padding at the right and bottom edges gives the model context there (as upstream's pre_pad).
        x = F.pad(image, (0, pre_pad, 0, pre_pad), mode="reflect") if pre_pad else image
        # RRDBNet x2 / x1 fold 2x2 / 4x4 pixels into channels: the size must divide.
        fold = {1: 4, 2: 2}.get(s, 1) if self.arch.arch == "rrdb" else 1
        mod_h, mod_w = -x.shape[2] % fold, -x.shape[3] % fold
        if mod_h or mod_w:
            x = F.pad(x, (0, mod_w, 0, mod_h), mode="reflect")
        h, w = image.shape[2] * s, image.shape[3] * s
        out = torch.empty(1, 1 if gray else x.shape[1], h, w, dtype=dtype)
        top = {torch.uint8: 255.0, torch.int32: 65535.0}.get(dtype)
        tile = tile if tile and max(x.shape[2:]) > tile else max(x.shape[2:])
        tile, tile_pad = (-(-n // fold) * fold for n in (tile, tile_pad))  # tiles stay on the folded pixel grid
        for (y0, y1, x0, x1), result in self._tiles(x, tile, tile_pad, progress):
            if y0 >= h or x0 >= w:  # a tile of padding only
                continue
            y1, x1 = min(y1, h), min(x1, w)  # the padded-on edges are cut off
            result = result[:, :, :y1 - y0, :x1 - x0]
            result = result.mean(1, keepdim=True) if gray else result
            out[:, :, y0:y1, x0:x1] = (result * top).round_() if top else result
        return out

    def _tiles(self, x: torch.Tensor, tile: int, pad: int, progress=None):
        """Each tile's output region (y0, y1, x0, x1) and its result (floats in [0, 1]), one tile at a time."""
        s, (_, _, h, w) = self.scale, x.shape
        rows, cols = math.ceil(h / tile), math.ceil(w / tile)
        dtype = next(self.model.parameters()).dtype
        forward = getattr(self.model, "forward_padded", self.model)  # SwinIR takes any size this way
        for i in range(rows):
            for j in range(cols):
                y0, x0 = i * tile, j * tile
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)  # the tile with its context, inside the image
                py1, px1 = min(y1 + pad, h), min(x1 + pad, w)
                result = forward(x[:, :, py0:py1, px0:px1].to(self.device, dtype)).float().clamp_(0, 1).cpu()
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                yield (y0 * s, y1 * s, x0 * s, x1 * s), result[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                if progress:
                    progress(i * cols + j + 1, rows * cols)


def find_model_file(path: Path) -> Path:
    """The weights file meant by a path: a file, a model folder, or a run folder (final/, best/, newest checkpoint)."""
    if path.is_file():
        return path
    if (path / MODEL_FILE).exists():
        return path / MODEL_FILE
    if path.is_dir():
        for folder in [path / "final", path / "best", *reversed(list_checkpoints(path))]:
            if (folder / MODEL_FILE).exists():
                return folder / MODEL_FILE
        raise FileNotFoundError(f"model: {path} holds no super-resolution model ({MODEL_FILE}, or a run with final/ or a checkpoint)")
    raise FileNotFoundError(f"model: {path} does not exist")


MAX_TENSORS = 10_000  # an official RRDBNet has about 700; a header listing millions is not a model


def read_state(file: Path) -> tuple[dict[str, torch.Tensor], SRArch]:
    """The weights of a model file and its architecture (as the file or its folder records it, else inferred from
    the keys and shapes). A .safetensors is judged from its header before any weights are read or layers built."""
    if file.suffix == ".safetensors":
        try:
            with safe_open(file, "pt") as f:
                recorded = (f.metadata() or {}).get("sr_arch")
                keys = list(f.keys())
                if len(keys) > MAX_TENSORS:
                    raise ValueError(f"model: {file.name} lists {len(keys):,} tensors; a super-resolution model has "
                                     f"at most {MAX_TENSORS:,}")
                # Shapes on the meta device: infer_arch and the size check need no memory.
                header = {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in keys}
        except ValueError:
            raise
        except Exception as exc:  # safetensors raises its own error type for a damaged file
            raise ValueError(f"model: {file.name} cannot be read as safetensors ({exc})") from None
        if recorded is None and (file.parent / ARCH_FILE).exists():
            recorded = (file.parent / ARCH_FILE).read_text()
        arch = checked_arch(file, header, recorded)
        try:
            return load_file(file), arch
        except Exception as exc:
            raise ValueError(f"model: {file.name} cannot be read as safetensors ({exc})") from None
    if file.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        try:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickled code, a truncated file, or not a torch file at all
            raise ValueError(f"model: {file.name} cannot be read as plain weights ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if isinstance(loaded, dict):
            loaded = pick_weights(loaded)
            if loaded and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
                if len(loaded) > MAX_TENSORS:
                    raise ValueError(f"model: {file.name} holds {len(loaded):,} tensors; a super-resolution model "
                                     f"has at most {MAX_TENSORS:,}")
                return loaded, checked_arch(file, loaded, None)
        raise ValueError(f"model: {file.name} holds no state dict (expected tensors, or params_ema / params)")
    raise ValueError(f"model: {file.name}: expected a .safetensors or .pth file")


def pick_weights(loaded: dict) -> dict:
    """The state dict inside an official file: Real-ESRGAN's keep the EMA weights under params_ema, preferred;
    SwinIR's test script takes params_ema for real-world models (nearest+conv) and params for the others."""
    held = [k for k in ("params_ema", "params") if isinstance(loaded.get(k), dict)]
    if not held:
        return loaded
    if len(held) == 2 and is_swinir(loaded["params"]) and "conv_up1.weight" not in loaded["params"]:
        return loaded["params"]
    return loaded[held[0]]


def checked_arch(file: Path, shapes: dict[str, torch.Tensor], recorded: str | None) -> SRArch:
    """The architecture, refused (naming the problem) when it is unknown, absurdly large, or needs more parameters
    than the file holds: checked with the layers built on the meta device, which allocates nothing."""
    try:
        if recorded is not None:
            fields = json.loads(recorded)
            if not isinstance(fields, dict) or not set(fields) <= set(SRArch.__dataclass_fields__):
                raise ValueError(f"the recorded architecture is not one ({str(recorded)[:200]})")
            arch = SRArch(**fields)
        else:
            arch = infer_arch(shapes)
        arch.check()
        with torch.device("meta"):
            needed = sum(v.numel() for k, v in arch.build().state_dict().items() if not k.endswith(DERIVED))
    except (ValueError, TypeError, LookupError, ArithmeticError, RuntimeError) as exc:  # a header that fits no model
        raise ValueError(f"model: {file.name}: {exc}") from None
    held = sum(t.numel() for t in shapes.values())
    if needed > held:
        raise ValueError(f"model: {file.name} describes a {arch.arch} model of {needed:,} parameters but holds only "
                         f"{held:,} values; refused")
    return arch


def load_upscaler(path: str | Path, device: str | torch.device = "cpu", half: bool = False) -> Upscaler:
    """Load any super-resolution model file or folder; a file that does not fit is refused naming the first
    mismatched parameter."""
    file = find_model_file(Path(path))
    state, arch = read_state(file)
    if arch.num_in_ch != 3 or arch.num_out_ch != 3:
        raise ValueError(f"model: {file.name} works on {arch.num_in_ch}-channel images; the studio upscales RGB models only")
    model = arch.build()
    load_matching(model, state)
    model = model.to(device).eval()
    if half and torch.device(device).type == "cuda":
        model = model.half()
    return Upscaler(model, arch, file.parent if file.name == MODEL_FILE else file, read_meta(file.parent))


def save_upscaler_files(model: torch.nn.Module, arch: SRArch, folder: Path) -> None:
    """Weights (safetensors, the architecture in its metadata too, so the file alone loads) and sr_config.json."""
    from safetensors.torch import save_file

    text = json.dumps(arch.to_dict())
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, folder / MODEL_FILE,
              metadata={"sr_arch": text})
    (folder / ARCH_FILE).write_text(text)


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: Pillow's bicubic enlargement of the uint8 LR image."""
    img = Image.fromarray(lr.permute(1, 2, 0).numpy())
    return torch.from_numpy(np.array(img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC))).permute(2, 0, 1)


def is_sr_folder(path: str | Path) -> bool:
    return (Path(path) / MODEL_FILE).exists()
