"""The studio's browser UI (Gradio). Thin: forms, charts and galleries over the engine's public API."""
