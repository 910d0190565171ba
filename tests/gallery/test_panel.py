from __future__ import annotations

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QGuiApplication  # noqa: E402

from desktop_app.core import paths  # noqa: E402
from desktop_app.gallery.store import GalleryStore  # noqa: E402
from desktop_app.gui.gallery import GalleryPanel  # noqa: E402

from .conftest import make_request, shown, tiny_image  # noqa: E402


def test_grid_shows_images_newest_first_with_thumbnails_made_off_the_gui_thread(panel, qtbot, saved_images):
    assert shown(panel) == [str(p) for p in reversed(saved_images)]
    with qtbot.waitSignal(panel.loader.ready, timeout=10_000) as ready:
        panel.model.index(0).data(1)  # DecorationRole asks for the thumbnail
    assert ready.args[0] in shown(panel)
    assert list((paths.cache_dir() / "thumbnails").rglob("*.jpg"))
    assert panel.count_label.text() == "5 images"


def test_search_and_filters(panel, qtbot, saved_images):
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        panel.search.setText("red")
    assert shown(panel) == [str(saved_images[3]), str(saved_images[0])]
    panel.search.clear()
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        pass
    panel.model_filter.setCurrentIndex(panel.model_filter.findData("other-model"))
    assert shown(panel) == [str(saved_images[3]), str(saved_images[2])]
    panel.scheduler_filter.setCurrentIndex(panel.scheduler_filter.findData("DDIM"))
    assert shown(panel) == [str(saved_images[2])]
    assert panel.count_label.text() == "1 of 5 images"


def test_use_these_settings_emits_the_exact_request(panel, qtbot, saved_images):
    panel.select_row(shown(panel).index(str(saved_images[1])))
    with qtbot.waitSignal(panel.use_settings, timeout=1_000) as emitted:
        panel.use_button.click()
    assert emitted.args[0] == make_request(prompt="a blue square", model_id="shapes", scheduler="Euler a", seed=101)


def test_delete_then_undo(panel, qtbot, saved_images):
    panel.select_row(0)
    panel.delete_button.click()
    assert not saved_images[4].exists() and len(shown(panel)) == 4 and panel.undo_bar.isVisibleTo(panel)
    panel.undo_button.click()
    assert saved_images[4].exists() and shown(panel)[0] == str(saved_images[4])
    assert not panel.undo_bar.isVisibleTo(panel)


def _save_and_show(panel, out_dir, prompt: str):
    from desktop_app.core.events import GeneratedImage
    from desktop_app.gallery.library import Library

    saved = Library(out_dir, panel.store).save(GeneratedImage(tiny_image("blue"), make_request(prompt=prompt), 0))
    panel.show_new(saved.image_id, saved.path)
    return saved.path


def test_a_new_image_goes_on_top_keeping_the_selection(panel, out_dir, qtbot):
    panel.select_row(2)
    selected = panel.selected_paths()
    with qtbot.assertNotEmitted(panel.model.modelReset):
        path = _save_and_show(panel, out_dir, "brand new")
    assert shown(panel)[0] == str(path) and panel.selected_paths() == selected
    assert panel.count_label.text() == "6 images · 1 selected"
    panel.search.setText("circle")
    panel.refresh()
    other = _save_and_show(panel, out_dir, "a square again")  # saved, but it does not match the search: not shown
    assert str(other) not in shown(panel) and panel.count_label.text() == "1 of 7 images"


def test_favourites(panel, saved_images):
    panel.select_row(shown(panel).index(str(saved_images[2])))
    panel.favourite_button.click()
    assert panel.favourite_button.text().startswith("★")
    panel.favourites_only.setChecked(True)
    assert shown(panel) == [str(saved_images[2])]


def test_copy_parameters_and_drag_out(panel, saved_images):
    panel.select_row(0)
    panel.copy_parameters_button.click()
    assert QGuiApplication.clipboard().text().startswith("a yellow star\nNegative prompt: blurry")
    mime = panel.model.mimeData([panel.model.index(0)])
    assert [u.toLocalFile() for u in mime.urls()] == [str(saved_images[4])]


def test_open_folder_opens_the_containing_folder(panel, saved_images):
    opened = []
    panel.open_url = opened.append
    panel.select_row(0)
    panel.open_folder_button.click()
    assert [u.toLocalFile() for u in opened] == [str(saved_images[4].parent)]


def test_foreign_image_restores_settings(panel, qtbot, tmp_path):
    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nNegative prompt: fog\nSteps: 12, Sampler: Euler a, CFG scale: 4, Seed: 77, Size: 64x64, Model: shapes")
    path = tmp_path / "from-a1111.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    with qtbot.waitSignal(panel.use_settings, timeout=1_000) as emitted:
        assert panel.restore_from_file(path)
    assert {k: emitted.args[0].flat()[k] for k in ("prompt", "negative_prompt", "steps", "scheduler", "seed")} == {
        "prompt": "a lighthouse", "negative_prompt": "fog", "steps": 12, "scheduler": "Euler a", "seed": 77}
    bad = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(bad)
    with qtbot.waitSignal(panel.message, timeout=1_000) as said:
        assert not panel.restore_from_file(bad)
    assert "no generation settings" in said.args[0]


