"""The window's model tools, as a user meets them: the LoRA / embedding picker writes tags into the
prompt, the VAE choice is remembered per model, the model manager lists everything with its hash
and civitai address, an SD 2.x file's ε/v question is asked once and the job runs again, and the
first start offers other apps' folders. The scripted fake backend offers the catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QPushButton

from desktop_app.backend.fake import FakeBackend, fake_model
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.core.models import AddOnInfo, ModelCatalog, ModelLoadError
from desktop_app.core.recipe import AddOn
from desktop_app.gui import model_manager

LONG = 120_000
SHA = "ab" * 32


@pytest.fixture
def catalog(tiny_model, tmp_path) -> ModelCatalog:
    xl = dataclasses.replace(fake_model("xl", native=64), family="SDXL", pipeline_class="StableDiffusionXLPipeline")
    files = {name: tmp_path / f"{name}.safetensors" for name in ("x", "big", "shiny", "soft", "xlvae")}
    for path in files.values():
        path.write_bytes(b"0" * 2048)
    add_ons = [AddOnInfo("lora", "x", "SD 1.x", files["x"], 2048, "lora", "folder /models"),
               AddOnInfo("lora", "big", "SDXL", files["big"], 2048, "lora", "AUTOMATIC1111 /webui"),
               AddOnInfo("embedding", "shiny", "SD 1.x", files["shiny"], 2048),
               AddOnInfo("vae", "soft", None, files["soft"], 2048, "ldm"),
               AddOnInfo("vae", "xlvae", "SDXL", files["xlvae"], 2048, "ldm")]
    tiny = dataclasses.replace(inspect_model(tiny_model), family="SD 1.x")  # the tiny model's widths are its own
    errors = [ModelLoadError(tmp_path / "cut.safetensors", "is truncated: 10 bytes on disk; download it again")]
    return ModelCatalog([tiny, xl], errors, add_ons, ["/media/usb/ComfyUI"], {str(tiny.path): SHA})


def _backend(catalog: ModelCatalog, **kwargs) -> FakeBackend:
    backend = FakeBackend(**kwargs)
    backend.catalog = catalog
    return backend


def _click_item(qtbot, widget, name: str) -> None:
    item = next(widget.item(r) for r in range(widget.count()) if widget.item(r).text().startswith(name))
    qtbot.mouseClick(widget.viewport(), Qt.MouseButton.LeftButton, pos=widget.visualItemRect(item).center())


def test_the_picker_inserts_a_lora_tag_and_an_embedding_where_the_cursor_is(qtbot, make_window, settings, catalog):
    backend = _backend(catalog)
    window = make_window(settings, backend=backend)
    qtbot.keyClicks(window.panel.prompt, "a red circle")
    qtbot.mouseClick(window.panel.add_ons_button, Qt.MouseButton.LeftButton)
    picker = window.panel.add_on_picker
    assert picker.isVisible()
    rows = {picker.list.item(r).text().split()[0]: picker.list.item(r) for r in range(picker.list.count())}
    assert set(rows) == {"x", "big", "shiny"}  # LoRAs and embeddings; VAEs have their own choice
    assert not rows["big"].flags() & Qt.ItemFlag.ItemIsEnabled  # an SDXL LoRA for an SD 1.x model
    _click_item(qtbot, picker.list, "x")
    picker.weight.selectAll()
    qtbot.keyClicks(picker.weight, "0.7")
    qtbot.mouseClick(picker.insert_button, Qt.MouseButton.LeftButton)
    assert window.panel.prompt.text() == "a red circle <lora:x:0.7>"
    _click_item(qtbot, picker.list, "shiny")
    assert not picker.weight.isEnabled()
    picker.target.setCurrentIndex(picker.target.findData("negative"))
    qtbot.mouseClick(picker.insert_button, Qt.MouseButton.LeftButton)
    assert window.panel.negative.text() == "shiny"
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    recipe, _ = backend.submitted[-1]
    assert recipe.prompt.text == "a red circle <lora:x:0.7>" and recipe.prompt.negative == "shiny"


def test_the_vae_choice_is_remembered_per_model(qtbot, make_window, settings, catalog):
    backend = _backend(catalog)
    window = make_window(settings, backend=backend)
    vae = window.panel.vae
    assert vae.isVisibleTo(window.panel)
    assert [vae.itemData(k) for k in range(vae.count())] == ["", "soft"]  # not the SDXL one
    vae.setCurrentIndex(vae.findData("soft"))
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    assert AddOn("vae", "soft") in backend.submitted[-1][0].model.add_ons
    window.panel.model.setCurrentIndex(window.panel.model.findData("xl"))
    assert vae.name() == "" and vae.findData("xlvae") > 0 and vae.findData("soft") > 0
    window.panel.model.setCurrentIndex(window.panel.model.findData("tiny"))
    assert vae.name() == "soft"
    assert window.settings.model_vaes == {"tiny": "soft"}


def test_restoring_a_resolved_recipe_leaves_the_prompts_add_ons_to_the_prompt(make_window, settings, catalog):
    window = make_window(settings, backend=_backend(catalog))
    recipe = window.panel.recipe().with_(prompt="a shiny circle <lora:x:0.7>",
                                         add_ons=[AddOn("lora", "x", 0.7), AddOn("embedding", "shiny"), AddOn("vae", "soft")])
    window.use_settings(recipe)
    shown = window.panel.recipe()
    assert shown.model.add_ons == (AddOn("vae", "soft"),) and window.panel.vae.name() == "soft"
    window.panel.prompt.setPlainText("a circle")  # the tag removed: the LoRA is gone too
    assert window.panel.recipe().model.add_ons == (AddOn("vae", "soft"),)


def test_the_model_manager_lists_everything_with_hash_and_a_civitai_link(qtbot, make_window, settings, catalog, tiny_model):
    window = make_window(settings, backend=_backend(catalog))
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Models")
    manager = next(a for a in menu.actions() if a.text() == "Model &manager…")
    assert manager.shortcut().toString() == "Ctrl+M"
    manager.trigger()  # the menu item (offscreen Qt has no active window for the shortcut)
    dialog = window.model_tools.dialog
    assert dialog is not None and dialog.isVisible()
    rows = {(r.kind, r.name): r for r in dialog.rows()}
    assert set(rows) == {("Model folder", "Tiny test model"), ("Model folder", "Fake xl"), ("LoRA", "x"), ("LoRA", "big"),
                         ("Embedding", "shiny"), ("VAE", "soft"), ("VAE", "xlvae"), ("Cannot be used", "cut.safetensors")}
    assert rows[("LoRA", "big")].family == "SDXL" and rows[("LoRA", "big")].source == "AUTOMATIC1111 /webui"
    assert "truncated" in rows[("Cannot be used", "cut.safetensors")].problem
    assert "/media/usb/ComfyUI" in dialog.offline.text() and dialog.offline.isVisibleTo(dialog)
    assert not dialog.copy_link.isEnabled()
    dialog.select_path(str(Path(tiny_model).resolve()))
    assert dialog.link.text() == f"https://civitai.com/api/v1/model-versions/by-hash/{SHA.upper()}"
    qtbot.mouseClick(dialog.copy_link, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dialog.link.text()
    window.bridge.model_hashed.emit("xl", "/fake/xl", "cd" * 32)  # a hash computed meanwhile shows up
    assert next(r for r in dialog.rows() if r.name == "Fake xl").sha256 == "cd" * 32
    dialog.close()


def test_an_sd2_file_that_does_not_say_is_asked_once_and_the_job_runs_again(qtbot, make_window, settings, tmp_path):
    from desktop_app.core.model_choices import remembered_prediction

    file = tmp_path / "sd2.safetensors"
    file.write_bytes(b"0" * 64)
    sd2 = dataclasses.replace(fake_model("sd2"), path=file, family="SD 2.x")
    backend = _backend(ModelCatalog([sd2]), fail=f"The model could not be used: {file}: does not say", fail_kind="prediction")
    window = make_window(settings, backend=backend, model="sd2")
    with qtbot.waitSignal(window.bridge.job_failed, timeout=LONG):
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    button = window.messages.findChild(QPushButton, "prediction-v_prediction")
    assert button is not None
    qtbot.waitUntil(button.isVisible)  # the message bar shows on the next turn of the event loop
    backend.fail = ""
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert remembered_prediction(file) == "v_prediction"
    assert len(backend.submitted) == 2 and backend.submitted[0][0] == backend.submitted[1][0]


def test_the_first_start_offers_other_apps_folders_and_keeps_the_answer(qtbot, make_window, settings, monkeypatch, tmp_path):
    from desktop_app.core.app_roots import AppRoot
    from desktop_app.core.settings import Settings

    webui = tmp_path / "stable-diffusion-webui"
    monkeypatch.setattr(model_manager, "candidate_roots", lambda: [AppRoot("AUTOMATIC1111", webui)])
    settings.first_run_done = False
    window = make_window(settings)
    use = window.messages.findChild(QPushButton, "useAppRoots")
    assert use is not None and "AUTOMATIC1111" in " ".join(window.messages.messages())
    qtbot.mouseClick(use, Qt.MouseButton.LeftButton)
    QApplication.processEvents()
    assert window.settings.app_roots == [str(webui)] and window.settings.app_roots_offered
    assert Settings.load().app_roots == [str(webui)]
    assert window.messages.findChild(QPushButton, "useAppRoots") is None or not window.messages.findChild(
        QPushButton, "useAppRoots").isVisible()
