"""GANs (SAGAN-style): spectral norm, self-attention, hinge or non-saturating loss, DiffAugment."""
from ..spec import Chart, FamilySpec, Form
from .config import GANConfig

SPEC = FamilySpec(
    name="gan",
    noun="GAN",
    package=__name__,
    config=GANConfig,
    trainer="train:GANFamily",
    model="model:GANModel",
    card="card:facts",
    kind="images",
    sample_options=("class", "truncation"),
    form=Form(
        label="GAN (SAGAN-style)",
        preset_prefix="gan_",
        default_preset="gan_digits16.yaml",
        fields=(
            "data.image_size", "data.channels", "data.num_samples", "data.random_flip",
            "model.class_conditional", "model.g_channels", "model.d_channels", "gan.loss",
            "gan.g_steps", "training.learning_rate", "gan.d_learning_rate", "gan.augment",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.sample_every_epochs",
            "evaluation.every_epochs", "evaluation.num_samples", "early_stopping.patience", "gan.collapse_rollback",
        ),
        loss_metrics=("d_loss", "g_loss"),
        lr_metrics=("lr", "d_lr"),
        charts=(Chart(("d_real", "d_fake"), "D(x) and D(G(z))", (
            "**Reading a GAN.** D(x) and D(G(z)) are the mean sigmoid of D's score for real and for generated "
            "images (after augmentation, when it is on). In balance they wobble apart without running away: with the "
            "hinge loss, whose margins sit at 0.73 and 0.27, D(x) around 0.55–0.7 and D(G(z)) around 0.3–0.45 "
            "(non-saturating: about 0.6–0.9 and 0.2–0.5); the losses wander without a trend while FID falls. "
            "**Discriminator too strong:** D(x) pinned at or beyond its margin and D(G(z)) at or below its own for "
            "long, D loss near 0, G loss climbing: try more `g_steps`, a lower D learning rate or augmentation. "
            "**Collapse:** the samples look alike (the run warns when their variety drops) and FID jumps.")),),
    
    ),
)
