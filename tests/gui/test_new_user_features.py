"""What a new user expects of the window: the model's words near the prompt, a token count, hints
that set things up, sizes that fit the model, honest options, progress they can see from afar."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QTextCharFormat
from PySide6.QtWidgets import QApplication, QWidget

from desktop_app.backend.fake import FakeBackend, fake_model
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.builtin.data import grammar_words
from desktop_app.core.settings import Settings
from tests.gui.conftest import shown

from .test_window_fits import LABELS, active

LONG = 60_000
REPO = Path(__file__).resolve().parents[2]  # (importing tests.conftest again would run it twice)


def shapes_like(tiny_model):
    """The tiny model as the built-in one presents itself: its words, its classifier."""
    return dataclasses.replace(inspect_model(tiny_model), id="shapes-like", name="Shapes-like",
                               vocabulary=tuple(grammar_words()), classifier_labels=LABELS)


def underlined(edit) -> list[str]:
    """The words of a prompt box drawn with the spell-check underline."""
    block = edit.document().firstBlock()
    text = block.text()
    return [text[r.start:r.start + r.length] for r in block.layout().formats()
            if r.format.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline]


def test_the_built_in_model_declares_its_words():
    info = inspect_model(REPO / "models" / "shapes")
    assert info.vocabulary == tuple(grammar_words())


def test_the_model_s_words_are_shown_and_unknown_ones_marked_as_typed(qtbot, make_window, settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([shapes_like(tiny_model)]), model="shapes-like",
                         start_engine=False)
    help_ = window.panel.prompt_help
    assert help_.isVisible() and "43 words" in help_.summary.text()
    window.panel.prompt.clear()
    qtbot.keyClicks(window.panel.prompt, "a cat on a sofa")
    assert underlined(window.panel.prompt) == ["cat", "sofa"]
    assert help_.unknown.isVisible() and "cat, sofa" in help_.unknown.text()
    help_.words_button.click()
    assert help_.words.isVisible() and "triangle" in help_.words.text()
    help_.words.linkActivated.emit("heart")  # a click on the word "heart"
    assert window.panel.prompt.text().endswith("heart ")


def test_generating_with_unknown_words_asks_first(qtbot, make_window, settings, tiny_model):
    backend = FakeBackend([shapes_like(tiny_model)])
    window = make_window(settings, backend=backend, model="shapes-like", start_engine=False)
    window.panel.prompt.setPlainText("a cat on a sofa")
    window.generate_button.click()
    assert window.queue.job_ids() == []
    warning = [bar for bar in window.messages._bars if "cat, sofa" in bar.text()]
    assert len(warning) == 1
    anyway = [b for b in warning[0].findChildren(type(warning[0].close_button)) if b.text() == "Generate anyway"]
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        anyway[0].click()
        window.start_engine()
    assert len(window.queue.job_ids()) == 1
    window.generate_button.click()  # the same prompt again: already answered
    assert len(window.queue.job_ids()) == 2


def test_a_live_token_count_for_every_model(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)  # the tiny model: CLIP's 77 = 75 + 2
    tokens = window.panel.prompt_help.tokens
    window.panel.prompt.clear()
    qtbot.keyClicks(window.panel.prompt, "a red circle")
    assert tokens.isVisible() and tokens.text() == "3/75"
    window.panel.prompt.setPlainText("red " * 80)
    assert tokens.text() == "80/150" and "2 chunks of 75, and every word is used" in tokens.toolTip()


def test_the_counter_matches_the_text_encoder_s_tokenizer(tiny_model):
    from transformers import CLIPTokenizer

    from desktop_app.backend.local.discovery import inspect_model
    from desktop_app.gui.tokens import TokenCounter

    counter = TokenCounter()
    for folder in (tiny_model, REPO / "models" / "shapes"):
        info, theirs = inspect_model(folder), CLIPTokenizer.from_pretrained(folder / "tokenizer")
        for text in ("a red circle", "A  cat, on a SOFA!!", "don't 123 héllo wörld", "zebra-striped  star"):
            mine = counter.count(info, text)
            assert mine.chunk_size == theirs.model_max_length - 2
            assert mine.tokens == len(theirs(text, add_special_tokens=False).input_ids), text


def test_classifier_guidance_says_when_it_works_best_and_sets_that_up(qtbot, make_window, settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([shapes_like(tiny_model)]), model="shapes-like",
                         start_engine=False)
    panel = window.panel
    panel.prompt.setPlainText("a red circle")
    panel.guidance.setValue(5.0)
    panel.guidance_mode.setCurrentIndex(panel.guidance_mode.findData("classifier"))
    assert panel.classifier_hint.isVisible()
    panel.classifier_setup.click()
    assert (shown(panel).prompt, shown(panel).guidance_scale) == ("", 1.0)
    assert not panel.classifier_hint.isVisible()


def test_one_click_to_the_model_s_native_size_after_a_foreign_image(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    window.use_settings({"prompt": "a lighthouse", "model_id": "tiny", "scheduler": "Euler a", "width": 512,
                         "height": 768})
    button = window.panel.native_size_button
    assert button.isVisible() and "64×64" in button.text()
    assert window.panel.problems()  # 512×768 is beyond the tiny model
    button.click()
    assert (shown(window.panel).width, shown(window.panel).height) == (64, 64)
    assert window.panel.problems() == [] and not button.isVisible()


def test_small_models_preview_with_a_full_decode_by_default(qtbot, make_window, settings, tiny_model):
    big = fake_model("big", native=512)
    backend = FakeBackend([inspect_model(tiny_model), big])
    window = make_window(settings, backend=backend)
    assert settings.preview_mode == "auto"
    window.panel.prompt.setPlainText("x")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.generate_button.click()
    window.panel.model.setCurrentIndex(window.panel.model.findData("big"))
    window.panel.steps.setValue(2)
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.generate_button.click()
    assert [options.preview for _, options in backend.submitted] == ["vae", "latent"]
    window.settings.preview_mode = "latent"  # chosen by the user: kept for every model
    window.panel.model.setCurrentIndex(window.panel.model.findData("tiny"))
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.generate_button.click()
    assert backend.submitted[-1][1].preview == "latent"


def test_small_images_are_shown_pixel_sharp_at_a_whole_zoom(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    window.resize(1280, 720)
    qtbot.waitExposed(window)
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    for y in range(64):
        for x in range(64):
            image.setPixelColor(x, y, QColor(255, 255, 255) if (x + y) % 2 else QColor(0, 0, 0))
    window.canvas.show_image(image)
    QApplication.processEvents()
    view = window.canvas.view
    target = view.target_rect()
    zoom = target.width() // 64
    assert zoom >= 2 and target.width() == 64 * zoom and target.height() == 64 * zoom
    grabbed = view.grab().toImage()
    scale = grabbed.width() // view.width()
    for x, y in ((0, 0), (5, 9), (63, 63), (31, 32)):
        for dx, dy in ((0, 0), (zoom - 1, zoom - 1), (zoom // 2, 0)):
            px = grabbed.pixelColor((target.x() + x * zoom + dx) * scale, (target.y() + y * zoom + dy) * scale)
            assert px == image.pixelColor(x, y), (x, y, dx, dy)


def test_gpu_only_options_are_disabled_with_the_reason_without_a_gpu(qtbot, make_window, settings, tiny_model):
    from desktop_app.gui.dialogs import SettingsDialog

    backend = FakeBackend([inspect_model(tiny_model)])
    backend.accelerators = ()  # the backend found no CUDA and no MPS device
    window = active(qtbot, make_window(settings, backend=backend))
    qtbot.waitUntil(lambda: window.gpu_available is False, timeout=LONG)
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    (dialog,) = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    for box in (dialog.fast_mode, dialog.low_vram):
        assert not box.isEnabled() and "no GPU" in box.toolTip()
    cuda = dialog.device.model().item(dialog.device.findText("cuda"))
    assert not cuda.isEnabled() and "no GPU" in cuda.toolTip()
    dialog.reject()


def test_gpu_options_stay_open_where_there_is_one(qtbot, tiny_model):
    from desktop_app.gui.dialogs import SettingsDialog

    dialog = SettingsDialog(Settings(), gpu=True)
    qtbot.addWidget(dialog)
    assert dialog.fast_mode.isEnabled() and dialog.device.model().item(dialog.device.findText("cuda")).isEnabled()


def test_progress_shows_in_the_window_title(qtbot, make_window, settings, tiny_model):
    backend = FakeBackend([inspect_model(tiny_model)])
    backend.hold_at = 3
    window = make_window(settings, backend=backend, steps=4)
    window.panel.prompt.setPlainText("a ring")
    window.generate_button.click()
    qtbot.waitUntil(lambda: "50%" in window.windowTitle(), timeout=LONG)
    assert window.windowTitle().endswith("Diffuse Studio")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        backend.release()
    assert window.windowTitle() == "Diffuse Studio"


def test_a_desktop_notification_when_a_long_queue_finishes(qtbot, make_window, settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([inspect_model(tiny_model)], step_seconds=0.01))
    notes = []
    window.notifier.send = lambda title, text: notes.append((title, text)) or True
    window.notifier.after_seconds = 0.05
    elsewhere = QWidget()  # the user is working in another window
    qtbot.addWidget(elsewhere)
    elsewhere.show()
    elsewhere.activateWindow()
    qtbot.waitUntil(lambda: not window.isActiveWindow(), timeout=5_000)
    window.panel.prompt.setPlainText("a star")
    window.panel.batch_count.setValue(3)
    window.generate_button.click()
    qtbot.waitUntil(lambda: len(window.queue.job_ids("finished")) == 3, timeout=LONG)
    assert len(notes) == 1 and "3 images" in notes[0][1]


def test_failed_jobs_can_be_retried_and_finished_ones_duplicated(qtbot, make_window, settings, tiny_model):
    backend = FakeBackend([inspect_model(tiny_model)], fail="out of paint")
    window = make_window(settings, backend=backend)
    window.panel.prompt.setPlainText("a pink heart")
    window.panel.seed.setValue(7)
    with qtbot.waitSignal(window.bridge.job_failed, timeout=LONG):
        (first,) = window.generate()
    item = window.queue.list.item(0)
    assert item.text().startswith("a pink heart\n") and "failed" in item.text()
    assert "guidance" in item.toolTip()
    window.queue.select(first)
    assert window.queue.retry_button.isEnabled()
    backend.fail = ""
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        window.queue.retry_button.click()
    second = finished.args[0]
    assert backend.submitted[-1][0] == backend.submitted[0][0]
    window.queue.select(second)
    assert not window.queue.retry_button.isEnabled() and window.queue.duplicate_button.isEnabled()
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.queue.duplicate_button.click()
    assert len(backend.submitted) == 3 and backend.submitted[2][0].output.seed == 7


def test_the_export_dialog_s_choices_survive_a_restart(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    window.gallery.export_chosen.emit({"folder": "/somewhere", "format": "jpeg", "manifest": True})
    window.close()
    assert Settings.load().export_choices["format"] == "jpeg"
    again = make_window(Settings.load(), start_engine=False)
    assert again.gallery.export_memory["folder"] == "/somewhere"


@pytest.mark.parametrize("text", ["a red circle", ""])
def test_unknown_words_ignore_case_and_punctuation(text):
    from desktop_app.gui.prompt_help import unknown_words

    vocabulary = frozenset(grammar_words())
    assert unknown_words(text.upper() + ", on a RED background!", vocabulary) == []
    assert unknown_words("a cat's toy, a CAT", vocabulary) == ["cat's", "toy", "cat"]

