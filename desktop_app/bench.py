"""``diffuse-studio bench``: the engine against plain diffusers, in one process.

Both run on the same loaded pipeline, scheduler, steps, guidance and seed, alternating, so the
machine's state (other load, clock speed) hits both alike. Reported: median seconds per image
and the ratios engine/plain with previews on and off. ``--gui`` and ``--gallery`` run the window's
and the gallery's benchmarks instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model id or folder (default: the built-in model)")
    p.add_argument("--scheduler", default="DPM++ 2M")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default: the model's native size)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--preview", default="latent", choices=["latent", "vae"], help="preview mode for the 'previews on' runs")
    p.add_argument("--arch", choices=["sd15", "sdxl", "tiny-sd", "tiny-sdxl"], default=None,
                   help="benchmark an architecture built from its config instead of a model folder")
    p.add_argument("--random-weights", action="store_true", help="with --arch: random weights (speed does not depend on them)")
    p.add_argument("--fast", action="store_true",
                   help="also measure fast mode (compiled UNet) after the default runs, with its warm-up time")
    p.add_argument("--compile-backend", default="inductor", help="with --fast: the torch.compile backend")
    p.add_argument("--gui", action="store_true", help="measure the window: start-up time, event-loop stalls, preview rate")
    p.add_argument("--gallery", action="store_true", help="measure the gallery with 10,000 images")
    p.add_argument("--gallery-size", type=int, default=10_000)


def _median_time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_engine_bench(args: argparse.Namespace) -> dict:
    import tempfile

    import torch

    from desktop_app.engine import Engine, GenerationRequest
    from desktop_app.engine.schedulers import build_scheduler

    model = args.model
    engine = Engine(args.device, args.precision)
    if args.arch:
        from desktop_app.engine.architectures import random_pipeline

        if not args.random_weights:
            raise SystemExit("--arch needs --random-weights: no weights for these architectures ship with the app")
        folder = Path(tempfile.mkdtemp(prefix="diffuse-bench-")) / args.arch
        info, pipe = random_pipeline(args.arch, engine.placement.device, engine.placement.dtype, folder)
        engine.adopt(info, pipe)
        model = info.id
    info = engine.model_info(model or GenerationRequest.model_id)
    size = args.size or info.native_size[0]
    request = GenerationRequest(prompt="a red circle on the left and a blue square", model_id=model or info.id,
                                scheduler=args.scheduler, steps=args.steps, guidance_scale=args.guidance, seed=1234,
                                width=size, height=size, batch_size=args.batch)
    request = engine.resolve(request, info)
    pipe = engine.load(request.model_id).pipe
    generators = lambda: [torch.Generator("cpu").manual_seed(request.seed + k) for k in range(request.batch_size)]  # noqa: E731

    def sync():
        if engine.placement.device.type == "cuda":
            torch.cuda.synchronize()

    def plain():
        pipe.scheduler = build_scheduler(request.scheduler, info.scheduler_config)
        pipe(request.prompt, num_inference_steps=request.steps, guidance_scale=request.guidance_scale, width=size, height=size,
             num_images_per_prompt=request.batch_size, generator=generators())
        sync()

    def engine_with(preview: str):
        def go():
            engine.run(request.replace(preview=preview))
            sync()
        return go

    runs = {"plain diffusers": plain, "engine, previews on": engine_with(args.preview), "engine, previews off": engine_with("off")}
    for fn in runs.values():  # warm-up: first calls pay for allocation and kernel selection
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].extend(_median_time(fn, 1))
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {"model": info.describe(), "placement": engine.placement.describe(), "request": request, "medians": medians,
              "times": times}
    if args.fast:
        # Fast mode changes the loaded UNet in place (fused projections, channels_last), so it is
        # measured after the plain runs, not alternating with them; its ratios use the same plain median.
        loaded = engine.load(request.model_id)
        loaded.enable_fast(args.compile_backend)
        started = time.perf_counter()
        warm = engine.run(request.replace(preview=args.preview))
        sync()
        report["warm-up"] = time.perf_counter() - started
        report["fast notes"] = warm.notes
        fast_runs = {"fast mode, previews on": engine_with(args.preview), "fast mode, previews off": engine_with("off")}
        for fn in fast_runs.values():  # CUDA graphs record on the first calls after compiling
            fn()
        fast_times: dict[str, list[float]] = {name: [] for name in fast_runs}
        for _ in range(args.repeats):
            for name, fn in fast_runs.items():
                fast_times[name].extend(_median_time(fn, 1))
        medians.update({name: statistics.median(values) for name, values in fast_times.items()})
        times.update(fast_times)
    return report


def run(args: argparse.Namespace) -> int:
    if args.gui:
        from desktop_app.gui.bench import run_gui_bench

        return run_gui_bench(args)
    if args.gallery:
        from desktop_app.gallery.bench import run_gallery_bench

        report = run_gallery_bench(args.gallery_size)
        for key, value in report.items():
            print(f"{key:40} {value}")
        return 0
    report = run_engine_bench(args)
    r, m = report["request"], report["medians"]
    print(f"model: {report['model']} on {report['placement']}")
    print(f"{r.scheduler}, {r.steps} steps, guidance {r.guidance_scale:g}, {r.width}×{r.height}, batch {r.batch_size}, "
          f"{args.repeats} alternating repeats (median)")
    base = m["plain diffusers"]
    for name, value in m.items():
        print(f"  {name:24} {value:8.3f} s/image   ratio {value / base:5.3f}")
    on, off = m["engine, previews on"], m["engine, previews off"]
    print(f"  preview overhead (on / off): {on / off:5.3f}")
    if "warm-up" in report:
        print(f"  fast mode warm-up (first call, compiling): {report['warm-up']:.1f} s")
        print(f"  fast-mode preview overhead (on / off): {m['fast mode, previews on'] / m['fast mode, previews off']:5.3f}")
        for note in report["fast notes"]:
            print(f"  note: {note}")
    sys.stdout.flush()
    return 0
