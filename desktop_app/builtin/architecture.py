"""The Shapes model's components, built from configs (standard diffusers / transformers classes)."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.builtin.data import COLOURS, COUNT_WEIGHTS, SHAPES, SIZE
from desktop_app.builtin.tokenizer import MAX_LENGTH


@dataclass(frozen=True)
class Recipe:
    """Sizes and step counts for one training run."""

    vae_channels: tuple[int, ...] = (32, 32, 64)
    vae_steps: int = 1000
    vae_batch: int = 32
    vae_crop: int = 32
    vae_full_steps: int = 200
    vae_lr: float = 1e-3
    pool_size: int = 24_000
    pool_object_counts: tuple[float, ...] = COUNT_WEIGHTS  # share of 1-, 2- and 3-object scenes
    text_width: int = 128
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_layers_per_block: int = 1
    unet_norm_groups: int = 16
    unet_steps: int = 3000
    unet_batch: int = 48
    unet_lr: float = 1e-3
    unet_warmup: int = 200
    # what the UNet predicts: "v_prediction" (v = √ᾱ·ε − √(1−ᾱ)·x₀) or "epsilon"; the loss is
    # weighted so no noise level dominates, see train.loss_weight
    prediction_type: str = "v_prediction"
    snr_gamma: float = 5.0
    ema_decay: float = 0.997
    caption_dropout: float = 0.12
    classifier_width: int = 48
    classifier_steps: int = 2500
    classifier_batch: int = 128
    classifier_lr: float = 1e-3


RECIPES = {
    # ≈ 55 minutes on one core of a 2-core CPU (--threads 1)
    "cpu": Recipe(),
    # for a GPU: the same networks (so the CPU still makes a picture in well under 0.5 s), many
    # more samples; train.py --unet-time-limit cuts the UNet's steps to the time at hand
    "gpu": Recipe(
        vae_steps=1500, vae_batch=64, vae_full_steps=400, pool_size=40_000, unet_steps=30_000, unet_batch=256,
        unet_warmup=300, ema_decay=0.999, classifier_steps=6000, classifier_batch=256,
    ),
    # a smoke test of the whole recipe in seconds (the result is noise)
    "tiny": Recipe(
        vae_channels=(16, 16, 16), vae_steps=2, vae_full_steps=1, vae_batch=4, pool_size=64, text_width=32, text_layers=1,
        unet_channels=(32, 32, 32), unet_steps=2, unet_batch=4, classifier_width=16, classifier_steps=2,
        classifier_batch=8,
    ),
}  # fmt: skip


def make_vae(recipe: Recipe):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(recipe.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(recipe.vae_channels),
        block_out_channels=recipe.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=SIZE,
        mid_block_add_attention=False,
    )


def make_text_encoder(recipe: Recipe, vocab_size: int, bos_id: int, eos_id: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=recipe.text_width,
        intermediate_size=recipe.text_width * 4,
        num_hidden_layers=recipe.text_layers,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        hidden_act="quick_gelu",
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        projection_dim=recipe.text_width,
    )
    return CLIPTextModel(config)


def make_unet(recipe: Recipe):
    from diffusers import UNet2DConditionModel

    levels = len(recipe.unet_channels)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1)
    up = ("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=SIZE // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=recipe.unet_channels,
        layers_per_block=recipe.unet_layers_per_block,
        cross_attention_dim=recipe.text_width,
        attention_head_dim=8,
        norm_num_groups=recipe.unet_norm_groups,
    )


def make_scheduler(prediction_type: str = "v_prediction"):
    from diffusers import DDPMScheduler

    # The DDPM paper's linear schedule: at 16×16 latents it leaves almost no signal at t = T,
    # which SD's "scaled_linear" schedule (made for 64×64 latents) would not.
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.0001,
        beta_end=0.02,
        prediction_type=prediction_type,
        clip_sample=False,
        steps_offset=1,
        timestep_spacing="leading",
    )


def classifier_heads() -> dict[str, list[str]]:
    return {"shape": list(SHAPES), "colour": list(COLOURS)}
