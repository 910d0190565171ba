"""``generate``, ``models`` and ``schedulers``: the command line's front end to a backend.

Images' paths go to stdout, one per line; progress and messages go to stderr; bad arguments exit
with status 2 and every validation message; Ctrl+C cancels the job, saves nothing half-made and
exits with 130. ``generate`` talks to the backend only through its protocol.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop_app.cli.image_args import add_image_arguments, file_problems, with_image_parts
from desktop_app.core.events import Cancelled, Failed, Finished, ImageMade, Progress
from desktop_app.core.options import DEVICES, PRECISIONS, VAE_TILING, RunOptions
from desktop_app.core.recipe import DDPM_VARIANCES, DEFAULT_MODEL_ID, Recipe

# A failed job's kind → the exit status: the user's input (2) or the run itself (1).
EXIT_STATUS = {"invalid": 2, "model": 2, "device": 2, "memory": 1, "server": 1, "internal": 1}


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model id (see `models`) or a model folder; default: the built-in model")
    p.add_argument("--prompt", required=True, help="what to draw")
    p.add_argument("--negative", default="", help="what to steer away from")
    p.add_argument("--scheduler", default=None, help="scheduler name (see `schedulers`)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=None, help="default: a random seed, printed to stderr")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0 deterministic … 1 DDPM-like)")
    p.add_argument("--ddpm-variance", choices=list(DDPM_VARIANCES), default="fixed_small",
                   help="DDPM σ²: fixed_small = β̃ₜ, fixed_large = βₜ")
    p.add_argument("--classifier-target", default="", help="classifier guidance towards these classes, e.g. 'red circle'")
    p.add_argument("--classifier-scale", type=float, default=0.0, help="classifier guidance scale")
    p.add_argument("--device", default="auto", choices=list(DEVICES))
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS))
    p.add_argument("--fast", action="store_true",
                   help="fast mode on a CUDA GPU: fused attention projections, channels_last, a compiled UNet "
                        "(the first run for a model and size compiles; later launches reuse the cache)")
    p.add_argument("--low-vram", action="store_true", help="keep each model part on the GPU only while it runs, decode in tiles")
    p.add_argument("--vae-tiling", choices=list(VAE_TILING), default="auto",
                   help="decode in tiles: auto does for images over twice the model's native area")
    p.add_argument("--out", type=Path, default=None,
                   help="folder to write the PNG files into (not added to the gallery); "
                        "default: the gallery's pictures folder, in date subfolders")
    add_image_arguments(p)


def _progress(update: Progress) -> None:
    if update.phase == "warm-up":
        sys.stderr.write("fast mode: compiling the UNet for this size (the first time takes minutes; "
                         "later launches use the cache)…\n")
        sys.stderr.flush()
        return
    width = 30
    filled = int(width * update.step / update.total)
    bar = "█" * filled + "·" * (width - filled)
    sys.stderr.write(f"\r{bar} {update.step}/{update.total} {update.its_per_sec:5.1f} it/s")
    if update.step == update.total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def recipe_from_args(args: argparse.Namespace, defaults: dict) -> Recipe:
    pick = lambda value, key, fallback: value if value is not None else defaults.get(key, fallback)  # noqa: E731
    return Recipe.of(
        args.prompt, negative_prompt=args.negative, model_id=args.model or DEFAULT_MODEL_ID,
        scheduler=pick(args.scheduler, "scheduler", "DPM++ 2M"), steps=pick(args.steps, "steps", 20),
        guidance_scale=pick(args.guidance, "guidance_scale", 7.0), seed=args.seed, width=args.width,
        height=args.height, batch_size=args.batch, eta=args.eta, ddpm_variance=args.ddpm_variance,
        classifier_target=args.classifier_target, classifier_scale=args.classifier_scale,
    )


def _library(out: Path | None):
    from desktop_app.core.settings import Settings
    from desktop_app.gallery.library import Library
    from desktop_app.gallery.store import open_default_store

    if out is not None:
        return Library(out, None, dated=False)
    output = Settings.load().output_path
    return Library(output, open_default_store([output]))


def run_generate(args: argparse.Namespace) -> int:
    from desktop_app.backend.local import LocalBackend
    from desktop_app.core.models import ModelLoadError
    from desktop_app.core.settings import Settings

    options = RunOptions(device=args.device, precision=args.precision, preview="off", fast=args.fast,
                         low_vram=args.low_vram, vae_tiling=args.vae_tiling)
    bad_files = file_problems(args)
    if bad_files:
        for line in bad_files:
            print(f"error: {line}", file=sys.stderr)
        return 2
    backend = LocalBackend(Settings.load().extra_model_dirs, defaults=options)
    try:
        info = backend.describe(args.model or DEFAULT_MODEL_ID)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    recipe = with_image_parts(recipe_from_args(args, info.defaults).with_(model_id=info.id), args, info)
    problems = recipe.validate(info) + options.problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    library = _library(args.out)
    try:
        backend.start()
        return _follow(backend, backend.submit(recipe, options), library, args)
    finally:
        backend.close()
        if library.store is not None:
            library.store.close()


def _follow(backend, job_id: str, library, args: argparse.Namespace) -> int:
    """Show the job's progress, save its pictures as they come, and return the exit status."""
    failed_saves = 0
    while True:
        try:
            event = backend.next_event(0.1)
        except KeyboardInterrupt:
            backend.cancel(job_id)
            print("\ncancelling…", file=sys.stderr)
            continue
        if isinstance(event, Progress) and event.job_id == job_id:
            _progress(event)
        elif isinstance(event, ImageMade) and event.job_id == job_id:
            try:
                print(library.save(event.image).path, flush=True)
            except OSError as exc:
                print(f"error: could not save the image: {exc.strerror or exc}", file=sys.stderr)
                failed_saves += 1
        elif isinstance(event, Failed) and event.job_id == job_id:
            print(f"error: {event.message}", file=sys.stderr)
            return EXIT_STATUS.get(event.kind, 1)
        elif isinstance(event, Cancelled) and event.job_id == job_id:
            print("cancelled", file=sys.stderr)
            return 130
        elif isinstance(event, Finished) and event.job_id == job_id:
            summary = event.summary
            if args.fast and summary.device.split(":")[0] != "cuda":
                print("note: --fast applies on a CUDA GPU only; this run used the normal path", file=sys.stderr)
            for line in summary.warnings + summary.notes:
                print(f"warning: {line}", file=sys.stderr)
            print(f"seed {summary.recipe.output.seed} · {summary.timings.get('total', 0):.2f} s · "
                  f"{summary.device} {summary.precision}", file=sys.stderr)
            return 1 if failed_saves else 0


def run_models(args: argparse.Namespace) -> int:
    from desktop_app.backend.local.discovery import discover, search_paths
    from desktop_app.core.settings import Settings

    extra = Settings.load().extra_model_dirs
    found = discover(extra)
    for info in found.models:
        w, h = info.native_size
        notes = " · classifier guidance" if info.has_classifier else ""
        notes += f" · {info.kind}" if info.kind != "txt2img" else ""
        print(f"{info.id:24} {info.family:9} {w}×{h}  latent ÷{info.latent_factor}  {info.name}{notes}")
    for error in found.errors:
        print(f"broken: {error}", file=sys.stderr)
    if not found.models:
        print("no models found in: " + ", ".join(map(str, search_paths(extra))), file=sys.stderr)
    return 0


def run_schedulers(args: argparse.Namespace) -> int:
    from desktop_app.core.schedulers import SCHEDULERS

    for spec in SCHEDULERS.values():
        flags = ", ".join(f for f, on in (("η", spec.takes_eta), ("variance", spec.takes_variance), ("stochastic", spec.stochastic)) if on)
        print(f"{spec.name:20} {spec.class_name:34} {flags:22} {spec.description}")
    return 0
