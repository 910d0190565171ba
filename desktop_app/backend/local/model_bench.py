"""Numbers for ``diffuse-studio bench``: single-file load time and hashing speed on this machine.

The checkpoint is made here with random values (speed does not depend on them): its key → shape map
is the one ``checkpoints.expected_shapes`` says a real file of the architecture holds, so an ``sd15``
fp16 file is the size of a real SD 1.5 download (about 2 GiB). Hashing is compared, in the same run
and on the same (by then cached) file, with the system's ``sha256sum`` when there is one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from desktop_app.backend.local import checkpoints, hashes


def write_random_checkpoint(path: Path | str, arch: str = "sd15", dtype=torch.float16, seed: int = 0) -> Path:
    """A single file of ``arch`` in the original layout, random values of ``dtype``."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {key: torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype) if shape else
               torch.tensor(1.0, dtype=dtype) for key, shape in checkpoints.expected_shapes(arch).items()}
    path = Path(path)
    save_file(tensors, str(path), metadata={"modelspec.prediction_type": "epsilon"})
    return path


def _read_through(path: Path) -> None:
    with open(path, "rb", buffering=0) as fh:
        while fh.read(16 * 1024 * 1024):
            pass


def bench_single_file(path: Path, repeats: int = 2) -> dict[str, float]:
    """Seconds to read the header and facts, match the architecture, and load the whole pipeline
    (fp16 as stored, on the CPU, checks included); the best of ``repeats`` after a first, warming load."""
    from desktop_app.backend.local import checkpoint_facts

    header = checkpoint_facts.read_header(path)
    facts = checkpoint_facts.checkpoint_facts(header)
    checkpoints.expected_shapes.cache_clear()
    start = time.perf_counter()
    checkpoints.match_architecture(header, facts)  # the first match builds the architectures on meta
    best: dict[str, float] = {"first_match_s": time.perf_counter() - start}
    checkpoints.load_checkpoint(path, dtype=torch.float16)
    for _ in range(repeats):
        start = time.perf_counter()
        header = checkpoint_facts.read_header(path)
        facts = checkpoint_facts.checkpoint_facts(header)
        facts_done = time.perf_counter()
        checkpoints.match_architecture(header, facts)
        match_done = time.perf_counter()
        checkpoints.load_checkpoint(path, dtype=torch.float16)
        load_done = time.perf_counter()
        for name, value in (("header_s", facts_done - start), ("match_s", match_done - facts_done),
                            ("load_s", load_done - match_done)):
            best[name] = min(best.get(name, value), value)
    return best


def bench_hashing(path: Path) -> dict[str, float | None]:
    """Seconds and GB/s for this app's SHA-256 and for ``sha256sum`` of the same cached file."""
    _read_through(path)
    size = path.stat().st_size
    start = time.perf_counter()
    ours = hashes.sha256_of(path)
    ours_s = time.perf_counter() - start
    result: dict[str, float | None] = {"bytes": float(size), "hash_s": ours_s, "hash_gb_s": size / ours_s / 1e9,
                                       "sha256sum_s": None, "ratio_vs_sha256sum": None}
    tool = shutil.which("sha256sum")
    if tool:
        start = time.perf_counter()
        theirs = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
        theirs_s = time.perf_counter() - start
        if theirs != ours:
            raise RuntimeError(f"sha256sum and hashlib disagree on {path}")
        result.update(sha256sum_s=theirs_s, ratio_vs_sha256sum=ours_s / theirs_s)
    return result


def run(arch: str = "sd15", folder: Path | None = None) -> dict[str, float | None]:
    """Write a random ``arch`` checkpoint (fp16) in a temporary folder, time it, delete it."""
    with tempfile.TemporaryDirectory(prefix="diffuse-studio-bench-", dir=folder) as tmp:
        path = write_random_checkpoint(Path(tmp) / f"random-{arch}.safetensors", arch)
        return {"arch": arch, **bench_single_file(path), **bench_hashing(path)}


def report(numbers: dict) -> str:
    lines = [f"single file ({numbers['arch']}, fp16, {numbers['bytes'] / 2**30:.2f} GiB): header + facts "
             f"{numbers['header_s'] * 1000:.1f} ms, architecture match {numbers['first_match_s']:.2f} s first, "
             f"{numbers['match_s'] * 1000:.0f} ms after, "
             f"load {numbers['load_s']:.2f} s",
             f"SHA-256: {numbers['hash_s']:.2f} s ({numbers['hash_gb_s']:.2f} GB/s)"]
    if numbers.get("sha256sum_s"):
        lines[-1] += f"; sha256sum {numbers['sha256sum_s']:.2f} s (ratio {numbers['ratio_vs_sha256sum']:.2f})"
    return "\n".join(lines)
