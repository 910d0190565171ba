"""``diffuse-studio bench``: the engine against plain diffusers, in one process.

Both run on the same loaded pipeline, scheduler, steps, guidance and seed, alternating, so the
machine's state (other load, clock speed) hits both alike. Reported: median seconds per image
and the ratios engine/plain with previews on and off. ``--gui``, ``--gallery`` and ``--models`` run
the window's, the gallery's and the single-file checkpoints' benchmarks instead.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from desktop_app.core.arguments import number, whole
    from desktop_app.core.recipe import MAX_BATCH, MAX_GUIDANCE, MAX_PIXELS, MAX_STEPS

    p.add_argument("--model", default=None, help="model id or folder (default: the built-in model)")
    p.add_argument("--scheduler", default="DPM++ 2M")
    p.add_argument("--steps", type=whole(1, MAX_STEPS), default=20)
    p.add_argument("--guidance", type=number(0, MAX_GUIDANCE), default=7.5)
    p.add_argument("--size", type=whole(8, MAX_PIXELS), default=None, help="image side in pixels (default: the model's native size)")
    p.add_argument("--batch", type=whole(1, MAX_BATCH), default=1)
    p.add_argument("--repeats", type=whole(1, 1000), default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--preview", default="latent", choices=["latent", "vae"], help="preview mode for the 'previews on' runs")
    p.add_argument("--arch", choices=["sd15", "sdxl", "tiny-sd", "tiny-sdxl"], default=None,
                   help="benchmark an architecture built from its config instead of a model folder")
    p.add_argument("--random-weights", action="store_true", help="with --arch: random weights (speed does not depend on them)")
    p.add_argument("--fast", action="store_true",
                   help="also measure fast mode (compiled UNet) after the default runs, with its warm-up time")
    p.add_argument("--compile-backend", default="inductor", help="with --fast: the torch.compile backend")
    p.add_argument("--mode", choices=["txt2img", "img2img", "inpaint"], default="txt2img",
                   help="what to measure: text to image, image to image or inpainting, each against diffusers' own pipeline")
    p.add_argument("--strength", type=float, default=0.75, help="with --mode img2img/inpaint: the denoising strength")
    p.add_argument("--gui", action="store_true", help="measure the window: start-up time, event-loop stalls, preview rate")
    p.add_argument("--gallery", action="store_true", help="measure the gallery with 10,000 images")
    p.add_argument("--gallery-size", type=whole(1, 1_000_000), default=10_000)
    p.add_argument("--models", action="store_true",
                   help="measure a single-file checkpoint (about 2 GiB, made here): listing, loading, hashing")
    p.add_argument("--models-arch", default="sd15", help="with --models: the architecture of the file")


def run(args: argparse.Namespace) -> int:
    if args.gui:
        from desktop_app.benchmarks.window import run_gui_bench

        return run_gui_bench(args)
    if args.models:
        from desktop_app.benchmarks import models as models_bench

        return models_bench.run(args)
    if args.gallery:
        from desktop_app.benchmarks.gallery import run_gallery_bench

        report = run_gallery_bench(args.gallery_size)
        for key, value in report.items():
            print(f"{key:40} {value}")
        return 0
    from desktop_app.benchmarks.engine import run_engine_bench

    report = run_engine_bench(args)
    r, m = report["request"], report["medians"]
    print(f"model: {report['model']} on {report['placement']} · {report['mode']}"
          + (f", strength {r.source.strength:g}" if r.source is not None else ""))
    print(f"{r.sampling.scheduler}, {r.sampling.steps} steps, guidance {r.guidance.scale:g}, {r.output.width}×{r.output.height}, "
          f"batch {r.output.batch_size}, "
          f"{args.repeats} alternating repeats (median)")
    base = m["plain diffusers"]  # txt2img: the SD pipeline; img2img / inpaint: diffusers' img2img / inpaint pipeline
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
