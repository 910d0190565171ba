"""Train the built-in "Shapes" model: ``python -m desktop_app.builtin.train``.

Stages, each checkpointed in the work folder so an interrupted run resumes where it stopped:

1. tokenizer   BPE over the grammar (seconds)
2. vae         AutoencoderKL, L1 + MSE reconstruction + a small KL term
3. latents     a fixed pool of scenes, rendered and encoded once by the frozen VAE
4. unet        text encoder + UNet together, v-prediction MSE (L_simple reparametrised, weighted
               so every noise level counts, see loss_weight),
               caption replaced by "" 12% of the time (classifier-free guidance), EMA weights
5. classifier  the noise-aware latent classifier (main object's shape and colour)
6. export      preview factors by least squares, then the model folder, written atomically

Every random draw is seeded by (seed, stage, step), so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from desktop_app.builtin import architecture as arch
from desktop_app.builtin.data import SIZE, ShapesDataset, caption, grammar_words, render

CHECKPOINT_EVERY = 100  # steps (VAE, classifier)
CHECKPOINT_SECONDS = 60.0  # UNet: by time, since a step takes 0.5 s on a CPU and 30 ms on a GPU


class Every:
    """True at most once per ``seconds`` of wall-clock time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def log(work: Path, stage: str, **values) -> None:
    with (work / "train_log.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"time": round(time.time(), 1), "stage": stage, **values}) + "\n")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 → float N×3×H×W in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def progress(stage: str, total: int, start: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=stage, file=sys.stderr, dynamic_ncols=True, mininterval=2.0)


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# --- stages -----------------------------------------------------------------------------------


def start_from_model(work: Path, folder: Path, recipe: arch.Recipe) -> None:
    """Fine-tuning: put a trained model folder's parts into the work folder as finished stages.

    Its tokenizer and VAE are kept as they are (``vae.done.pt``); its text encoder, UNet and
    classifier become the starting weights of their stages (``init.pt``), and its latent scaling
    factor is kept, since the UNet was trained on latents scaled by it. Only done once per work
    folder: a resumed run goes on from its own checkpoints.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from desktop_app.backend.local.classifier import LatentClassifier

    if (work / "init.pt").exists():
        return
    if not (folder / "model_index.json").exists():
        raise SystemExit(f"--init-from {folder}: not a model folder (no model_index.json)")
    shutil.copytree(folder / "tokenizer", work / "tokenizer", dirs_exist_ok=True)
    vae = AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32)
    if tuple(vae.config.block_out_channels) != tuple(recipe.vae_channels):
        raise SystemExit(f"--init-from {folder}: its VAE has blocks {vae.config.block_out_channels}, the recipe "
                         f"{recipe.vae_channels}; use --set vae_channels=...")  # fmt: skip
    save_checkpoint(work / "vae.done.pt", vae.state_dict())
    init = {
        "scaling_factor": float(vae.config.scaling_factor),
        "unet": UNet2DConditionModel.from_pretrained(str(folder / "unet"), torch_dtype=torch.float32).state_dict(),
        "text_encoder": CLIPTextModel.from_pretrained(str(folder / "text_encoder"), dtype=torch.float32).state_dict(),
    }
    if (folder / "classifier" / "config.json").exists():
        init["classifier"] = {k: v.float() for k, v in LatentClassifier.load(folder / "classifier").state_dict().items()}
    save_checkpoint(work / "init.pt", init)
    log(work, "init", folder=str(folder))


def _init_state(work: Path, part: str):
    path = work / "init.pt"
    return torch.load(path, map_location="cpu").get(part) if path.exists() else None


def stage_tokenizer(work: Path):
    from transformers import CLIPTokenizer

    from desktop_app.builtin.tokenizer import write_tokenizer

    folder = work / "tokenizer"
    if not (folder / "vocab.json").exists():
        write_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def _object_crops(
    x: torch.Tensor, scenes, size: int, rng: np.random.Generator, object_weight: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops that each hold one object, and a loss weight per pixel (objects count 5× background).

    The VAE is fully convolutional, so training on crops costs less per step and loses nothing;
    centring them on objects and weighting object pixels up matters because the objects cover
    only a small part of each picture and a VAE trained on plain crops learns the background first.
    """
    background = torch.stack([x[i, :, 0, 0] for i in range(len(x))])[:, :, None, None]
    weight = 1.0 + (object_weight - 1.0) * ((x - background).abs().amax(dim=1, keepdim=True) > 0.05).float()
    if size >= x.shape[-1]:
        return x, weight
    crops, weights = [], []
    for i, scene in enumerate(scenes):
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        y0, x0 = (
            int(np.clip(round(c - size / 2 + rng.uniform(-6, 6)), 0, x.shape[-1] - size)) // 4 * 4
            for c in (obj.cy, obj.cx)
        )
        crops.append(x[i, :, y0 : y0 + size, x0 : x0 + size])
        weights.append(weight[i, :, y0 : y0 + size, x0 : x0 + size])
    return torch.stack(crops), torch.stack(weights)


def stage_vae(work: Path, recipe: arch.Recipe, seed: int, device: str):
    vae = arch.make_vae(recipe).to(device)
    done = work / "vae.done.pt"
    if done.exists():
        vae.load_state_dict(torch.load(done, map_location=device))
        return vae.eval().requires_grad_(False)
    with torch.no_grad():
        # start with a small posterior std: with std 1 the decoder first sees pure noise and
        # learns nothing until the encoder has shrunk it
        vae.quant_conv.bias[vae.config.latent_channels :] = -6.0
    ckpt_path = work / "vae.ckpt.pt"
    opt = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    start = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device)
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        start = ckpt["step"]
    data = ShapesDataset(seed)
    # two phases: object-centred crops (cheap, learns the objects), then whole pictures (learns
    # the background and the picture's borders)
    total = recipe.vae_steps + recipe.vae_full_steps
    bar = progress("vae", total, start)
    vae.train()
    for step in range(start, total):
        crops = step < recipe.vae_steps
        for group in opt.param_groups:
            if crops:
                group["lr"] = lr_at(step, recipe.vae_steps, recipe.vae_lr, warmup=50)
            else:
                group["lr"] = lr_at(
                    step - recipe.vae_steps, recipe.vae_full_steps, recipe.vae_lr / 3, warmup=20
                )
        batch = recipe.vae_batch if crops else recipe.vae_batch // 2
        images, scenes = data.batch(step * recipe.vae_batch, batch)
        x, weight = _object_crops(
            to_tensor(images),
            scenes,
            recipe.vae_crop if crops else SIZE,
            np.random.default_rng([seed, 2, step]),
            5.0 if crops else 2.0,
        )
        x, weight = x.to(device), weight.to(device)
        posterior = vae.encode(x).latent_dist
        generator = torch.Generator(device).manual_seed(seed * 7919 + step)
        z = posterior.mean + posterior.std * torch.randn(
            posterior.mean.shape, generator=generator, device=device
        )
        y = vae.decode(z).sample
        error = y - x
        recon = ((error.abs() + error.pow(2)) * weight).mean() / weight.mean()
        kl = posterior.kl().mean() / z[0].numel()
        loss = recon + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        bar.update(1)
        bar.set_postfix(recon=f"{recon.item():.4f}", kl=f"{kl.item():.2f}")
        if step % 20 == 0:
            log(work, "vae", step=step, recon=recon.item(), kl=kl.item())
        if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == recipe.vae_steps:
            save_checkpoint(ckpt_path, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1})
    bar.close()
    save_checkpoint(done, vae.state_dict())
    return vae.eval().requires_grad_(False)


