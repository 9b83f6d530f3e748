"""Super-resolution (ESRGAN family): SRVGGNetCompact and RRDBNet, L1 then perceptual and GAN losses."""
from ..spec import Chart, FamilySpec, Form
from .config import SRConfig

SPEC = FamilySpec(
    name="sr",
    noun="super-resolution",
    package=__name__,
    config=SRConfig,
    trainer="train:SRFamily",
    model="model:Upscaler",
    card="card:facts",
    kind="upscaler",
    sample_options=(),
    form=Form(
        label="Super-resolution (ESRGAN family)",
        preset_prefix="sr_",
        default_preset="sr_lite_x4.yaml",
        fields=(
            "model.size", "model.scale", "data.image_size", "data.num_samples",
            "sr.source", "sr.degradation", "sr.pairs_dir", "sr.patch_size",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "sr.gan_start_epoch", "sr.init_weights", "evaluation.every_epochs", "early_stopping.patience",
        ),
        loss_metrics=("l1", "perceptual", "g_gan", "d_loss"),  # the last three in stage 2 only
        lr_metrics=("lr", "d_lr"),
        charts=(
            Chart(("psnr", "psnr_bicubic"), "PSNR on held-out images (dB, higher is better)", (
                "**Reading super-resolution.** `psnr` is the model's (EMA weights) on the held-out images, "
                "`psnr_bicubic` what plain bicubic enlargement of the same inputs scores: the gap is what training "
                "bought. With L1 only, PSNR climbs fast and then slowly; a stage-2 (GAN) model trades some PSNR for "
                "sharper texture, so judge it by the validation strips too.")),
            Chart(("ssim", "ssim_bicubic"), "SSIM on held-out images (higher is better)"),
        ),
        fid=False,
        summary="summary:summary",
        extras=("lr-pairs",),
    
    ),
)
