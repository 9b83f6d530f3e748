"""What the model cards of super-resolution folders say: Real-ESRGAN's layouts, loaded and tiled by this studio."""
from ..spec import CardFacts

USAGE = """With this studio (`sr_model.safetensors` holds the weights with the parameter names of the official
Real-ESRGAN checkpoints, its architecture in its metadata and in `sr_config.json`; a local folder or a Hub id):

```
python -m pipelines upscale --model {path} --input photo.png --output photo_x{scale}.png --tile 256
```

```python
from pipelines import api

upscaler = api.load_upscaler("{path}")
```
"""


def facts(meta: dict) -> CardFacts:
    return CardFacts(pipeline_tag="image-to-image", usage=USAGE.replace("{scale}", str(meta.get("scale", 4))),
                     tags=("super-resolution", "esrgan", "real-esrgan", str(meta.get("arch", "")).lower() or "srvgg"),
                     metrics=("psnr", "ssim", "psnr_bicubic", "ssim_bicubic"))
