"""The gallery as a new user meets it: the buttons work when clicked, a real grid, honest details."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_app.gallery.store import GalleryStore  # noqa: E402
from desktop_app.gui.gallery import GalleryPanel  # noqa: E402
from desktop_app.gui.gallery.export_dialog import ExportDialog  # noqa: E402
from tests.qt_noise import OFFSCREEN_NOISE  # noqa: E402

from .conftest import make_request, save_image, shown, tiny_image  # noqa: E402

# The offscreen platform cannot resize native windows to size hints (the dialogs); it says so.
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_NOISE)
FOREIGN = Path(__file__).resolve().parents[3] / "shared" / "interop" / "foreign"


def _when_dialog(qtbot, act) -> None:
    """Run ``act(dialog)`` on the modal dialog a click is about to open."""

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, ExportDialog) and dialog.isVisible():
            act(dialog)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def test_the_export_button_asks_how_then_exports(panel, qtbot, tmp_path, saved_images):
    panel.view.selectAll()
    target = tmp_path / "from the button"

    def fill(dialog: ExportDialog) -> None:
        dialog.destination.setText(str(target))
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    _when_dialog(qtbot, fill)
    with qtbot.waitSignal(panel.export_ended, timeout=20_000) as ended:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert ended.args[0] == f"Exported 5 images to {target}."
    assert len(list(target.glob("*.png"))) == 5


def test_the_export_dialog_remembers_and_proposes_a_zip_name(panel, qtbot, tmp_path, saved_images):
    panel.select_row(0)
    target = tmp_path / "kept here"
    target.mkdir()

    def first(dialog: ExportDialog) -> None:
        dialog.destination.setText(str(target / "first"))
        dialog.format.setCurrentIndex(dialog.format.findData("webp"))
        dialog.manifest.setChecked(True)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    _when_dialog(qtbot, first)
    with qtbot.waitSignal(panel.export_ended, timeout=20_000):
        panel.export_button.click()
    seen = {}

    def second(dialog: ExportDialog) -> None:
        seen["folder"] = dialog.destination.text()
        seen["format"], seen["manifest"] = dialog.format.currentData(), dialog.manifest.isChecked()
        dialog.to_zip.click()
        seen["zip"] = dialog.destination.text()
        dialog.to_folder.click()
        seen["back"] = dialog.destination.text()
        dialog.reject()

    _when_dialog(qtbot, second)
    panel.export_button.click()
    assert Path(seen["folder"]).parent == target
    assert (seen["format"], seen["manifest"]) == ("webp", True)
    assert seen["zip"].endswith(".zip") and not seen["back"].endswith(".zip")
    assert panel.export_memory["format"] == "webp"


def test_several_columns_of_scaled_thumbnails_at_1280(panel, qtbot):
    panel.resize(1280, 700)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.view
    assert view.viewport().width() // view.gridSize().width() >= 4
    assert not panel.splitter.isCollapsible(0) and not panel.splitter.isCollapsible(1)
    assert panel.splitter.widget(1).minimumSizeHint().width() <= 340
    panel.thumbnail_size.setValue(200)
    assert view.iconSize().width() == 200
    with qtbot.waitSignal(panel.loader.ready, timeout=10_000):
        panel.model.index(0).data(1)
    QApplication.processEvents()
    rect = view.visualRect(panel.model.index(0))
    image = view.viewport().grab(rect).toImage()
    red = sum(1 for y in range(0, image.height(), 2) for x in range(0, image.width(), 2)
              if QColor(image.pixel(x, y)).red() > 200 and QColor(image.pixel(x, y)).green() < 60)
    assert red * 4 >= 0.8 * 200 * 200, f"the 32-px thumbnail is drawn at {red * 4} px², not scaled to 200²"


def test_favourites_wear_a_badge_and_the_selection_is_counted(panel, qtbot):
    panel.resize(1280, 700)
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitSignal(panel.loader.ready, timeout=10_000):
        panel.model.index(1).data(1)
    panel.select_row(1)
    panel.favourite_button.click()
    QApplication.processEvents()

    def gold(row: int) -> int:
        image = panel.view.viewport().grab(panel.view.visualRect(panel.model.index(row))).toImage()
        return sum(1 for y in range(image.height()) for x in range(image.width())
                   if (c := QColor(image.pixel(x, y))).red() > 200 and 150 < c.green() < 215 and c.blue() < 80)

    assert gold(1) > 20 and gold(0) == 0
    selection = panel.view.selectionModel()
    selection.select(panel.model.index(3), QItemSelectionModel.SelectionFlag.Select)
    assert "2 selected" in panel.count_label.text()


def test_an_empty_gallery_says_what_to_do(qtbot, out_dir):
    store = GalleryStore(roots=[out_dir])
    widget = GalleryPanel(store)
    qtbot.addWidget(widget)
    widget.show()
    with qtbot.waitSignal(widget.synced, timeout=10_000):
        pass
    assert widget.empty_label.isVisible() and "No images yet" in widget.empty_label.text()
    widget.shutdown()
    store.close()


def test_search_finds_a_word_from_any_part_of_it(panel, qtbot, out_dir):
    save_image(tiny_image(), make_request(prompt="a pink heart at the top"), output_dir=out_dir, store=panel.store)
    panel.refresh()
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        qtbot.keyClicks(panel.search, "eart")
    assert [Path(p).name for p in shown(panel)] and all("heart" in p for p in shown(panel))
    assert panel.empty_label.isHidden()
    panel.search.clear()
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        qtbot.keyClicks(panel.search, "zebra")
    assert shown(panel) == [] and "zebra" in panel.empty_label.text()


def test_open_folder_without_a_launcher_says_so_and_gives_the_path(panel, qtbot, saved_images):
    panel.open_url = lambda url: False  # no xdg-open, no file manager
    panel.select_row(0)
    with qtbot.waitSignal(panel.message, timeout=1_000) as said:
        panel.open_folder_button.click()
    assert str(saved_images[4].parent) in said.args[0] and "could not" in said.args[0]


def test_details_list_only_the_fields_that_apply(panel, qtbot, out_dir):
    path = save_image(tiny_image(), make_request(prompt="a ddim picture", scheduler="DDIM", eta=0.0), output_dir=out_dir,
                      store=panel.store)
    panel.refresh()
    panel.select_row(shown(panel).index(str(path)))
    text = panel.details.text.toPlainText()
    assert "η (DDIM)" in text
    assert "DDPM variance" not in text and "Classifier scale" not in text and "Classifier target" not in text
    panel.select_row(shown(panel).index(next(p for p in shown(panel) if "a_red_circle" in p)))
    assert "η (DDIM)" not in panel.details.text.toPlainText()  # DPM++ 2M Karras takes no η


@pytest.mark.parametrize("name, maker", [("Fooocus__fooocus1_cropped.png", "Fooocus"),
                                         ("NovelAI__novelai1_cropped.png", "NovelAI")])
def test_details_name_the_tool_and_what_has_no_control_here(panel, qtbot, out_dir, name, maker):
    if not (FOREIGN / name).is_file():
        pytest.skip(f"{FOREIGN / name} is not here")
    path = out_dir / "foreign" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FOREIGN / name, path)
    panel.show_new(panel.store.add_file(path), path)
    panel.select_row(shown(panel).index(str(path)))
    text = panel.details.text.toPlainText()
    assert f"Made by {maker}" in " ".join(text.split())
    assert "No control here" in text and "no control here" not in text.split("No control here", 1)[0]
    if maker == "Fooocus":
        assert "sharpness filter" in text


def test_use_these_settings_on_a_foreign_image_says_what_is_not_restored(panel, qtbot, out_dir):
    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nNegative prompt: fog\nSteps: 12, Sampler: Euler a, CFG scale: 4, "
                                "Seed: 77, Size: 64x64, Model: shapes, Clip skip: 2, Face restoration: CodeFormer, "
                                "Hires upscale: 2")
    path = out_dir / "a1111" / "lighthouse.png"
    path.parent.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    panel.show_new(panel.store.add_file(path), path)
    panel.select_row(shown(panel).index(str(path)))
    with qtbot.waitSignal(panel.not_restored, timeout=1_000) as said, qtbot.waitSignal(panel.use_settings, timeout=1_000):
        panel.use_button.click()
    assert "lighthouse.png" in said.args[0] and "Clip skip: 2" in said.args[0] and "Face restoration: CodeFormer" in said.args[0]
    assert "Hires upscale" not in said.args[0]  # the hires fix has its controls now: restored, not listed


def test_details_of_an_image_with_problems_show_them(panel, qtbot, out_dir):
    info = PngInfo()
    info.add_text("sd-metadata", "{this is not json")
    info.add_text("parameters", "a boat\nSteps: 10, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64")
    path = out_dir / "odd" / "boat.png"
    path.parent.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    panel.show_new(panel.store.add_file(path), path)
    panel.select_row(shown(panel).index(str(path)))
    assert "sd-metadata" in panel.details.text.toPlainText()
