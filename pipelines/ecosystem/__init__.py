"""The studio and the tools around it: experiment trackers, model cards, the Hugging Face Hub, webhooks, and
runs moved between workspaces as zips. Each module is optional at run time: none is imported unless used.
"""