def test_export_runs_off_the_gui_thread_and_reports(panel, qtbot, tmp_path, saved_images):
    from desktop_app.gallery.export import ExportOptions

    panel.view.selectAll()
    with qtbot.waitSignal(panel.export_ended, timeout=20_000) as ended:
        assert panel.export_selected(ExportOptions(tmp_path / "exp.zip", as_zip=True, format="jpeg", manifest=True))
    assert ended.args[0] == f"Exported 5 images to {tmp_path / 'exp.zip'}."
    assert (tmp_path / "exp.zip").exists() and not panel.export_bar.isVisibleTo(panel)


def test_export_failure_is_reported(panel, qtbot, tmp_path):
    from desktop_app.gallery.export import ExportOptions

    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    panel.select_row(0)
    with qtbot.waitSignal(panel.export_ended, timeout=20_000) as ended:
        panel.export_selected(ExportOptions(blocker / "sub"))
    assert "Nothing was exported" in ended.args[0]


def test_export_dialog_options(qtbot, tmp_path):
    from desktop_app.gui.gallery.export_dialog import ExportDialog

    dialog = ExportDialog(3, tmp_path)
    qtbot.addWidget(dialog)
    dialog.to_zip.setChecked(True)
    dialog.format.setCurrentIndex(dialog.format.findData("webp"))
    dialog.manifest.setChecked(True)
    dialog.template.setText("{seed}")
    options = dialog.options()
    assert (options.as_zip, options.format, options.manifest, options.template) == (True, "webp", True, "{seed}")
    assert options.destination == tmp_path / "Diffuse Studio export.zip"  # a ZIP is proposed a .zip name


def test_unreadable_image_gets_a_placeholder_not_a_crash(panel, qtbot, saved_images):
    saved_images[4].write_bytes(b"\x89PNG\r\n\x1a\n this file was damaged")
    row = shown(panel).index(str(saved_images[4]))
    with qtbot.waitSignal(panel.loader.failed, timeout=10_000) as failed:
        placeholder = panel.model.index(row).data(1)
    assert failed.args[0] == str(saved_images[4]) and not placeholder.isNull()
    assert panel.model.index(row).data(1) is not None  # asked again: no new job, still the placeholder


def test_shutdown_stops_every_worker(qtbot, saved_images, out_dir):
    store = GalleryStore(roots=[out_dir])
    widget = GalleryPanel(store)
    qtbot.addWidget(widget)
    for row in range(widget.model.rowCount()):
        widget.model.index(row).data(1)
    widget.shutdown()
    assert widget._pool.activeThreadCount() == 0
    widget.shutdown()  # twice is harmless
    store.close()


def test_a_file_deleted_outside_the_app_disappears_from_the_grid(panel, qtbot, saved_images):
    saved_images[0].unlink()
    row = shown(panel).index(str(saved_images[0]))
    with qtbot.waitSignal(panel.synced, timeout=10_000):
        panel.model.index(row).data(1)  # its thumbnail fails, which starts a scan
    assert str(saved_images[0]) not in shown(panel) and len(shown(panel)) == 4


def test_context_menu_offers_the_actions(panel):
    assert [a.text() for a in panel.view.actions()][:2] == ["Use these settings", "Favourite / not"]


@pytest.mark.expect_log(r"gallery index .* is unusable")
def test_a_corrupt_index_is_rebuilt_and_the_panel_says_so(qtbot, saved_images, out_dir):
    from desktop_app.gallery.store import default_db_path

    with GalleryStore(roots=[out_dir]) as store:
        store.sync()
    default_db_path().write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        default_db_path().with_name(default_db_path().name + suffix).unlink(missing_ok=True)
    widget = GalleryPanel()
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.message, timeout=5_000) as said:
        pass
    assert "rebuilt from the image files" in said.args[0] and len(shown(widget)) == 5
    widget.shutdown()


def test_qt_bindings_keep_none_and_true_alive(panel):
    """PySide6 6.12.0 on CPython < 3.12 drops a reference to None or True on every signal emit, slot
    call and model data() call, so a long session aborts ("bool_dealloc" / "none_dealloc") once
    the count reaches zero: scrolling a 10,000-image gallery did. 6.11.3 and CPython >= 3.12 are fine."""
    import ctypes
    import sys

    before = sys.getrefcount(None), sys.getrefcount(True)
    index = panel.model.index(0)
    for _ in range(500):
        index.data(0)  # Python data() returns None
        panel.refreshed.emit()
    after = sys.getrefcount(None), sys.getrefcount(True)
    for obj, lost in ((None, before[0] - after[0]), (True, before[1] - after[1])):
        for _ in range(max(lost, 0)):  # give the references back, so later tests do not abort
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    assert after[0] - before[0] > -250 and after[1] - before[1] > -250, (
        f"the Qt bindings leak references (None {after[0] - before[0]:+d}, True {after[1] - before[1]:+d} "
        "over 500 calls): use PySide6 < 6.12 on this Python, or Python >= 3.12")


def test_comfyui_image_details_and_copied_parameters(panel, out_dir):
    import json

    from .test_save_metadata import COMFY_GRAPH

    info = PngInfo()
    info.add_text("prompt", json.dumps(COMFY_GRAPH))
    path = out_dir / "comfy" / "ComfyUI_00001_.png"
    path.parent.mkdir()
    Image.new("RGB", (64, 48)).save(path, pnginfo=info)
    panel.show_new(panel.store.add_file(path), path)
    panel.select_row(shown(panel).index(str(path)))
    assert "beautiful scenery" in panel.details.text.toPlainText()
    panel.copy_parameters_button.click()
    text = QGuiApplication.clipboard().text()
    assert text.startswith("beautiful scenery, glass bottle\nNegative prompt: text, watermark\nSteps: 20, Sampler: DPM++ 2M")
