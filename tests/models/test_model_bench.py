"""The bench helper, on a tiny architecture (the real run writes a 2 GiB SD 1.5 file)."""

from __future__ import annotations

from desktop_app.backend.local import checkpoint_facts, model_bench


def test_bench_helper_on_a_tiny_random_checkpoint(tmp_path):
    path = model_bench.write_random_checkpoint(tmp_path / "r.safetensors", "tiny-sd")
    assert checkpoint_facts.checkpoint_facts(checkpoint_facts.read_header(path)).family == "SD 1.x"
    numbers = {"arch": "tiny-sd", **model_bench.bench_single_file(path, repeats=1), **model_bench.bench_hashing(path)}
    assert numbers["load_s"] > 0 and numbers["hash_gb_s"] > 0 and numbers["bytes"] == path.stat().st_size
    text = model_bench.report(numbers)
    assert text.startswith("single file (tiny-sd, fp16, ") and "SHA-256: " in text
