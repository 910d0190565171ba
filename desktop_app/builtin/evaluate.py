"""Evaluate the Shapes model: ``python -m desktop_app.builtin.evaluate [--model PATH]``.

Generates pictures for held-out prompts through the app's own engine and judges them with the
classical analyser (``desktop_app.builtin.analyse``). Held out means never seen in training: the
one-object prompts name (colour, shape, position) triples and the two-object prompts name
ordered (colour shape, colour shape) pairs that the training set excludes (``data.is_held_out``).

Prints accuracy per guidance scale, per scheduler and for classifier guidance, the analyser's
own accuracy on clean renders, and load / generation times; ``--json`` saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from desktop_app.builtin.analyse import analyse
from desktop_app.builtin.data import (
    CELLS,
    COLOURS,
    POSITION_PHRASES,
    SHAPES,
    ShapesDataset,
    held_out_main,
    held_out_pair,
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    prompt: str
    seed: int
    objects: tuple[tuple[str, str], ...]  # (colour, shape) asked for, main object first
    cell: str = ""  # asked-for cell of a single object, "" when not asked


def one_object_cases(count: int) -> list[Case]:
    triples = [(c, s, p) for c in COLOURS for s in SHAPES for p in CELLS if held_out_main(c, s, p)]
    cases = []
    for k, (colour, shape, cell) in enumerate(triples[:count]):
        det = "an" if colour == "orange" else "a"
        cases.append(
            Case(f"{det} {colour} {shape} {POSITION_PHRASES[cell][0]}", 1000 + k, ((colour, shape),), cell)
        )
    return cases


def two_object_cases(count: int) -> list[Case]:
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    pairs = [(a, b) for a in kinds for b in kinds if a != b and held_out_pair(a, b)]
    step = max(1, len(pairs) // count)
    cases = []
    for k, (a, b) in enumerate(pairs[::step][:count]):
        det_a = "an" if a[0] == "orange" else "a"
        det_b = "an" if b[0] == "orange" else "a"
        cases.append(Case(f"{det_a} {a[0]} {a[1]} and {det_b} {b[0]} {b[1]}", 2000 + k, (a, b)))
    return cases


def classifier_cases(per_target: int) -> list[tuple[str, str, int]]:
    """(head, target label, seed): guidance towards one shape kind or one colour, empty prompt."""
    cases = []
    for head, labels in (("shape", SHAPES), ("colour", tuple(COLOURS))):
        for label in labels:
            for k in range(per_target):
                cases.append((head, label, 3000 + 17 * k))
    return cases


class Evaluator:
    def __init__(self, model: str, device: str = "cpu"):
        from desktop_app.backend.local.engine import Engine
        from desktop_app.core.options import RunOptions

        self.engine = Engine()
        self.options = RunOptions(device=device, preview="off")
        self.model = model
        self.seconds: list[float] = []

    def generate(self, prompt: str, seed: int, **settings):
        from desktop_app.core.recipe import Recipe

        recipe = Recipe.of(prompt, model_id=self.model, seed=seed, **settings)
        started = time.perf_counter()
        image = self.engine.run(recipe, self.options).images[0]
        self.seconds.append(time.perf_counter() - started)
        return image

    def score_prompts(self, cases: list[Case], **settings) -> dict[str, float]:
        colour_shape = position = both = 0
        for case in cases:
            found = analyse(self.generate(case.prompt, case.seed, **settings))
            if len(case.objects) == 1:
                main = found.main
                ok = main is not None and (main.colour, main.shape) == case.objects[0]
                colour_shape += ok
                position += ok and main.cell == case.cell
            else:
                remaining = list(found.objects)
                matched = 0
                for colour, shape in case.objects:
                    hit = next((o for o in remaining if o.colour == colour and o.shape == shape), None)
                    if hit is not None:
                        remaining.remove(hit)
                        matched += 1
                both += matched == len(case.objects)
        n = max(len(cases), 1)
        if cases and len(cases[0].objects) == 1:
            return {"colour+shape": colour_shape / n, "position": position / n}
        return {"both right": both / n}

    def score_classifier(self, cases: list[tuple[str, str, int]], scale: float, **settings) -> float:
        right = 0
        for head, label, seed in cases:
            target = dict(classifier_target=label, classifier_scale=scale) if scale > 0 else {}
            main = analyse(self.generate("", seed, **settings, **target)).main
            right += main is not None and (main.shape if head == "shape" else main.colour) == label
        return right / max(len(cases), 1)


def analyser_accuracy(count: int = 500, seed: int = 123) -> float:
    data = ShapesDataset(seed, allow_held_out=True)
    right = total = 0
    for index in range(count):
        image, _, scene = data.item(index)
        found = list(analyse(image).objects)
        for obj in scene.objects:
            total += 1
            right += any((f.colour, f.shape, f.cell) == (obj.colour, obj.shape, obj.cell) for f in found)
    return right / total


def speed(evaluator: Evaluator, repeats: int = 5) -> dict[str, float]:
    from desktop_app.backend.local.engine import Engine

    fresh = Engine()
    started = time.perf_counter()
    fresh.load(evaluator.model, evaluator.options)
    load = time.perf_counter() - started
    evaluator.generate("a red circle", 0, scheduler="DDIM", steps=20, guidance_scale=5.0)  # warm up
    evaluator.seconds.clear()
    for k in range(repeats):
        evaluator.generate("a red circle in the centre", k, scheduler="DDIM", steps=20, guidance_scale=5.0)
    return {"load_s": load, "image_s_median": statistics.median(evaluator.seconds)}


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def main(argv: list[str] | None = None) -> int:
    from desktop_app.builtin.train import default_out

    parser = argparse.ArgumentParser(
        prog="python -m desktop_app.builtin.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", default=str(default_out()), help="model id or folder (default: models/shapes)"
    )
    parser.add_argument(
        "--one", type=int, default=40, help="one-object prompts (there are 40 held-out triples)"
    )
    parser.add_argument("--two", type=int, default=30, help="two-object prompts")
    parser.add_argument(
        "--per-target", type=int, default=3, help="classifier guidance: seeds per target label"
    )
    parser.add_argument(
        "--classifier-scale", type=float, default=None, help="default: the model's recommended value"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--only", choices=["guidance", "schedulers", "classifier", "speed", "analyser"], action="append"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    only = set(args.only or ["analyser", "guidance", "schedulers", "classifier", "speed"])
    evaluator = Evaluator(args.model)
    one, two = one_object_cases(args.one), two_object_cases(args.two)
    results: dict[str, object] = {
        "model": args.model,
        "one_object_prompts": len(one),
        "two_object_prompts": len(two),
    }

    def report(line: str) -> None:
        print(line, flush=True)

    if "analyser" in only:
        results["analyser_clean_accuracy"] = analyser_accuracy()
        report(f"analyser on clean renders: {_pct(results['analyser_clean_accuracy'])}")
    if "guidance" in only:
        report(
            "\n| DDIM 20 steps | one object: colour+shape | one object: position | two objects: both right |\n|---|---|---|---|"
        )
        rows = {}
        for scale in (1.0, 3.0, 5.0, 7.5):
            settings = dict(scheduler="DDIM", steps=20, guidance_scale=scale)
            row = evaluator.score_prompts(one, **settings) | evaluator.score_prompts(two, **settings)
            rows[f"{scale:g}"] = row
            report(
                f"| guidance {scale:g} | {_pct(row['colour+shape'])} | {_pct(row['position'])} | {_pct(row['both right'])} |"
            )
        results["guidance"] = rows
    if "schedulers" in only:
        report(
            "\n| guidance 5, 20 steps | one object: colour+shape | one object: position | two objects: both right |\n|---|---|---|---|"
        )
        rows = {}
        for name in ("DDPM", "DDIM", "DPM++ 2M"):
            settings = dict(scheduler=name, steps=20, guidance_scale=5.0)
            if name == "DDIM" and "5" in results.get("guidance", {}):
                row = results["guidance"]["5"]  # the same settings, already measured
            else:
                row = evaluator.score_prompts(one, **settings) | evaluator.score_prompts(two, **settings)
            rows[name] = row
            report(
                f"| {name} | {_pct(row['colour+shape'])} | {_pct(row['position'])} | {_pct(row['both right'])} |"
            )
        results["schedulers"] = rows
    if "classifier" in only:
        scale = args.classifier_scale
        if scale is None:
            info = (
                json.loads((Path(args.model) / "diffuse_studio.json").read_text())
                if Path(args.model).is_dir()
                else {}
            )
            scale = float(info.get("defaults", {}).get("classifier_scale", 10.0))
        cases = classifier_cases(args.per_target)
        settings = dict(scheduler="DDIM", steps=20, guidance_scale=1.0)
        off = evaluator.score_classifier(cases, 0.0, **settings)
        on = evaluator.score_classifier(cases, scale, **settings)
        results["classifier"] = {"scale": scale, "off": off, "on": on, "images_per_setting": len(cases)}
        report(
            f"\nclassifier guidance, empty prompt, DDIM 20: target hit {_pct(off)} without, {_pct(on)} with scale {scale:g} ({len(cases)} images each; chance ≈ 15%)"
        )
    if "speed" in only:
        results["speed"] = speed(evaluator)
        report(
            f"\nload {results['speed']['load_s']:.2f} s; one image, DDIM 20 steps, guidance 5: {results['speed']['image_s_median']:.2f} s (median of 5)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
