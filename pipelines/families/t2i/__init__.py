"""Text-to-image diffusion: a UNet2DConditionModel attending to a frozen text encoder, optionally latent."""
from ..spec import Chart, FamilySpec, Form
from .config import T2IConfig

SPEC = FamilySpec(
    name="t2i",
    noun="text-to-image",
    package=__name__,
    config=T2IConfig,
    trainer="train:T2IFamily",
    model="model:TextModel",
    card="card:facts",
    kind="text",
    sample_options=("sampler", "steps", "guidance", "prompt"),
    form=Form(
        label="Text-to-image (diffusion)",
        preset_prefix="t2i_",
        default_preset="t2i_shapes32.yaml",
        other_presets=("train_config.yaml",),
        fields=(
            "data.image_size", "data.num_samples", "data.synthetic_count", "data.random_flip",
            "text.encoder", "text.caption_dropout", "model.base_channels", "model.pretrained", "model.lora_rank",
            "latent.vae", "sampling.guidance",
            "training.epochs", "training.max_minutes", "training.batch_size", "training.learning_rate",
            "training.sample_every_epochs", "training.checkpoint_every_epochs", "evaluation.every_epochs",
            "evaluation.clip_model", "early_stopping.loss_plateau",
        ),
        sections=(("Fine-tune a Stable Diffusion pipeline: text-encoder LoRA, DreamBooth", (
            "model.lora_text_encoder", "dreambooth.instance_prompt", "dreambooth.class_prompt", "dreambooth.class_data",
            "dreambooth.num_class_images", "dreambooth.prior_loss_weight")),),
        charts=(
            Chart(("align_seen", "align_heldout"), "Prompt alignment on shapes (share of images right)", (
                "**Reading alignment.** Images are drawn from prompts of every colour-shape-background combination "
                "and read back by a checker (colour, shape, background all right counts). `align_seen`: combinations "
                "the model trained on; `align_heldout`: those kept out with `data.holdout` — how well it composes "
                "words it knows into pictures it never saw. Only on the built-in shapes data.")),
            Chart(("align_colour", "align_shape", "align_background"), "What the checker found right (seen combinations)"),
            Chart(("clip_score",), "CLIP score of the evaluation images with their prompts (0–100)", (
                "**Reading the CLIP score.** How well a CLIP model thinks each image matches its prompt (100 x the "
                "cosine of their embeddings, negatives counted as 0): higher is better, and only differences between "
                "checkpoints scored by the same CLIP model mean anything. Shown when `evaluation.clip_model` names a "
                "CLIP model or `auto` finds one in the local Hugging Face cache.")),
        ),
        loss_metrics=("loss", "instance_loss", "prior_loss"),  # the last two with DreamBooth's prior preservation
        fid=False,
        summary="summary:summary",
    
    ),
)
