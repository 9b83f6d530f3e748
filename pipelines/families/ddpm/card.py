"""What the model cards of diffusion folders say: stock diffusers loads them (unconditional ones sample with
DDPMPipeline as they are)."""
from ..spec import CardFacts

STUDIO = """With this studio (any sampler, classes, guidance; a local folder or a Hub id):

```
python -m pipelines sample --checkpoint {path} --sampler dpm++ --steps 20 --num 16 --out samples.png
```
"""

UNCONDITIONAL = """With stock diffusers (the folder is a `DDPMPipeline`):

```python
from diffusers import DDPMPipeline, DPMSolverMultistepScheduler

pipeline = DDPMPipeline.from_pretrained("{path}")
images = pipeline(batch_size=4, num_inference_steps=1000).images  # PIL images
# faster: 20 steps of DPM-Solver++
pipeline.scheduler = DPMSolverMultistepScheduler.from_config(pipeline.scheduler.config)
images = pipeline(batch_size=4, num_inference_steps=20).images
```

"""

CONDITIONAL = """With stock diffusers: the UNet is a class-conditional `UNet2DModel` (`UNet2DModel.from_pretrained("{path}",
subfolder="unet")`, called with `class_labels`); `DDPMPipeline` does not pass class labels, so sample it with the
studio, e.g. `--class 3 --guidance 2`.

"""


def facts(meta: dict) -> CardFacts:
    conditional = bool(meta.get("num_classes"))
    return CardFacts(pipeline_tag="unconditional-image-generation", library_name="diffusers",
                     tags=("diffusers", "ddpm", "diffusion", *(("class-conditional",) if conditional else ())),
                     usage=(CONDITIONAL if conditional else UNCONDITIONAL) + STUDIO)
