"""Training: the shared loop, its callbacks, and one module per model family."""
from .family import Family, NonFiniteLoss, SingleModelFamily
from .registry import FAMILIES, register_family

__all__ = ["Family", "SingleModelFamily", "NonFiniteLoss", "FAMILIES", "register_family"]
