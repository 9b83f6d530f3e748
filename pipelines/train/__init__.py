"""Training: the shared loop, its callbacks, and what a family supplies to it (the families live in pipelines.families)."""
from .family import Family, NonFiniteLoss, SingleModelFamily

__all__ = ["Family", "SingleModelFamily", "NonFiniteLoss"]
