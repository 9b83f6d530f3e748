"""Exponential moving average of a model's weights, with warm-up, kept as a full model copy."""
from __future__ import annotations

import copy

import torch


class EMA:
    """decay(step) = min(max_decay, 1 - (1 + step) ** -power): early weights are forgotten quickly.

    With max_decay 0 the copy simply follows the model.
    """

    def __init__(self, model: torch.nn.Module, max_decay: float, power: float = 0.75):
        # Only trainable weights are averaged: frozen ones (a LoRA run's base model) never change.
        self.trainable = [p.requires_grad for p in model.parameters()]
        # Frozen weights are shared with the model, not copied: a LoRA run's EMA holds only its adapters.
        shared = {id(p): p for p, t in zip(model.parameters(), self.trainable) if not t}
        self.model = copy.deepcopy(model, memo=shared).eval().requires_grad_(False)
        self.max_decay, self.power, self.step = max_decay, power, 0
        # Walking a module tree costs milliseconds a step for a diffusers UNet: do it once.
        self.params = [p for p, t in zip(self.model.parameters(), self.trainable) if t]
        self.buffers = list(self.model.buffers())
        self.source: tuple[int, list, list] | None = None

    def decay(self) -> float:
        return min(self.max_decay, 1.0 - (1.0 + self.step) ** -self.power)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.step += 1
        if self.source is None or self.source[0] != id(model):
            params = [p.detach() for p, t in zip(model.parameters(), self.trainable) if t]
            self.source = (id(model), params, list(model.buffers()))
        _, params, buffers = self.source
        torch._foreach_lerp_(self.params, params, 1.0 - self.decay())
        for eb, b in zip(self.buffers, buffers):
            eb.copy_(b)

    def state_dict(self) -> dict:
        return {"step": self.step, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.model.load_state_dict(state["weights"])
