"""``generate``, ``models`` and ``schedulers``: the command line's front end to a backend.

Images' paths go to stdout, one per line; progress and messages go to stderr (through
``cli.output``: nothing from a file reaches the terminal raw); bad arguments, and an output folder
that cannot be written, exit with status 2 and every message before anything is generated.
Ctrl+C, wherever it comes, exits with 130: it cancels the job, and every picture already made is
still saved and printed (saving is never interrupted half way). ``generate`` talks to the backend
only through its protocol: this computer's engine, or a ComfyUI server (``--server``). ``--model``
takes a model id, a model folder or a checkpoint file; LoRAs come from the prompt's
``<lora:name:weight>`` tags, embeddings from their names in it (both from the model folders and the
other apps' roots of the settings, or ``--root``).
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
from desktop_app.cli.image_args import add_image_arguments, file_problems, with_image_parts
from desktop_app.core.events import Cancelled, Failed, Finished, ImageMade, Progress
from desktop_app.core.options import DEVICES, PRECISIONS, VAE_TILING, RunOptions
from desktop_app.core.recipe import DDPM_VARIANCES, DEFAULT_MODEL_ID, Recipe

# A failed job's kind → the exit status: the user's input (2) or the run itself (1).
EXIT_STATUS = {"invalid": 2, "model": 2, "prediction": 2, "device": 2, "memory": 1, "server": 1, "internal": 1}
# … and what to do about it, with this command's options
ADVICE = {"device": "Choose another with --device (auto, cpu, cuda, mps).",
          "memory": "Try a smaller --width/--height or --batch, --low-vram, or --device cpu.",
          "prediction": "Run it again with --prediction epsilon (the 512-pixel SD 2.x models) or --prediction v "
                        "(the 768-pixel ones); the choice is remembered for this file."}
PREDICTION_CHOICES = {"epsilon": "epsilon", "eps": "epsilon", "v": "v_prediction", "v_prediction": "v_prediction"}


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model id (see `models`), a model folder or a checkpoint file (.safetensors, .ckpt); "
                        "default: the built-in model")
    p.add_argument("--vae", default=None, help="a VAE for the model: its name (see `models`) or its file")
    p.add_argument("--prediction", choices=sorted(PREDICTION_CHOICES), default=None,
                   help="for an SD 2.x file that does not say: what it predicts (epsilon: the 512-pixel models, "
                        "v: the 768-pixel ones); remembered for the file")
    p.add_argument("--root", action="append", default=[], metavar="PATH",
                   help="another app's folder (AUTOMATIC1111, ComfyUI, InvokeAI) to take models from, for this run")
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
    p.add_argument("--server", metavar="URL", default=None,
                   help="run the job on a ComfyUI server (http[s]://host:port) instead of this computer")
    p.add_argument("--token", default=None,
                   help="with --server: a bearer token for a server behind a proxy (default: the one in the keyring)")
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


def load_settings():
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


def add_models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", action="append", default=[], metavar="PATH",
                   help="another app's folder to list too, for this run")
    p.add_argument("--add-root", action="append", default=[], metavar="PATH",
                   help="add another app's folder (AUTOMATIC1111/Forge, ComfyUI, InvokeAI, a Hugging Face cache) "
                        "to the settings: its models are used in place, never copied")


def _file_model_problem(info) -> str | None:
    """For a checkpoint file that cannot start a picture: the one-line reason, naming the file."""
    from desktop_app.backend.local import checkpoint_facts, model_files
    from desktop_app.core.models import ModelLoadError

    if info.kind == "txt2img" or not Path(info.path).is_file():
        return None
    try:
        checkpoint_facts.require_kind(model_files.header_and_facts(Path(info.path))[1], "txt2img")
    except ModelLoadError as exc:
        return str(exc)
    return None


def make_backend(settings, args: argparse.Namespace, options: RunOptions):
    """The backend ``generate`` runs on: a ComfyUI server with ``--server``, else this computer's
    engine (tests put a scripted one here). Raises ``ConnectionError`` for a server that is not there."""
    if args.server:
        from desktop_app.backend.remote.comfyui import connect

        return connect(args.server, args.token)
    from desktop_app.backend.local import LocalBackend

    return LocalBackend(settings.extra_model_dirs, defaults=options, app_roots=[*settings.app_roots, *args.root])


def run_generate(args: argparse.Namespace) -> int:
    from desktop_app.core.model_choices import remember_prediction
    from desktop_app.core.models import ModelLoadError
    from desktop_app.core.recipe import AddOn
    from desktop_app.gallery.save import SaveError, check_output_folder

    options = RunOptions(device=args.device, precision=args.precision, preview="off", fast=args.fast,
                         low_vram=args.low_vram, vae_tiling=args.vae_tiling)
    bad_files = file_problems(args)
    if bad_files:
        for line in bad_files:
            output.error(line)
        return 2
    settings = load_settings()
    try:
        backend = make_backend(settings, args, options)
    except ConnectionError as exc:
        output.error(exc)
        return 2
    try:
        info = backend.describe(args.model or DEFAULT_MODEL_ID)
        if args.prediction and Path(info.path).is_file():
            remember_prediction(info.path, PREDICTION_CHOICES[args.prediction])
            backend.refresh_models()
            info = backend.describe(info.id)
    except ModelLoadError as exc:
        output.error(exc)
        backend.close()
        return 2
    recipe = with_image_parts(recipe_from_args(args, info.defaults).with_(model_id=info.id), args, info)
    if args.vae:
        recipe = recipe.with_(add_ons=(*recipe.model.add_ons, AddOn("vae", args.vae)))
    problems = [str(p) for p in recipe.validate(info) + options.problems()]
    wrong_kind = _file_model_problem(info)
    if wrong_kind:
        problems = [wrong_kind] + [p for p in problems if not p.startswith("id:")]
    folder = args.out if args.out is not None else settings.output_path
    if not problems:
        try:
            check_output_folder(folder)  # before generating (and creating it): a bad --out must not cost the run
        except SaveError as exc:
            problems.append(f"{exc.problem}; give --out a folder you can write to")
    if problems:
        for problem in problems:
            output.error(problem)
        backend.close()
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
    if args.fast and not args.server and summary.device.split(":")[0] != "cuda":
        output.tell("note: --fast applies on a CUDA GPU only; this run used the normal path")
    for line in summary.warnings + summary.notes:
        output.tell(f"warning: {line}")
    output.tell(f"seed {summary.recipe.output.seed} · {summary.timings.get('total', 0):.2f} s · "
                f"{summary.device} {summary.precision}")


def _size(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB" if size else "—"


def run_models(args: argparse.Namespace) -> int:
    """Every model and add-on found, by kind and family, each file once; broken files to stderr."""
    from desktop_app.backend.local.discovery import discover, search_paths
    from desktop_app.core.models import ADD_ON_LABELS

    settings = load_settings()
    added = [str(Path(p).expanduser().resolve()) for p in getattr(args, "add_root", [])]
    if added:
        settings.app_roots = [*settings.app_roots, *(p for p in added if p not in settings.app_roots)]
        settings.save()
        output.tell(f"added to the settings: {', '.join(added)}")
    extra = settings.extra_model_dirs
    found = discover(extra, [*settings.app_roots, *getattr(args, "root", [])])
    if found.models:
        output.say("Models")
    for info in found.models:
        w, h = info.native_size
        notes = " · classifier guidance" if info.has_classifier else ""
        notes += f" · {info.kind}" if info.kind != "txt2img" else ""
        where = "file" if Path(info.path).is_file() else "folder"
        output.say(f"  {info.id:24} {info.family:9} {w}×{h}  latent ÷{info.latent_factor}  {_size(info.size):>8}  "
                   f"{where}  {info.name}{notes}")
    for kind, label in ADD_ON_LABELS.items():
        add_ons = found.add_ons_of(kind)
        if add_ons:
            output.say(f"{label}s" if not label.endswith("s") else label)
        for add_on in sorted(add_ons, key=lambda a: ((a.family or "~"), a.name.casefold())):
            variant = f" ({add_on.variant})" if add_on.variant and add_on.variant not in ("lora", "ldm") else ""
            output.say(f"  {add_on.name:24} {add_on.family or 'any family':9} {_size(add_on.size):>8}{variant}  {add_on.path}")
    for folder in found.offline:
        output.say(f"offline (not there now, kept in the settings): {folder}")
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
