"""``generate``, ``models`` and ``schedulers``: the command line's front end to a backend.

Images' paths go to stdout, one per line; progress and messages go to stderr (through
``cli.output``: nothing from a file reaches the terminal raw); bad arguments, and an output folder
that cannot be written, exit with status 2 and every message before anything is generated.
Ctrl+C, wherever it comes, exits with 130: it cancels the job, and every picture already made is
still saved and printed (saving is never interrupted half way). ``generate`` talks to the backend
only through its protocol.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from desktop_app.cli import output
from desktop_app.core.events import Cancelled, Failed, Finished, ImageMade, Progress
from desktop_app.core.options import DEVICES, PRECISIONS, VAE_TILING, RunOptions
from desktop_app.core.recipe import DDPM_VARIANCES, DEFAULT_MODEL_ID, Recipe

# A failed job's kind → the exit status: the user's input (2) or the run itself (1).
EXIT_STATUS = {"invalid": 2, "model": 2, "device": 2, "memory": 1, "server": 1, "internal": 1}
# … and what to do about it, with this command's options
ADVICE = {"device": "Choose another with --device (auto, cpu, cuda, mps).",
          "memory": "Try a smaller --width/--height or --batch, --low-vram, or --device cpu."}


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


def _settings():
    """The user's settings; what went wrong reading them is said once, as a note."""
    from desktop_app.core.settings import Settings

    settings = Settings.load()
    if settings.load_note:
        output.tell(f"note: {settings.load_note}")
    return settings


def _library(folder: Path, dated: bool):
    """The library to save into; without an index when it cannot be opened now (the next scan adds
    the images)."""
    from desktop_app.gallery.library import Library
    from desktop_app.gallery.store import open_default_store

    if not dated:
        return Library(folder, None, dated=False)
    try:
        store = open_default_store([folder])
    except OSError as exc:  # IndexUnavailable: busy, full disk
        output.tell(f"note: the images are saved but not added to the gallery index now: {exc.strerror or exc}")
        store = None
    return Library(folder, store)


def make_backend(model_dirs: list[str], options: RunOptions):
    """The backend ``generate`` runs on: this machine's engine (tests put a scripted one here)."""
    from desktop_app.backend.local import LocalBackend

    return LocalBackend(model_dirs, defaults=options)


def run_generate(args: argparse.Namespace) -> int:
    from desktop_app.core.models import ModelLoadError
    from desktop_app.gallery.save import SaveError, check_output_folder

    options = RunOptions(device=args.device, precision=args.precision, preview="off", fast=args.fast,
                         low_vram=args.low_vram, vae_tiling=args.vae_tiling)
    settings = _settings()
    backend = make_backend(settings.extra_model_dirs, options)
    try:
        info = backend.describe(args.model or DEFAULT_MODEL_ID)
    except ModelLoadError as exc:
        output.error(exc)
        return 2
    recipe = recipe_from_args(args, info.defaults).with_(model_id=info.id)
    problems = recipe.validate(info) + options.problems()
    folder = args.out if args.out is not None else settings.output_path
    if not problems:
        try:
            check_output_folder(folder)  # before generating (and creating it): a bad --out must not cost the run
        except SaveError as exc:
            problems.append(f"{exc.problem}; give --out a folder you can write to")
    if problems:
        for problem in problems:
            output.error(problem)
        return 2
    library = _library(folder, dated=args.out is None)
    try:
        backend.start()
        return _follow(backend, backend.submit(recipe, options), library, args)
    finally:
        backend.close()
        if library.store is not None:
            library.store.close()


@contextmanager
def _ctrl_c_calls(handler: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl+C calls ``handler`` instead of raising KeyboardInterrupt wherever the
    program happens to be (half way through writing a picture, say)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _follow(backend, job_id: str, library, args: argparse.Namespace) -> int:
    """Show the job's progress, save its pictures as they come, and return the exit status."""
    from desktop_app.gallery.save import DiskFullError

    failed_saves = 0
    interrupted = []

    def interrupt() -> None:
        if not interrupted:
            output.tell("cancelling… (pictures already made are still saved)", start="\n")
        interrupted.append(True)
        backend.cancel(job_id)

    with _ctrl_c_calls(interrupt):
        while True:
            event = backend.next_event(0.1)
            if isinstance(event, Progress) and event.job_id == job_id:
                _progress(event)
            elif isinstance(event, ImageMade) and event.job_id == job_id:
                try:
                    output.path(library.save(event.image).path)
                except OSError as exc:  # SaveError / DiskFullError: said with this command's options
                    problem = getattr(exc, "problem", "") or f"the image could not be saved: {exc.strerror or exc}"
                    full = isinstance(exc, DiskFullError)
                    output.error(f"{problem}; {'free some space or ' if full else ''}give --out another folder")
                    failed_saves += 1
            elif isinstance(event, Failed) and event.job_id == job_id:
                output.error(f"{event.message} {ADVICE.get(event.kind, '')}".strip())
                return EXIT_STATUS.get(event.kind, 1)
            elif isinstance(event, Cancelled) and event.job_id == job_id:
                output.tell("cancelled")
                return 130
            elif isinstance(event, Finished) and event.job_id == job_id:
                _summary(event.summary, args)
                return 130 if interrupted else 1 if failed_saves else 0


def _summary(summary, args: argparse.Namespace) -> None:
    if args.fast and summary.device.split(":")[0] != "cuda":
        output.tell("note: --fast applies on a CUDA GPU only; this run used the normal path")
    for line in summary.warnings + summary.notes:
        output.tell(f"warning: {line}")
    output.tell(f"seed {summary.recipe.output.seed} · {summary.timings.get('total', 0):.2f} s · "
                f"{summary.device} {summary.precision}")


def run_models(args: argparse.Namespace) -> int:
    from desktop_app.backend.local.discovery import discover, search_paths

    extra = _settings().extra_model_dirs
    found = discover(extra)
    for info in found.models:
        w, h = info.native_size
        notes = " · classifier guidance" if info.has_classifier else ""
        notes += f" · {info.kind}" if info.kind != "txt2img" else ""
        output.say(f"{info.id:24} {info.family:9} {w}×{h}  latent ÷{info.latent_factor}  {info.name}{notes}")
    for error in found.errors:
        output.tell(f"broken: {error}")
    if not found.models:
        output.tell("no models found in: " + ", ".join(map(str, search_paths(extra))))
    return 0


def run_schedulers(args: argparse.Namespace) -> int:
    from desktop_app.core.schedulers import SCHEDULERS

    for spec in SCHEDULERS.values():
        flags = ", ".join(f for f, on in (("η", spec.takes_eta), ("variance", spec.takes_variance), ("stochastic", spec.stochastic)) if on)
        output.say(f"{spec.name:20} {spec.class_name:34} {flags:22} {spec.description}")
    return 0
