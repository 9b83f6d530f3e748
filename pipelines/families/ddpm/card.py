"""What the model cards of diffusion folders say: stock diffusers loads them (unconditional ddpm and flow ones sample
with DDPMPipeline as they are; edm ones with a six-line loop over diffusers' EDM DPM-Solver)."""
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

FLOW = """Trained with rectified flow (the UNet predicts the velocity; `scheduler/` is a
`FlowMatchEulerDiscreteScheduler`). With stock diffusers, as it is:

```python
from diffusers import DDPMPipeline

pipeline = DDPMPipeline.from_pretrained("{path}")
images = pipeline(batch_size=4, num_inference_steps=20).images  # PIL images; flow sampling is good in few steps
```

"""

EDM = """Trained with EDM's preconditioning (Karras et al. 2022; `scheduler/` is an `EDMDPMSolverMultistepScheduler`,
prediction type "epsilon", whose preconditioning is the one used in training). With stock diffusers:

```python
import torch
from diffusers import EDMDPMSolverMultistepScheduler, UNet2DModel

unet = UNet2DModel.from_pretrained("{path}", subfolder="unet")
scheduler = EDMDPMSolverMultistepScheduler.from_pretrained("{path}", subfolder="scheduler")
scheduler.set_timesteps(20)
x = torch.randn(4, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size) * scheduler.init_noise_sigma
with torch.no_grad():
    for t in scheduler.timesteps:
        x = scheduler.step(unet(scheduler.scale_model_input(x, t), t).sample, t, x).prev_sample
images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # N x C x H x W
```
EDM's own 2nd-order Heun sampler is the studio's `--sampler heun`.

"""

CONDITIONAL = """With stock diffusers: the UNet is a class-conditional `UNet2DModel` (`UNet2DModel.from_pretrained("{path}",
subfolder="unet")`, called with `class_labels`); `DDPMPipeline` does not pass class labels, so sample it with the
studio, e.g. `--class 3 --guidance 2`.

"""


def facts(meta: dict) -> CardFacts:
    conditional = bool(meta.get("num_classes"))
    return CardFacts(pipeline_tag="unconditional-image-generation", library_name="diffusers",
                     tags=("diffusers", meta.get("objective", "ddpm"), "diffusion", *(("class-conditional",) if conditional else ())),
                     usage=usage(meta.get("objective", "ddpm"), conditional) + STUDIO)


def usage(objective: str, conditional: bool) -> str:
    if conditional:
        return CONDITIONAL
    return {"flow": FLOW, "edm": EDM}.get(objective, UNCONDITIONAL)
