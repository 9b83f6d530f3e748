"""What the model cards of text-to-image folders say: a diffusers UNet with the studio's text encoder setup, or LoRA
adapters of a base UNet (and of a Stable Diffusion pipeline's text encoder) that stock diffusers loads onto the base."""
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

WEIGHTS = 'weight_name="pytorch_lora_weights.safetensors"'

PIPELINE_LORA = """With stock diffusers: `unet_lora/` holds LoRA adapters of the UNet of `{base}`{text}. Load that
pipeline, then the adapters:

```python
from diffusers import StableDiffusionPipeline

pipe = StableDiffusionPipeline.from_pretrained("{base}")
pipe.unet.load_lora_adapter("{path}", subfolder="unet_lora", prefix=None, WEIGHTS)
TEXT_LINEimage = pipe("{prompt}").images[0]
```

"""
TEXT = ", and `text_encoder_lora/` those of its CLIP text encoder (in diffusers' `save_lora_weights` format)"
TEXT_LINE = 'pipe.load_lora_weights("{path}", subfolder="text_encoder_lora", WEIGHTS)  # the text encoder\'s\n'

UNET_LORA = """With stock diffusers: `unet_lora/` holds LoRA adapters of the `UNet2DConditionModel` `{base}`:

```python
from diffusers import UNet2DConditionModel

unet = UNet2DConditionModel.from_pretrained("{base}")
unet.load_lora_adapter("{path}", subfolder="unet_lora", prefix=None, WEIGHTS)
```

"""


def facts(meta: dict) -> CardFacts:
    prompt = (meta.get("prompts") or ["a red circle on a blue background"])[0].replace('"', "'")
    return CardFacts(pipeline_tag="text-to-image", usage=(lora_usage(meta) + USAGE).replace("{prompt}", prompt),
                     tags=("text-to-image", "diffusion", *(("latent-diffusion",) if meta.get("vae") else ()),
                           *(("lora",) if meta.get("lora_rank") else ()), *(("dreambooth",) if meta.get("dreambooth") else ())),
                     metrics=("align_seen", "align_heldout", "clip_score"))


def lora_usage(meta: dict) -> str:
    """How stock diffusers puts a LoRA folder's adapters on their base (nothing for a full UNet)."""
    base = meta.get("pretrained")
    if not (meta.get("lora_rank") and base):
        return ""
    if not meta.get("pipeline"):
        return UNET_LORA.replace("{base}", base).replace("WEIGHTS", WEIGHTS)
    text = bool(meta.get("lora_text_encoder"))
    return (PIPELINE_LORA.replace("{text}", TEXT if text else "").replace("TEXT_LINE", TEXT_LINE if text else "")
            .replace("{base}", base).replace("WEIGHTS", WEIGHTS))
