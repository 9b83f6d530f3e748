"""Model families by name. A new family registers its config class and its Family class here."""
from __future__ import annotations

from ..config import register_config

FAMILIES: dict[str, type] = {}


def register_family(name: str, family_cls: type, config_cls: type) -> None:
    FAMILIES[name] = family_cls
    register_config(name, config_cls)


def _register_builtin() -> None:
    from ..config import DDPMConfig
    from .ddpm import DDPMFamily

    register_family("ddpm", DDPMFamily, DDPMConfig)


_register_builtin()
