"""Command-line front end to the engine: generate, models, schedulers, bench.

Images' paths go to stdout, one per line; progress and messages go to stderr; bad arguments exit
with status 2 and every validation message.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from desktop_app.engine.request import GenerationRequest

log = logging.getLogger(__name__)


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
    p.add_argument("--ddpm-variance", choices=["fixed_small", "fixed_large"], default="fixed_small",
                   help="DDPM σ²: fixed_small = β̃ₜ, fixed_large = βₜ")
    p.add_argument("--classifier-target", default="", help="classifier guidance towards these classes, e.g. 'red circle'")
    p.add_argument("--classifier-scale", type=float, default=0.0, help="classifier guidance scale")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--fast", action="store_true",
                   help="fast mode on a CUDA GPU: fused attention projections, channels_last, a compiled UNet "
                        "(the first run for a model and size compiles; later launches reuse the cache)")
    p.add_argument("--low-vram", action="store_true", help="keep each model part on the GPU only while it runs, decode in tiles")
    p.add_argument("--vae-tiling", choices=["auto", "on", "off"], default="auto",
                   help="decode in tiles: auto does for images over twice the model's native area")
    p.add_argument("--out", type=Path, required=True, help="folder to write PNG files into")


def _progress(update) -> None:
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


def request_from_args(args: argparse.Namespace, defaults: dict) -> GenerationRequest:
    pick = lambda value, key, fallback: value if value is not None else defaults.get(key, fallback)  # noqa: E731
    return GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative, model_id=args.model or GenerationRequest.model_id,
        scheduler=pick(args.scheduler, "scheduler", "DPM++ 2M"), steps=pick(args.steps, "steps", 20),
        guidance_scale=pick(args.guidance, "guidance_scale", 7.0), seed=args.seed, width=args.width,
        height=args.height, batch_size=args.batch, eta=args.eta, ddpm_variance=args.ddpm_variance,
        classifier_target=args.classifier_target, classifier_scale=args.classifier_scale, preview="off",
    )


def run_generate(args: argparse.Namespace) -> int:
    from desktop_app.engine import Engine
    from desktop_app.engine.device import DeviceError
    from desktop_app.engine.generate import InvalidRequest
    from desktop_app.engine.models import ModelLoadError
    from desktop_app.engine.performance import Performance, describe_error, out_of_memory
    from desktop_app.gallery.save import save_image

    model_id = args.model or GenerationRequest.model_id
    performance = Performance(fast=args.fast, low_vram=args.low_vram, vae_tiling=args.vae_tiling)
    try:
        engine = Engine(args.device, args.precision, performance=performance)
        info = engine.model_info(model_id)
    except (DeviceError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    request = request_from_args(args, info.defaults).replace(model_id=str(info.path) if Path(model_id).is_dir() else model_id)
    problems = request.validate(info)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    try:
        result = engine.run(request, cancel, on_step=_progress)
    except KeyboardInterrupt:
        cancel.set()
        print("\ncancelled", file=sys.stderr)
        return 130
    except (InvalidRequest, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        print(f"error: the device ran out of memory, also in low-VRAM mode ({describe_error(exc)}); "
              "try a smaller size or batch, or --device cpu", file=sys.stderr)
        return 1
    if args.fast and engine.placement.device.type != "cuda":
        print("note: --fast applies on a CUDA GPU only; this run used the normal path", file=sys.stderr)
    for warning in result.warnings + result.notes:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"seed {result.request.seed} · {result.timings.get('total', 0):.2f} s · {result.device} {result.precision}", file=sys.stderr)
    extra = {"device": result.device, "precision": result.precision, "timings": result.timings}
    for k, image in enumerate(result.images):
        try:
            path = save_image(image, result.request, model=result.model, output_dir=args.out, index_in_batch=k, extra=extra,
                              dated=False)
        except OSError as exc:
            print(f"error: could not save the image: {exc}", file=sys.stderr)
            return 1
        print(path)
    return 0


def run_models(args: argparse.Namespace) -> int:
    from desktop_app.engine.models import discover, search_paths

    found = discover()
    for info in found.models:
        w, h = info.native_size
        extra = " · classifier guidance" if info.has_classifier else ""
        print(f"{info.id:24} {info.family:9} {w}×{h}  latent ÷{info.latent_factor}  {info.name}{extra}")
    for error in found.errors:
        print(f"broken: {error}", file=sys.stderr)
    if not found.models:
        print("no models found in: " + ", ".join(map(str, search_paths())), file=sys.stderr)
    return 0


def run_schedulers(args: argparse.Namespace) -> int:
    from desktop_app.engine.schedulers import SCHEDULERS

    for spec in SCHEDULERS.values():
        flags = ", ".join(f for f, on in (("η", spec.takes_eta), ("variance", spec.takes_variance), ("stochastic", spec.stochastic)) if on)
        print(f"{spec.name:20} {spec.class_name:34} {flags:22} {spec.description}")
    return 0
