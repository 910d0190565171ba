"""``diffuse-studio bench --models``: a single-file checkpoint's listing, load and hashing speed.

A checkpoint of the ``sd15`` architecture (fp16, the size of a real SD 1.5 download, about 2 GiB) is
written with random values in a temporary folder (``model_bench``), then timed on this machine:

- listing it (what discovery reads: header, facts, the architecture it looks like; no torch);
- loading it as the app does on the CPU (``loader.load_model`` in fp32: the architecture match,
  ``from_single_file`` with the shipped configs and tokenizer, the checks), against a baseline in the
  same run: reading the same tensors with ``safetensors.torch.load_file`` and casting them to fp32;
- its SHA-256 (the "Model hash"), against the system's ``sha256sum`` of the same, cached, file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_models_bench(arch: str = "sd15", repeats: int = 2, folder: Path | None = None) -> dict:
    import torch
    from safetensors.torch import load_file

    from desktop_app.backend.local import model_bench, model_files
    from desktop_app.backend.local.catalog import file_model
    from desktop_app.backend.local.device import choose
    from desktop_app.backend.local.loader import load_model, quiet_libraries

    quiet_libraries()

    with tempfile.TemporaryDirectory(prefix="diffuse-studio-bench-", dir=folder) as tmp:
        path = model_bench.write_random_checkpoint(Path(tmp) / f"random-{arch}.safetensors", arch, torch.float16)
        numbers: dict = {"arch": arch, **model_bench.bench_single_file(path, repeats)}

        def listing() -> None:
            model_files._header_and_facts.cache_clear()
            model_files._described.cache_clear()
            file_model(path, path.stem)

        numbers["list_s"] = _best(listing, repeats)
        info = file_model(path, path.stem)
        placement = choose("cpu", "fp32")  # what the CPU runs (fp16 is refused there)
        numbers["app_load_s"] = _best(lambda: load_model(info, placement), repeats)
        numbers["baseline_load_file_s"] = _best(lambda: {k: v.float() for k, v in load_file(str(path)).items()}, repeats)
        numbers.update(model_bench.bench_hashing(path))
    return numbers


def report(numbers: dict) -> str:
    from desktop_app.backend.local import model_bench

    lines = [model_bench.report(numbers),
             f"listing the file (header, facts, architecture; no torch): {numbers['list_s'] * 1000:.1f} ms",
             f"loading it as the app does (load_model, CPU, fp32): {numbers['app_load_s']:.2f} s; "
             f"baseline safetensors load_file + fp32 of the same tensors: {numbers['baseline_load_file_s']:.2f} s "
             f"(ratio {numbers['app_load_s'] / numbers['baseline_load_file_s']:.2f})"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    numbers = run_models_bench(args.models_arch, max(1, min(args.repeats, 3)))
    print(report(numbers))
    return 0
