"""The smaller promises: start-up without torch, first-run hint, About, batches, save errors, gallery recipes."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtWidgets import QLabel

from desktop_app.core.settings import Settings
from desktop_app.gui.dialogs import AboutDialog
from tests.gui.conftest import shown

LONG = 120_000


def test_the_window_shows_before_torch_is_imported(home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DIFFUSE_STUDIO_HOME": str(home)}
    out = subprocess.run([sys.executable, "-m", "desktop_app", "--quit-after-show"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch imported: False" in out.stdout


def test_first_run_hint_names_the_models_folder_and_is_shown_once(make_window, settings):
    from desktop_app.core import paths

    settings.first_run_done = False
    window = make_window(settings, start_engine=False)
    (hint,) = window.messages.messages("info")
    assert "works offline" in hint and str(paths.user_models_dir()) in hint and "Settings" in hint
    window.messages._bars[0].dismiss()
    assert Settings.load().first_run_done
    again = make_window(Settings.load(), start_engine=False)
    assert again.messages.messages("info") == []


def test_about_names_versions_and_device(qtbot):
    dialog = AboutDialog("CPU, fp32")
    qtbot.addWidget(dialog)
    text = dialog.findChild(QLabel, "aboutText").text()
    for word in ("Diffuse Studio", "torch", "diffusers", "Qt", "CPU, fp32"):
        assert word in text


def test_window_title_and_icon(make_window, settings):
    window = make_window(settings, start_engine=False)
    assert window.windowTitle() == "Diffuse Studio"
    assert not window.windowIcon().isNull()


def test_a_batch_fills_the_strip_to_flip_through(qtbot, make_window, settings):
    window = make_window(settings, steps=2)
    window.panel.prompt.setPlainText("two squares")
    window.panel.batch_size.setValue(2)
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        window.generate()
    summary = finished.args[1]
    assert len(summary.saved) == 2 and summary.seeds[1] == summary.seeds[0] + 1
    assert window.batch_strip.count() == 2 and window.batch_strip.isVisible()
    window.batch_strip.setCurrentRow(1)
    assert window.canvas.image == window.batch_strip.image_at(1)
    assert window.image_info.text().endswith(summary.saved[1])


def test_a_failed_save_is_reported_and_the_image_still_shown(qtbot, make_window, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    settings.output_dir = str(blocker)
    window = make_window(settings, steps=2)
    window.panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        window.generate()
    assert finished.args[1].saved == ("",)
    assert window.canvas.image is not None
    assert any("could not be saved" in text for text in window.messages.messages("error"))


def test_gallery_recipe_restores_every_control(make_window, settings):
    window = make_window(settings, start_engine=False)
    recipe = {"prompt": "a green ring", "negative_prompt": "dark", "model_id": "tiny", "scheduler": "DDPM", "steps": 33,
              "guidance_scale": 4.5, "seed": 99, "width": 48, "height": 64, "batch_size": 3, "ddpm_variance": "fixed_large"}
    window.tabs.setCurrentIndex(window.tabs.count() - 1)
    if window.gallery is not None:
        window.gallery.use_settings.emit(recipe)
    else:
        window.use_settings(recipe)
    r = shown(window.panel)
    assert (r.prompt, r.negative_prompt, r.scheduler, r.steps, r.guidance_scale, r.seed, r.width, r.height,
            r.batch_size, r.ddpm_variance) == ("a green ring", "dark", "DDPM", 33, 4.5, 99, 48, 64, 3, "fixed_large")
    assert window.tabs.currentIndex() == 0
    assert window.panel.variance.isVisible()


def test_choosing_a_model_applies_its_recommended_defaults_but_a_restore_wins(make_window, settings, tiny_copy):
    import json

    (tiny_copy / "diffuse_studio.json").write_text(json.dumps(
        {"name": "Tiny with defaults", "defaults": {"scheduler": "Euler", "steps": 12, "guidance_scale": 3.0}}))
    settings.extra_model_dirs.append(str(tiny_copy.parent))
    window = make_window(settings, start_engine=False, steps=30, real=True)  # this machine's model folders
    window.panel.model.setCurrentIndex(window.panel.model.findData("tiny-copy"))
    r = shown(window.panel)
    assert (r.scheduler, r.steps, r.guidance_scale) == ("Euler", 12, 3.0)
    window.use_settings({"prompt": "x", "model_id": "tiny", "scheduler": "DDIM", "steps": 9})
    window.use_settings({"prompt": "y", "model_id": "tiny-copy", "scheduler": "Heun", "steps": 7, "guidance_scale": 6.0})
    r = shown(window.panel)
    assert (r.model_id, r.scheduler, r.steps, r.guidance_scale) == ("tiny-copy", "Heun", 7, 6.0)


def test_new_model_folders_from_settings_are_listed(make_window, settings, tiny_copy):
    window = make_window(settings, start_engine=False, real=True)
    assert window.panel.model.findData("tiny-copy") < 0
    new = Settings.from_dict({**settings.to_dict(), "extra_model_dirs": [*settings.extra_model_dirs, str(tiny_copy.parent)]})
    window.apply_settings(new)
    assert window.panel.model.findData("tiny-copy") >= 0
    assert Settings.load().extra_model_dirs == new.extra_model_dirs


def test_an_image_file_gives_its_settings_to_the_controls(make_window, settings, tmp_path):
    from PIL import Image

    from desktop_app.core.events import GeneratedImage
    from desktop_app.core.recipe import Recipe
    from desktop_app.gallery.library import Library

    recipe = Recipe.of("a blue ring", model_id="tiny", scheduler="Euler a", steps=13, guidance_scale=5.0, seed=321, width=64,
                       height=64)
    path = Library(tmp_path).save(GeneratedImage(Image.new("RGB", (64, 64), "blue"), recipe, 0)).path
    window = make_window(settings, start_engine=False)
    assert window.restore_from_image(str(path))
    r = shown(window.panel)
    assert (r.prompt, r.scheduler, r.steps, r.seed, r.model_id) == ("a blue ring", "Euler a", 13, 321, "tiny")
    assert window.canvas.image.width() == 64
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert not window.restore_from_image(str(plain))
    assert any("No settings" in text for text in window.messages.messages("error"))


def test_a_recipe_for_a_missing_model_says_so(make_window, settings):
    window = make_window(settings, start_engine=False)
    window.use_settings({"prompt": "a cat", "model_id": "v1-5-pruned-emaonly", "scheduler": "DPM++ 2M"})
    assert shown(window.panel).model_id == "tiny"
    assert any("v1-5-pruned-emaonly" in text and "not installed" in text for text in window.messages.messages("info"))
