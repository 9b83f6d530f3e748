"""The studio's engine: data, models, the training loop, samplers and the run store. Never imports the UI.

The public API is in `pipelines.api` (train, load, sample, interpolate, compare).
"""
