"""The issue's "done when" path, offline, from the pieces the engine will wire: a fake A1111 tree is
listed, its checkpoint loads from the single file, ``(red:1.3) circle <lora:x:0.7>`` is parsed, the
LoRA applied from the tag, the weighted prompt encoded, and a picture made."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from safetensors.torch import save_file

from desktop_app.backend.local import app_folders, checkpoint_facts, checkpoints
from desktop_app.backend.local import prompt_encoding as pe
from desktop_app.backend.local.add_ons import apply_add_ons
from desktop_app.core.prompt_syntax import parse_prompt
from desktop_app.core.recipe import AddOn

from . import fixtures as fx


def test_single_file_with_weighted_prompt_and_lora_tag(models, tmp_path):
    root = tmp_path / "webui"
    (root / "modules").mkdir(parents=True)
    (root / "webui.py").write_text("")
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    (root / "models" / "Lora").mkdir(parents=True)
    shutil.copy(models.single_file("tiny-sd"), root / "models" / "Stable-diffusion" / "mine.safetensors")
    save_file(fx.kohya_lora(models.pipeline("tiny-sd")), str(root / "models" / "Lora" / "x.safetensors"))

    listing = app_folders.scan_roots([app_folders.AppRoot(app_folders.detect_app(root), root)])
    files = {(m.kind, m.path.stem): m.path for m in listing.models}
    checkpoint = files[("checkpoint", "mine")]
    facts = checkpoint_facts.checkpoint_facts(checkpoint_facts.read_header(checkpoint))
    info = checkpoint_facts.model_info(facts, "mine")
    assert (info.family, info.kind, info.pipeline_class, info.native_size) == (
        "SD 1.x", "txt2img", "StableDiffusionPipeline", (512, 512))

    loaded = checkpoints.load_checkpoint(checkpoint, task="txt2img")
    pipe = loaded.pipe
    parsed = parse_prompt("(red:1.3) circle <lora:x:0.7>")
    lora_add_ons = [AddOn("lora", t.name, t.weight) for t in parsed.loras]

    def picture(add_ons) -> np.ndarray:
        apply_add_ons(pipe, facts.family, add_ons, lambda kind, name: files[(kind, name)],
                      checkpoints.architectures_dir() / loaded.architecture)
        embeds, negative = pe.encode_sd(pipe, "(red:1.3) circle <lora:x:0.7>", "", "cpu")
        return pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, num_inference_steps=2, height=64,
                    width=64, generator=torch.Generator("cpu").manual_seed(1), output_type="np").images[0]

    with_lora = picture(lora_add_ons)
    without = picture([])
    assert with_lora.shape == (64, 64, 3) and np.isfinite(with_lora).all()
    assert not np.array_equal(with_lora, without)
    plain = pe.encode_sd(pipe, "red circle", "", "cpu")[0]
    assert not torch.equal(pe.encode_sd(pipe, "(red:1.3) circle", "", "cpu")[0], plain)
