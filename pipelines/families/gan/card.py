"""What the model cards of GAN folders say: the generator loads with this studio (its own architecture)."""
from ..spec import CardFacts

USAGE = """With this studio (the generator is the studio's SAGAN-style network, `generator.safetensors` with its
architecture in `gan_config.json`; a local folder or a Hub id):

```
python -m pipelines sample --checkpoint {path} --num 16 --truncation 1.0 --out samples.png
```

```python
from pipelines import api

model = api.load("{path}")
images = api.sample(model, api.SampleRequest(num=16, seed=0))  # uint8 N x H x W x C
```
"""


def facts(meta: dict) -> CardFacts:
    return CardFacts(pipeline_tag="unconditional-image-generation", usage=USAGE,
                     tags=("gan", "sagan", *(("class-conditional",) if meta.get("num_classes") else ())))
