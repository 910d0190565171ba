"""The smaller pieces of the wiring: prompt tags and add-ons kept in step, the token counter, the
settings keys, the A1111 text's tags and hashes, single files in the app's own model folder, and
the local backend's events for a file model (the ε/v question, hash progress)."""

from __future__ import annotations

import shutil

import pytest
from safetensors.torch import save_file

from desktop_app.core.models import AddOnInfo
from desktop_app.core.prompt_add_ons import prompt_with_tags, with_prompt_add_ons, without_prompt_add_ons
from desktop_app.core.recipe import AddOn, Recipe

from . import fixtures as fx


def test_prompt_tags_join_the_add_ons_once_and_come_out_again():
    recipe = Recipe.of("(red:1.3) circle <lora:x:0.7> shiny <lora:x:0.9>",
                       add_ons=[AddOn("lora", "x", 0.5), AddOn("vae", "soft"), AddOn("lora", "y", 0.3)])
    resolved = with_prompt_add_ons(recipe)
    assert resolved.model.add_ons == (AddOn("vae", "soft"), AddOn("lora", "y", 0.3), AddOn("lora", "x", 0.9))
    assert resolved.prompt.text == recipe.prompt.text and with_prompt_add_ons(resolved) == resolved
    used = resolved.with_(add_ons=(*resolved.model.add_ons, AddOn("embedding", "shiny")))
    assert without_prompt_add_ons(used).model.add_ons == (AddOn("vae", "soft"), AddOn("lora", "y", 0.3))
    assert prompt_with_tags(resolved) == recipe.prompt.text + " <lora:y:0.3>"


def test_the_token_counter_counts_as_the_encoder_chunks(models):
    from desktop_app.backend.local.checkpoints import shipped_tokenizer
    from desktop_app.backend.local.prompt_encoding import count_tokens
    from desktop_app.core.token_count import count_prompt_tokens

    tokenizer = shipped_tokenizer()
    prompts = ["a photo of a cat", "(red:1.3) circle <lora:x:0.7>", "Héllo   WORLD!! 1234 it's a dog's life, isn't it?",
               " ".join(["red circle"] * 40) + " purple castle", "masterpiece, (detailed:1.2) BREAK a castle", ""]
    for prompt in prompts:
        counted = count_prompt_tokens(prompt)
        assert (counted.tokens, counted.chunks) == count_tokens(tokenizer, prompt), prompt
    assert count_prompt_tokens(" ".join(["red circle"] * 40)).label() == "80/150"
    from desktop_app.core import paths
    from desktop_app.core.models import ModelInfo

    shapes = ModelInfo("shapes", "Shapes", paths.shipped_models_dir() / "shapes", "built-in", "StableDiffusionPipeline",
                       (64, 64), 4, 4, {})
    assert count_prompt_tokens("a big yellow star", shapes).chunk_size == 30  # its encoder has 32 positions


@pytest.mark.expect_log(r"settings: ignoring (app_roots|model_vaes)=")
def test_the_new_settings_keys_fall_back_on_their_own():
    from desktop_app.core.settings import Settings

    good = Settings.from_dict({"app_roots": ["/a"], "model_vaes": {"m": "soft"}, "app_roots_offered": True})
    assert (good.app_roots, good.model_vaes, good.app_roots_offered) == (["/a"], {"m": "soft"}, True)
    bad = Settings.from_dict({"app_roots": "/a", "model_vaes": {"m": 3}, "theme": "dark"})
    assert (bad.app_roots, bad.model_vaes, bad.theme) == ([], {}, "dark")


