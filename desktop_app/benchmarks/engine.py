"""The engine against plain diffusers, in one process, on the same loaded pipeline.

Both run with the same scheduler, steps, guidance and seed, alternating, so the machine's state
(other load, clock speed) hits both alike. Reported: median seconds per image and the ratios
engine/plain with previews on and off; ``--fast`` then compiles the UNet (on any device here: the
bench is where fast mode is measured before the app offers it) and measures that too.

``--mode img2img`` / ``inpaint`` measure image to image and inpainting against diffusers' own
img2img and inpaint pipelines (built from the same loaded components), on a picture and a mask
written for the run; the engine reads both files each run, as a job does, and pastes the result
back into the picture, which the plain pipeline does not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _times(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_engine_bench(args: argparse.Namespace) -> dict:
    import torch

    from desktop_app.backend.local import device as devices
    from desktop_app.backend.local.engine import Engine
    from desktop_app.backend.local.schedulers import build_scheduler
    from desktop_app.core.options import RunOptions
    from desktop_app.core.recipe import DEFAULT_MODEL_ID, Recipe

    model = args.model
    engine = Engine(compile=_compile_settings(args))
    options = RunOptions(device=args.device, precision=args.precision, preview=args.preview)
    placement = devices.choose(args.device, args.precision)
    if args.arch:
        from desktop_app.backend.local.architectures import random_pipeline

        if not args.random_weights:
            raise SystemExit("--arch needs --random-weights: no weights for these architectures ship with the app")
        folder = Path(tempfile.mkdtemp(prefix="diffuse-bench-")) / args.arch
        info, pipe = random_pipeline(args.arch, placement.device, placement.dtype, folder)
        engine.adopt(info, pipe, options)
        model = info.id
    info = engine.model_info(model or DEFAULT_MODEL_ID)
    size = args.size or info.native_size[0]
    recipe = Recipe.of("a red circle on the left and a blue square", model_id=model or info.id,
                       scheduler=args.scheduler, steps=args.steps, guidance_scale=args.guidance, seed=1234,
                       width=size, height=size, batch_size=args.batch)
    mode = getattr(args, "mode", "txt2img")
    source = _source_files(mode, size, args.strength) if mode != "txt2img" else None
    recipe = engine.resolve(recipe.with_(source=source), info)
    pipe = engine.load(recipe.model.id, options).pipe
    seed, batch = recipe.output.seed, recipe.output.batch_size
    generators = lambda: [torch.Generator("cpu").manual_seed(seed + k) for k in range(batch)]  # noqa: E731
    plain_pipe, extra = _plain_pipeline(mode, pipe, info, source)

    def sync():
        if placement.device.type == "cuda":
            torch.cuda.synchronize()

    def plain():
        plain_pipe.scheduler = build_scheduler(recipe.sampling.scheduler, info.scheduler_config)
        sizes = {} if mode == "img2img" else {"width": size, "height": size}  # img2img takes the picture's size
        plain_pipe(recipe.prompt.text, num_inference_steps=recipe.sampling.steps, guidance_scale=recipe.guidance.scale,
                   num_images_per_prompt=batch, generator=generators(), **sizes, **extra)
        sync()

    def engine_with(preview: str, fast: bool = False):
        run_options = RunOptions(device=args.device, precision=args.precision, preview=preview, fast=fast)

        def go():
            engine.run(recipe, run_options)
            sync()
        return go

    runs = {"plain diffusers": plain, "engine, previews on": engine_with(args.preview), "engine, previews off": engine_with("off")}
    for fn in runs.values():  # warm-up: first calls pay for allocation and kernel selection
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].extend(_times(fn, 1))
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {"model": info.describe(), "placement": placement.describe(), "request": recipe, "medians": medians,
              "times": times, "mode": mode}
    if args.fast:
        # Fast mode changes the loaded UNet in place (fused projections, channels_last), so it is
        # measured after the plain runs, not alternating with them; its ratios use the same plain median.
        started = time.perf_counter()
        warm = engine.run(recipe, RunOptions(device=args.device, precision=args.precision, preview=args.preview, fast=True))
        sync()
        report["warm-up"] = time.perf_counter() - started
        report["fast notes"] = warm.notes
        fast_runs = {"fast mode, previews on": engine_with(args.preview, True), "fast mode, previews off": engine_with("off", True)}
        for fn in fast_runs.values():  # CUDA graphs record on the first calls after compiling
            fn()
        fast_times: dict[str, list[float]] = {name: [] for name in fast_runs}
        for _ in range(args.repeats):
            for name, fn in fast_runs.items():
                fast_times[name].extend(_times(fn, 1))
        medians.update({name: statistics.median(values) for name, values in fast_times.items()})
        times.update(fast_times)
    return report




def _source_files(mode: str, size: int, strength: float):
    """A picture (two coloured squares on grey) and, to inpaint, a mask over its left half, as files."""
    import numpy as np
    from PIL import Image

    from desktop_app.core.recipe import Inpainting, Source

    folder = Path(tempfile.mkdtemp(prefix="diffuse-bench-source-"))
    pixels = np.full((size, size, 3), 200, np.uint8)
    pixels[size // 8:size // 2, size // 8:size // 2] = (210, 40, 40)
    pixels[size // 2:size * 7 // 8, size // 2:size * 7 // 8] = (40, 60, 210)
    Image.fromarray(pixels).save(folder / "start.png")
    if mode == "img2img":
        return Source(str(folder / "start.png"), strength=strength)
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (0, 0, size // 2, size))
    mask.save(folder / "mask.png")
    return Source(str(folder / "start.png"), str(folder / "mask.png"), strength, inpaint=Inpainting(blur=0))


def _plain_pipeline(mode: str, pipe, info, source):
    """diffusers' own pipeline for ``mode`` on the loaded components, and its extra call arguments."""
    if mode == "txt2img":
        return pipe, {}
    import diffusers
    from PIL import Image

    xl = "XL" in info.pipeline_class
    name = {("img2img", False): "StableDiffusionImg2ImgPipeline", ("img2img", True): "StableDiffusionXLImg2ImgPipeline",
            ("inpaint", False): "StableDiffusionInpaintPipeline", ("inpaint", True): "StableDiffusionXLInpaintPipeline"}
    if pipe.__class__.__name__ == name[(mode, xl)]:
        plain = pipe
    else:
        extra = {} if xl else {"requires_safety_checker": False}
        plain = getattr(diffusers, name[(mode, xl)])(**pipe.components, **extra)
        plain.set_progress_bar_config(disable=True)
    arguments = {"image": Image.open(source.image).convert("RGB"), "strength": source.strength}
    if mode == "inpaint":
        arguments["mask_image"] = Image.open(source.mask)
    return plain, arguments


def _compile_settings(args: argparse.Namespace):
    """The bench compiles on whatever device it runs on, with the backend asked for."""
    from desktop_app.backend.local.performance import CompileSettings

    return CompileSettings(backend=args.compile_backend, devices=("cuda", "cpu", "mps"))
