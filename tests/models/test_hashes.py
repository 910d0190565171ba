"""Model identity: A1111's model hash and Lora hash, hashed on a thread with progress, cached."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from safetensors.torch import load_file, save_file

from desktop_app.backend.local import hashes

from . import fixtures as fx


def test_model_hash_is_the_first_10_hex_of_the_files_sha256(models):
    path = models.single_file("tiny-sd")
    digest = hashes.sha256_of(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    if shutil.which("sha256sum"):
        assert digest == subprocess.run(["sha256sum", str(path)], capture_output=True, text=True).stdout.split()[0]
    assert hashes.model_hash(digest) == digest[:10] and len(hashes.short_hash(digest)) == 12


def test_lora_hash_skips_the_header_so_metadata_edits_keep_it(tmp_path):
    import torch

    state = {"lora_unet_x.lora_down.weight": torch.arange(8.0).reshape(2, 4)}
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(state, str(a))
    save_file(load_file(a), str(b), metadata={"ss_output_name": "renamed", "note": "x" * 300})
    start = hashes.body_start(a)
    assert hashes.sha256_of(a, start) == hashlib.sha256(a.read_bytes()[start:]).hexdigest()
    assert hashes.sha256_of(a, hashes.body_start(a)) == hashes.sha256_of(b, hashes.body_start(b))
    assert hashes.sha256_of(a) != hashes.sha256_of(b)
    assert hashes.hash_kind(a, "lora") == "body" and hashes.hash_kind(tmp_path / "l.pt", "lora") == "file"
    assert hashes.hashes_text({"style": "0123456789abcdef", "b": "fedcba9876543210"}) == (
        "style: 0123456789ab, b: fedcba987654")


def test_cache_by_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x" * 1000)
    cache = hashes.HashCache()
    assert cache.file.parent.is_relative_to(os.environ["DIFFUSE_STUDIO_HOME"])
    first = hashes.cached_or_compute(path, cache=cache)
    monkeypatch.setattr(hashes, "sha256_of", lambda *a, **k: pytest.fail("hashed again"))
    assert hashes.cached_or_compute(path, cache=cache) == first
    monkeypatch.undo()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.get(path) is None
    path.write_bytes(b"y" * 1000)
    assert hashes.cached_or_compute(path, cache=cache) == hashlib.sha256(b"y" * 1000).hexdigest()


def test_background_job_reports_progress_and_finishes_once(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(hashes.BLOCK * 2 + 123))
    lora = tmp_path / "l.safetensors"
    fx.write_header_only(lora, {"lora_unet_x.lora_down.weight": ("F32", (4, 4))})
    progress, done, finished = [], [], []
    job = hashes.HashJob([(big, "file"), (lora, "body"), (tmp_path / "gone.bin", "file")],
                         on_progress=progress.append, on_done=lambda p, k, s: done.append((p.name, k, s)),
                         on_error=lambda p, e: done.append((p.name, "error", type(e).__name__)),
                         on_finished=finished.append).start()
    job.join(30)
    assert not job.running and finished == [False]
    assert [p.done for p in progress if p.path == big] == [hashes.BLOCK, 2 * hashes.BLOCK, big.stat().st_size,
                                                           big.stat().st_size]
    assert done[0] == ("big.bin", "file", hashlib.sha256(big.read_bytes()).hexdigest())
    assert done[1][:2] == ("l.safetensors", "body") and done[2] == ("gone.bin", "error", "FileNotFoundError")
    assert hashes.HashCache().get(big) == done[0][2]


def test_cancelled_job_stops_and_says_so(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (hashes.BLOCK * 3))
    finished = []
    job = hashes.HashJob([(big, "file")])
    job.on_progress = lambda update: job.cancel()
    job.on_finished = finished.append
    job.start().join(30)
    assert finished == [True] and job.results == {} and hashes.HashCache().get(big) is None
