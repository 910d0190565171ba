"""Model folders built from architecture configs with random weights.

Speed does not depend on weight values, so benchmarks build Stable Diffusion architectures this
way, and the tests build tiny ones: nothing is downloaded. The tokenizer is a real CLIP BPE
tokenizer trained on a small local word list and saved as ordinary tokenizer files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

WORDS = (
    "a an the of and with on in at to big small red green blue yellow white black orange purple pink "
    "cat dog house tree car boat sky sea mountain city forest flower portrait photo painting of highly "
    "detailed sunset night morning river lake castle robot bird horse person woman man child beautiful "
    "circle square triangle star ring heart left right top bottom centre corner background"
).split()

TINY_SD = {
    "unet": dict(block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                 cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32),
    "vae": dict(block_out_channels=[32, 64], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, sample_size=64, norm_num_groups=32),
    "text_encoder": dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                         max_position_embeddings=77, layer_norm_eps=1e-5, projection_dim=32),
    "scheduler": dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                      clip_sample=False, set_alpha_to_one=False, steps_offset=1, skip_prk_steps=True),
}


def write_tokenizer(folder: Path, words=WORDS, max_length: int = 77) -> None:
    """Train a small CLIP-style BPE on ``words`` and save it as CLIPTokenizer files."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    special = ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    trainer = trainers.BpeTrainer(vocab_size=10_000, min_frequency=1, special_tokens=special,
                                  initial_alphabet=alphabet, end_of_word_suffix="</w>", show_progress=False)
    corpus = list(words) + [" ".join(words)] + alphabet
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab = dict(model["vocab"])
    for ch in alphabet:  # every character also as a word end, so any word can be spelled
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": special[0],
        "eos_token": special[1], "unk_token": special[1], "pad_token": special[1], "do_lower_case": True,
    }, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": special[0], "eos_token": special[1], "unk_token": special[1], "pad_token": special[1]}, indent=2))


def build_sd_folder(folder: Path | str, config: dict = TINY_SD, *, seed: int = 0, name: str | None = None) -> Path:
    """Write a StableDiffusionPipeline folder with random weights from ``config``; returns it."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent if folder.parent.exists() else None))
    torch.manual_seed(seed)
    UNet2DConditionModel(**config["unet"]).save_pretrained(tmp / "unet")
    AutoencoderKL(**config["vae"]).save_pretrained(tmp / "vae")
    write_tokenizer(tmp / "tokenizer", max_length=config["text_encoder"]["max_position_embeddings"])
    tokenizer = CLIPTokenizer.from_pretrained(tmp / "tokenizer")
    text = dict(config["text_encoder"])
    text.update(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    CLIPTextModel(CLIPTextConfig(**text)).save_pretrained(tmp / "text_encoder")
    PNDMScheduler.from_config(config["scheduler"]).save_pretrained(tmp / "scheduler")
    index = {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
        "feature_extractor": [None, None], "safety_checker": [None, None], "requires_safety_checker": False,
        "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
    if name:
        (tmp / "diffuse_studio.json").write_text(json.dumps({"name": name}))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def build_arch_folder(arch: str, folder: Path | str) -> Path:
    """A model folder for ``arch`` with random weights: "tiny" here, "sd15"/"sdxl" from resources/."""
    folder = Path(folder) / arch
    if arch == "tiny":
        return build_sd_folder(folder, TINY_SD)
    from desktop_app.engine.arch_configs import build_from_resources

    return build_from_resources(arch, folder)
