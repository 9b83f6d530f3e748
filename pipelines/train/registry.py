"""Model families by name. A new family registers its config class and its Family class here."""
from __future__ import annotations

from ..config import register_config

FAMILIES: dict[str, type] = {}


def register_family(name: str, family_cls: type, config_cls: type) -> None:
    FAMILIES[name] = family_cls
    register_config(name, config_cls)


def _register_builtin() -> None:
    from ..config import DDPMConfig, GANConfig
    from ..config_sr import SRConfig
    from ..config_t2i import T2IConfig
    from .ddpm import DDPMFamily
    from .gan import GANFamily
    from .sr import SRFamily
    from .t2i import T2IFamily

    register_family("ddpm", DDPMFamily, DDPMConfig)
    register_family("gan", GANFamily, GANConfig)
    register_family("sr", SRFamily, SRConfig)
    register_family("t2i", T2IFamily, T2IConfig)


_register_builtin()
