"""What the model cards of text-to-image folders say: a diffusers UNet with the studio's text encoder setup."""
from ..spec import CardFacts

USAGE = """With this studio (the folder holds a diffusers `UNet2DConditionModel` in `unet/` (or LoRA adapters and
their base's name), its scheduler, and in `text_encoder.json` the text encoder it was trained with; a local
folder or a Hub id):

```
python -m pipelines sample --checkpoint {path} --prompt "{prompt}" --guidance 3 --out samples.png
```

```python
from pipelines import api

model = api.load("{path}")
images = api.sample(model, api.SampleRequest(prompt="{prompt}", num=4, guidance=3.0))
```
"""


def facts(meta: dict) -> CardFacts:
    prompt = (meta.get("prompts") or ["a red circle on a blue background"])[0].replace('"', "'")
    return CardFacts(pipeline_tag="text-to-image", usage=USAGE.replace("{prompt}", prompt),
                     tags=("text-to-image", "diffusion", *(("latent-diffusion",) if meta.get("vae") else ()),
                           *(("lora",) if meta.get("lora_rank") else ())),
                     metrics=("align_seen", "align_heldout", "clip_score"))