def stage_latents(work: Path, recipe: arch.Recipe, seed: int, device: str, vae) -> dict:
    path = work / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    data = ShapesDataset(seed + 1, count_weights=recipe.pool_object_counts)
    scenes, chunks = [], []
    bar = progress("latents", recipe.pool_size, 0)
    with torch.no_grad():
        for start in range(0, recipe.pool_size, 256):
            count = min(256, recipe.pool_size - start)
            images, batch_scenes = data.batch(start, count)
            chunks.append(vae.encode(to_tensor(images).to(device)).latent_dist.mean.cpu())
            scenes.extend(batch_scenes)
            bar.update(count)
    bar.close()
    latents = torch.cat(chunks)
    kept = _init_state(work, "scaling_factor")
    scaling = float(kept) if kept is not None else float(1.0 / latents.std())
    pool = {"latents": latents, "scenes": scenes, "scaling_factor": scaling, "seed": seed + 1}
    torch.save(pool, path)
    log(work, "latents", count=len(scenes), scaling_factor=scaling, mean=latents.mean().item())
    return pool


class CaptionIds:
    """Token ids for a batch of grammar captions, as the tokenizer would give them (padded to its
    length), without its per-call overhead: every grammar word is one token, so a caption is
    BOS, one id per word, EOS, padding: 1.4 ms for 512 captions where the tokenizer call takes
    30 ms (2-core build machine), which on a GPU is a large part of a step. Anything outside the
    grammar goes through the tokenizer itself."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()
        self.tokenizer = tokenizer
        self.length = tokenizer.model_max_length
        self.bos, self.eos, self.pad = vocab[tokenizer.bos_token], vocab[tokenizer.eos_token], tokenizer.pad_token_id
        self.words = {w: vocab[w + "</w>"] for w in grammar_words() if w + "</w>" in vocab}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids = np.full((len(texts), self.length), self.pad, dtype=np.int64)
        for row, text in enumerate(texts):
            words = text.split()
            if len(words) + 2 > self.length or any(w not in self.words for w in words):
                return self._slow(texts)
            ids[row, 0] = self.bos
            ids[row, 1 : len(words) + 1] = [self.words[w] for w in words]
            ids[row, len(words) + 1] = self.eos
        return torch.from_numpy(ids)

    def _slow(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(
            texts, padding="max_length", max_length=self.length, truncation=True, return_tensors="pt"
        ).input_ids


def _text_batch(to_ids: CaptionIds, scenes, rng: np.random.Generator, dropout: float) -> torch.Tensor:
    return to_ids(["" if rng.random() < dropout else caption(s, rng) for s in scenes])


def loss_weight(alpha_bar: torch.Tensor, recipe: arch.Recipe) -> torch.Tensor:
    """Per-sample weight of the MSE on the UNet's output (ε or v, ``recipe.prediction_type``).

    What matters is the weight each noise level gets on the error of the implied x₀:
    ε-MSE = SNR·x₀-MSE and v-MSE = (1 + SNR)·x₀-MSE. With ε-prediction and min-SNR-γ
    weighting, a level with SNR 1e-3 gets a thousandth of the weight on x₀ that a clean level gets,
    and those nearly pure-noise levels are where the sampler decides *where* things go: the
    first two Shapes models trained that way ignored their position words entirely (the object
    landed where the seed put it, whatever the prompt said). With v-prediction the weight here is
    min(1, γ/SNR), so the x₀ weight is 1 + SNR up to SNR = γ and about γ above it: nearly flat
    across noise levels, and no level swamps the others.
    """
    snr = alpha_bar / (1 - alpha_bar)
    if recipe.prediction_type == "v_prediction":
        return torch.clamp(recipe.snr_gamma / snr, max=1.0)
    return torch.clamp(snr, max=recipe.snr_gamma) / snr  # min-SNR-γ for ε


def training_target(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction_type: str):
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    return noise


def _ema_update(ema: dict, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        floats, targets = [], []
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                floats.append(ema[name])
                targets.append(value)
            else:
                ema[name].copy_(value)
        torch._foreach_lerp_(floats, targets, 1 - decay)  # ema ← decay·ema + (1 − decay)·value


def fit_steps(step: int, total: int, seconds_per_step: float, seconds_left: float) -> int:
    """How many steps in all fit: ``total``, or fewer if the rest would run past the time left."""
    return max(step + 1, min(total, step + int(0.97 * seconds_left / seconds_per_step)))


def stage_unet(
    work: Path, recipe: arch.Recipe, seed: int, device: str, tokenizer, pool: dict, time_limit: float = 0.0
):
    """Train; with ``time_limit`` (seconds), the step count is cut to what fits, measured once the
    learning-rate warm-up is over (the schedule up to there does not depend on the step count)."""
    vocab = tokenizer.get_vocab()
    text_encoder = arch.make_text_encoder(
        recipe, len(vocab), vocab[tokenizer.bos_token], vocab[tokenizer.eos_token]
    ).to(device)
    unet = arch.make_unet(recipe).to(device)
    done = work / "unet.done.pt"
    if done.exists():
        state = torch.load(done, map_location=device)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        return unet.eval(), text_encoder.eval()
    torch.manual_seed(seed)
    for part, model in (("unet", unet), ("text_encoder", text_encoder)):
        state = _init_state(work, part)
        if state is not None:
            model.load_state_dict(state)
    scheduler = arch.make_scheduler(recipe.prediction_type)
    alphas = scheduler.alphas_cumprod.to(device)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=recipe.unet_lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema = {"unet": {k: v.detach().clone() for k, v in unet.state_dict().items()},
           "text_encoder": {k: v.detach().clone() for k, v in text_encoder.state_dict().items()}}  # fmt: skip
    ckpt_path = work / "unet.ckpt.pt"
    start, total = 0, recipe.unet_steps
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device)
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
        opt.load_state_dict(ckpt["opt"])
        ema = ckpt["ema"]
        start = ckpt["step"]
        total = ckpt.get("total", total)
    latents = (pool["latents"] * pool["scaling_factor"]).to(device)
    scenes = pool["scenes"]
    checkpoint_due = Every(CHECKPOINT_SECONDS)
    bar = progress("unet", total, start)
    unet.train()
    text_encoder.train()
    began, fit_at = time.monotonic(), max(recipe.unet_warmup, start + 20)
    step = start
    pin = torch.device(device).type == "cuda"
    to_ids = CaptionIds(tokenizer)

    def cpu_side(step: int):
        """A step's captions, token ids, noise and timesteps: CPU work, made in a second thread
        while the previous step runs on the GPU."""
        rng = np.random.default_rng([seed, 4, step])
        index = rng.integers(len(scenes), size=recipe.unet_batch)
        ids = _text_batch(to_ids, [scenes[i] for i in index], rng, recipe.caption_dropout)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        noise = torch.randn((len(index), *latents.shape[1:]), generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(index),), generator=generator)
        tensors = (torch.from_numpy(index), ids, noise, t)
        return tuple(x.pin_memory() for x in tensors) if pin else tensors

    prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unet-batches")
    upcoming = prefetch.submit(cpu_side, step)
    try:
        while step < total:
            if time_limit and step == fit_at:
                elapsed = time.monotonic() - began
                fitted = fit_steps(step, total, elapsed / (step - start), time_limit - elapsed)
                if fitted < total:
                    total = fitted
                    bar.total = total
                    log(work, "unet", step=step, note=f"cut to {total} steps to fit the time limit of {time_limit:.0f} s")
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, recipe.unet_lr, warmup=recipe.unet_warmup)
            index, ids, noise, t = (x.to(device, non_blocking=True) for x in upcoming.result())
            upcoming = prefetch.submit(cpu_side, step + 1)
            x0 = latents[index]
            xt = scheduler.add_noise(x0, noise, t)
            context = text_encoder(ids).last_hidden_state
            pred = unet(xt, t, context).sample
            weight = loss_weight(alphas[t], recipe)
            target = training_target(scheduler, x0, noise, t, recipe.prediction_type)
            per_item = (pred - target).pow(2).mean(dim=(1, 2, 3))
            loss = (weight * per_item).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            decay = min(recipe.ema_decay, (1 + step) / (10 + step))
            _ema_update(ema["unet"], unet, decay)
            _ema_update(ema["text_encoder"], text_encoder, decay)
            bar.update(1)
            if step % 20 == 0:  # .item() waits for the GPU, so not every step
                values = {"loss": loss.item(), "mse": per_item.mean().item()}
                bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()})
                log(work, "unet", step=step, **values, lr=opt.param_groups[0]["lr"])
            step += 1
            if checkpoint_due() or step == total:
                state = {
                    "unet": unet.state_dict(),
                    "text_encoder": text_encoder.state_dict(),
                    "opt": opt.state_dict(),
                    "ema": ema,
                    "step": step,
                    "total": total,
                }
                save_checkpoint(ckpt_path, state)
                save_checkpoint(work / "unet.ema.pt", ema)  # for looking at samples while it trains
    finally:
        prefetch.shutdown(cancel_futures=True)
    bar.close()
    save_checkpoint(done, ema)
    unet.load_state_dict(ema["unet"])
    text_encoder.load_state_dict(ema["text_encoder"])
    return unet.eval(), text_encoder.eval()


def stage_classifier(work: Path, recipe: arch.Recipe, seed: int, device: str, pool: dict):
    from desktop_app.backend.local.classifier import LatentClassifier
    from desktop_app.builtin.data import COLOURS, SHAPES

    torch.manual_seed(seed)
    model = LatentClassifier(
        arch.classifier_heads(), in_channels=4, width=recipe.classifier_width, t_dim=128
    ).to(device)
    done = work / "classifier.done.pt"
    if done.exists():
        model.load_state_dict(torch.load(done, map_location=device))
        return model.eval()
    state = _init_state(work, "classifier")
    if state is not None:
        model.load_state_dict(state)
    scheduler = arch.make_scheduler()
    latents = pool["latents"] * pool["scaling_factor"]
    shape_labels = torch.tensor([SHAPES.index(s.main.shape) for s in pool["scenes"]])
    colour_labels = torch.tensor([list(COLOURS).index(s.main.colour) for s in pool["scenes"]])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.classifier_lr, weight_decay=0.01)
    ckpt_path = work / "classifier.ckpt.pt"
    start = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        start = ckpt["step"]
    bar = progress("classifier", recipe.classifier_steps, start)
    model.train()
    for step in range(start, recipe.classifier_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe.classifier_steps, recipe.classifier_lr, warmup=50)
        generator = torch.Generator().manual_seed(seed * 4_000_037 + step)
        index = torch.randint(0, len(latents), (recipe.classifier_batch,), generator=generator)
        noise = torch.randn((len(index), *latents.shape[1:]), generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(index),), generator=generator)
        xt = scheduler.add_noise(latents[index], noise, t).to(device)
        logits = model(xt, t.to(device))
        loss_shape = torch.nn.functional.cross_entropy(logits["shape"], shape_labels[index].to(device))
        loss_colour = torch.nn.functional.cross_entropy(logits["colour"], colour_labels[index].to(device))
        loss = loss_shape + loss_colour
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
        bar.set_postfix(shape=f"{loss_shape.item():.3f}", colour=f"{loss_colour.item():.3f}")
        if step % 20 == 0:
            log(work, "classifier", step=step, shape=loss_shape.item(), colour=loss_colour.item())
        if (step + 1) % CHECKPOINT_EVERY == 0:
            save_checkpoint(
                ckpt_path, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1}
            )
    bar.close()
    save_checkpoint(done, model.state_dict())
    return model.eval()


def fit_preview_factors(pool: dict, count: int = 2000) -> dict:
    """Least squares from scaled latents (what the UNet sees) to the 4× smaller RGB picture."""
    latents = pool["latents"][:count] * pool["scaling_factor"]
    images = to_tensor(np.stack([render(s) for s in pool["scenes"][:count]]))
    small = torch.nn.functional.avg_pool2d(images, 4)
    x = latents.permute(0, 2, 3, 1).reshape(-1, 4).double()
    y = small.permute(0, 2, 3, 1).reshape(-1, 3).double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution
    residual = (design @ solution - y).pow(2).mean().sqrt().item()
    return {
        "matrix": [[round(v, 5) for v in row] for row in solution[:4].tolist()],
        "bias": [round(v, 5) for v in solution[4].tolist()],
        "rms_error": round(residual, 4),
    }


def export(
    out: Path, work: Path, recipe: arch.Recipe, tokenizer, vae, text_encoder, unet, classifier, pool: dict,
    preview: dict,
) -> Path:
    """Write the model folder next to ``out`` and swap it in, so a crash never leaves half a model."""
    from diffusers import StableDiffusionPipeline

    vae.register_to_config(scaling_factor=pool["scaling_factor"])
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=arch.make_scheduler(recipe.prediction_type),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.to(torch.float16).save_pretrained(str(tmp), safe_serialization=True)
    pipe.to(torch.float32)
    shutil.copytree(work / "tokenizer", tmp / "tokenizer", dirs_exist_ok=True)
    classifier.half().save(tmp / "classifier")
    classifier.float()
    info = {
        "name": "Shapes (built-in)",
        "family": "built-in",
        "preview_factors": {"matrix": preview["matrix"], "bias": preview["bias"]},
        "defaults": {"scheduler": "DDIM", "steps": 20, "guidance_scale": 5.0, "classifier_scale": 5.0},
        "vocabulary": grammar_words(),  # the window shows them near the prompt and marks the others
    }
    (tmp / "diffuse_studio.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for kept in ("README.md", "evaluation.json"):  # written by hand / by evaluate, not by training
        if (out / kept).exists():
            shutil.copy2(out / kept, tmp / kept)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def default_out() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / "shapes"


def with_overrides(recipe: arch.Recipe, overrides: list[str]) -> arch.Recipe:
    """The recipe with ``FIELD=VALUE`` changes applied, each value read as its field's type."""
    fields = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)}
    changes = {}
    for item in overrides:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set {item}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        current = fields[name]
        try:
            if isinstance(current, tuple):
                changes[name] = tuple(type(current[0])(v) for v in text.split(","))
            else:
                changes[name] = type(current)(text)
        except ValueError:
            raise ValueError(f"--set {item}: {text!r} is not a valid {type(current).__name__}") from None
    return dataclasses.replace(recipe, **changes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from desktop_app.core import paths

    parser = argparse.ArgumentParser(
        prog="python -m desktop_app.builtin.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=default_out(), help="model folder to write (default: models/shapes)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="checkpoints and caches (default: the app's cache folder)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--recipe", default=None, choices=sorted(arch.RECIPES), help="default: cpu, or gpu with --device cuda"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument(
        "--stop-after", default=None, choices=["tokenizer", "vae", "latents", "unet", "classifier"]
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
        help="change one field of the recipe, e.g. --set unet_steps=5000 --set unet_channels=32,64,128",
    )
    parser.add_argument(
        "--init-from", type=Path, default=None, metavar="MODEL_FOLDER",
        help="fine-tune: keep this model's tokenizer and VAE, start the UNet, text encoder and classifier from it",
    )
    parser.add_argument(
        "--unet-time-limit", type=float, default=0.0, metavar="SECONDS",
        help="cut the UNet stage's step count to what fits in this many seconds (0: no limit)",
    )
    args = parser.parse_args(argv)
    args.recipe = args.recipe or ("gpu" if args.device == "cuda" else "cpu")
    try:
        args.recipe_values = with_overrides(arch.RECIPES[args.recipe], args.overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if args.work_dir is None:
        args.work_dir = paths.cache_dir() / f"shapes-train-{args.recipe}-seed{args.seed}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    recipe = args.recipe_values
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    log(work, "recipe", name=args.recipe, **dataclasses.asdict(recipe))
    if args.init_from is not None:
        start_from_model(work, args.init_from, recipe)
    print(f"work folder: {work}", file=sys.stderr)
    began = time.time()

    def timed(name, fn, *a):
        t0 = time.time()
        result = fn(*a)
        log(work, "timing", name=name, seconds=round(time.time() - t0, 1))
        return result

    tokenizer = timed("tokenizer", stage_tokenizer, work)
    if args.stop_after == "tokenizer":
        return 0
    vae = timed("vae", stage_vae, work, recipe, args.seed, args.device)
    if args.stop_after == "vae":
        return 0
    pool = timed("latents", stage_latents, work, recipe, args.seed, args.device, vae)
    if args.stop_after == "latents":
        return 0
    unet, text_encoder = timed(
        "unet", stage_unet, work, recipe, args.seed, args.device, tokenizer, pool, args.unet_time_limit
    )
    if args.stop_after == "unet":
        return 0
    classifier = timed("classifier", stage_classifier, work, recipe, args.seed, args.device, pool)
    if args.stop_after == "classifier":
        return 0
    preview = fit_preview_factors(pool)
    log(work, "preview", **preview)
    out = export(
        args.out, work, recipe, tokenizer, vae.cpu(), text_encoder.cpu(), unet.cpu(), classifier.cpu(), pool, preview
    )
    log(work, "timing", name="total (this invocation)", seconds=round(time.time() - began, 1))
    print(f"wrote {out} in {time.time() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
