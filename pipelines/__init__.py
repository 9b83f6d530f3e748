"""The studio's engine: data, model families, the training loop, samplers and the run store. Never imports the UI.

The public API is in `pipelines.api` (train, load, sample, interpolate, compare). Importing the package registers
the model families (`pipelines.families`), so that every config validates whatever module is imported first.
"""
from . import families  # noqa: F401