def test_the_a1111_text_carries_lora_tags_and_hashes_and_reads_them_back():
    from desktop_app.gallery.a1111 import format_parameters, parse_hashes, parse_parameters

    recipe = Recipe.of("a circle <lora:x:0.7> shiny", seed=1, add_ons=[AddOn("lora", "x", 0.7), AddOn("lora", "y", 0.3)])
    text = format_parameters(recipe, width=64, height=64, lora_hashes={"x": "0123456789ab", "y": "ba9876543210"},
                             ti_hashes={"shiny": "aaaabbbbcccc"})
    assert text.splitlines()[0] == "a circle <lora:x:0.7> shiny <lora:y:0.3>"
    assert 'Lora hashes: "x: 0123456789ab, y: ba9876543210", TI hashes: "shiny: aaaabbbbcccc"' in text
    parsed = parse_parameters(text)
    assert parsed.fields["prompt"] == "a circle <lora:x:0.7> shiny <lora:y:0.3>"
    assert parse_hashes(parsed.info["Lora hashes"]) == {"x": "0123456789ab", "y": "ba9876543210"}
    restored = with_prompt_add_ons(Recipe.of(parsed.fields["prompt"]))
    assert restored.model.add_ons == (AddOn("lora", "x", 0.7), AddOn("lora", "y", 0.3))


def test_the_apps_own_model_folder_lists_single_files_but_not_a_folders_components(models, home):
    from desktop_app.backend.local.discovery import discover
    from desktop_app.core import paths

    root = paths.user_models_dir()
    shutil.copytree(models.folder("tiny-sd"), root / "tiny-folder")
    shutil.copy(models.single_file("tiny-sd"), root / "mine.safetensors")
    (root / "checkpoints").mkdir()
    shutil.copy(models.single_file("tiny-sd"), root / "checkpoints" / "mine.safetensors")
    (root / "loras").mkdir()
    save_file(fx.kohya_lora(models.pipeline("tiny-sd")), str(root / "loras" / "x.safetensors"))
    found = discover()
    ids = {m.id for m in found.models}
    assert {"tiny-folder", "mine", "mine-2", "shapes"} <= ids  # a same-named second file: its own id
    assert [(a.kind, a.name) for a in found.add_ons] == [("lora", "x")]
    assert not any("diffusion_pytorch_model" in str(e.path) for e in found.errors)
    mine = found.find("mine")
    assert mine.family == "SD 1.x" and mine.native_size == (64, 64) and mine.latent_factor == 2
    assert mine.source == f"folder {root}" and mine.size == (root / "mine.safetensors").stat().st_size
    assert found.add_ons[0] == AddOnInfo("lora", "x", None, root / "loras" / "x.safetensors",
                                         (root / "loras" / "x.safetensors").stat().st_size, "lora", f"folder {root}")


def test_the_local_backend_asks_about_an_sd2_file_and_reports_its_hash(models, tmp_path):
    from desktop_app.backend.local import LocalBackend
    from desktop_app.core.events import TERMINAL, Failed, Finished, ModelHashed, ModelHashing
    from desktop_app.core.model_choices import remember_prediction
    from tests.backend.helpers import CPU

    folder = tmp_path / "models"
    folder.mkdir()
    sd2 = shutil.copy(models.single_file("tiny-sd2"), folder / "sd2.safetensors")
    backend = LocalBackend([str(folder)], defaults=CPU)
    events = []
    try:
        backend.start()

        def run(recipe):
            job = backend.submit(recipe, CPU)
            while True:
                event = backend.next_event(60)
                assert event is not None, "no event within a minute"
                events.append(event)
                if isinstance(event, TERMINAL) and event.job_id == job:
                    return event

        asked = run(Recipe.of("a circle", model_id="sd2", steps=1))
        assert isinstance(asked, Failed) and asked.kind == "prediction"
        assert str(sd2) in asked.message and "does not say what it predicts" in asked.message
        remember_prediction(sd2, "epsilon")
        backend.refresh_models()
        assert backend.models().find("sd2").native_size == (64, 64)
        done = run(Recipe.of("a circle", model_id="sd2", steps=1))
        assert isinstance(done, Finished), done
        while not any(isinstance(e, ModelHashed) for e in events):
            event = backend.next_event(60)
            assert event is not None
            events.append(event)
    finally:
        backend.close()
    hashed = next(e for e in events if isinstance(e, ModelHashed))
    from desktop_app.backend.local.hashes import sha256_of

    assert hashed.path == str(sd2) and hashed.sha256 == sha256_of(sd2) and hashed.digest == hashed.sha256[:10]
    assert not [e for e in events if isinstance(e, ModelHashing) and e.path != str(sd2)]
