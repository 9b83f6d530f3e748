"""Diffusion (DDPM): unconditional or class-conditional, a diffusers UNet2DModel."""
from ..spec import FamilySpec, Form
from .config import DDPMConfig

SPEC = FamilySpec(
    name="ddpm",
    noun="diffusion",
    package=__name__,
    config=DDPMConfig,
    trainer="train:DDPMFamily",
    model="model:DiffusionModel",
    card="card:facts",
    kind="images",
    sample_options=("sampler", "steps", "guidance", "class"),
    form=Form(
        label="Diffusion (DDPM)",
        preset_prefix="ddpm_",
        default_preset="ddpm_digits16.yaml",
        fields=(
            "data.image_size", "data.channels", "data.num_samples", "data.random_flip",
            "model.class_conditional", "model.base_channels", "model.pretrained", "model.lora_rank", "diffusion.objective",
            "diffusion.prediction",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "training.sample_every_epochs", "training.checkpoint_every_epochs",
            "evaluation.every_epochs", "evaluation.num_samples", "evaluation.extractor", "early_stopping.patience",
        ),
    
    ),
)
