"""Image to image and inpainting in the window, as a user does them: a picture dropped or sent from
the canvas or the gallery, a mask painted with the mouse, the result beside its source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop_app.backend.fake import FakeBackend
from desktop_app.backend.local.discovery import inspect_model
from desktop_app.gallery.metadata import read_metadata

LONG = 120_000


def picture_file(path: Path, size=(64, 64)) -> Path:
    pixels = np.full((size[1], size[0], 3), 225, np.uint8)
    pixels[6:30, 6:30] = (210, 40, 40)
    pixels[36:58, 34:58] = (40, 60, 210)
    Image.fromarray(pixels).save(path)
    return path


def drop_file(widget, path: Path) -> None:
    """A real drag-and-drop of a file onto ``widget``: enter, then drop."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(centre.toPoint(), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(centre, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def inpaint_mode(qtbot, window) -> None:
    """Choose inpainting in the mode box, and let the panel lay out the controls that appear."""
    panel = window.source_panel
    panel.mode.setCurrentIndex(panel.mode.findData("inpaint"))
    qtbot.waitUntil(lambda: panel.invert_button.height() > 0 and window.workspace.painter.width() > 0)


def on_picture(painter, x: float, y: float) -> QPoint:
    """The widget point over picture pixel (x, y)."""
    rect = painter.picture_rect()
    return QPoint(round(rect.left() + x * painter.scale()), round(rect.top() + y * painter.scale()))


def stroke(qtbot, painter, points) -> None:
    """A brush stroke with the real mouse: press, moves with the button held, release."""
    first, *rest = [on_picture(painter, x, y) for x, y in points]
    qtbot.mousePress(painter, Qt.MouseButton.LeftButton, pos=first)
    for point in rest:
        qtbot.mouseMove(painter, point)
    qtbot.mouseRelease(painter, Qt.MouseButton.LeftButton, pos=rest[-1] if rest else first)


def mask_array(painter) -> np.ndarray:
    image = painter.mask
    return np.frombuffer(bytes(image.constBits()), np.uint8).reshape(image.height(), image.bytesPerLine())[:, :image.width()]


def test_paint_a_mask_with_the_mouse_and_inpaint_on_the_real_engine(qtbot, make_window, settings, tmp_path, home):
    window = make_window(settings, real=True, steps=4)
    init = picture_file(tmp_path / "start.png")
    drop_file(window.source_panel, init)
    panel = window.source_panel
    assert panel.image_path == str(init) and window.panel.recipe().source.strength == 0.75
    inpaint_mode(qtbot, window)
    assert window.workspace.page() == "mask"
    painter = window.workspace.painter
    assert not window.generate_button.isEnabled()  # nothing painted yet: the panel says what to do
    assert "paint the area" in " ".join(p.message for p in window.panel.problems())
    panel.brush_size.setValue(10)
    stroke(qtbot, painter, [(8, 8), (16, 12), (24, 16), (28, 24)])
    painted = mask_array(painter)
    assert painted[12, 16] == 255 and painted[50, 50] == 0
    assert Path(panel.mask_path).is_file() and window.generate_button.isEnabled()
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    saved = Path(finished.args[1].saved[0])
    recipe = read_metadata(saved).recipe()
    assert recipe.source.mask and Path(recipe.source.mask).parent == home / "pictures" / ".sources"
    result = np.asarray(Image.open(saved).convert("RGB"))
    blurred = np.asarray(Image.open(recipe.source.mask).filter(ImageFilter.GaussianBlur(recipe.source.inpaint.blur)))
    outside = blurred == 0
    assert outside.mean() > 0.5 and np.array_equal(result[outside], np.asarray(Image.open(init))[outside])
    assert window.workspace.page() == "compare"  # before / after


def test_mask_tools_act_on_the_whole_mask(qtbot, make_window, settings, tmp_path):
    window = make_window(settings)
    drop_file(window.source_panel, picture_file(tmp_path / "p.png"))
    panel, painter = window.source_panel, window.workspace.painter
    inpaint_mode(qtbot, window)
    panel.hardness.setValue(0.0)
    stroke(qtbot, painter, [(32, 32)])
    soft = mask_array(painter)
    assert soft[32, 32] > 200 and 0 < soft[32, 39] < soft[32, 34]  # a soft brush falls off towards its edge
    qtbot.mouseClick(panel.invert_button, Qt.MouseButton.LeftButton)
    assert mask_array(painter)[0, 0] == 255 and mask_array(painter)[32, 32] < 55
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert np.array_equal(mask_array(painter), soft)
    qtbot.mouseClick(panel.eraser, Qt.MouseButton.LeftButton)
    panel.hardness.setValue(1.0)
    panel.brush_size.setValue(30)
    stroke(qtbot, painter, [(32, 32)])
    assert mask_array(painter)[32, 32] == 0
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert not painter.has_mask() and panel.mask_path == ""


def test_outpaint_handles_drag_the_margins_and_grow_the_output(qtbot, make_window, settings, tmp_path):
    window = make_window(settings)
    drop_file(window.source_panel, picture_file(tmp_path / "narrow.png", (48, 64)))
    panel, painter = window.source_panel, window.workspace.painter
    inpaint_mode(qtbot, window)
    assert (window.panel.width_box.value(), window.panel.height_box.value()) == (48, 64)
    handle = painter.handle_rects()["left"].center().toPoint()
    qtbot.mousePress(painter, Qt.MouseButton.LeftButton, pos=handle)
    qtbot.mouseMove(painter, handle - QPoint(round(16 * painter.scale()), 0))
    qtbot.mouseRelease(painter, Qt.MouseButton.LeftButton, pos=handle - QPoint(round(16 * painter.scale()), 0))
    left = panel.margin_boxes["left"].value()
    assert 12 <= left <= 20
    source = window.panel.recipe().source
    assert source.outpaint.left == left and source.masked and window.generate_button.isEnabled()
    assert window.panel.width_box.value() == (48 + left) // 2 * 2  # the tiny model's latent factor is 2


def test_send_from_the_gallery_and_the_canvas_and_compare(qtbot, make_window, settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([inspect_model(tiny_model)]))
    window.panel.prompt.setPlainText("a red circle")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    made = finished.args[1].saved[0]
    assert window.canvas.path == made
    send = next(a for a in window.canvas.actions() if a.text() == "Send to image to image")
    send.trigger()  # the canvas's context menu item
    assert window.source_panel.image_path == made and window.source_panel.current_mode() == "img2img"
    window.source_panel.strength.setValue(0.4)
    assert window.schedule_plot.strength == 0.4
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG) as finished:
        qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    assert finished.args[1].recipe.source.strength == 0.4
    assert window.workspace.page() == "compare"
    compare = window.workspace.compare
    rect = compare.view.target_rect()
    qtbot.mouseClick(compare.view, Qt.MouseButton.LeftButton, pos=QPoint(round(rect.left() + rect.width() * 0.25),
                                                                          round(rect.center().y())))
    assert abs(compare.split - 0.25) < 0.03 and abs(compare.slider.value() - 250) < 30
    window.tabs.setCurrentIndex(1)  # the gallery
    gallery = window.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() >= 2, timeout=10_000)
    gallery.view.setCurrentIndex(gallery.model.index(0, 0))
    chosen = gallery.model.path(0)
    qtbot.mouseClick(gallery.send_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentIndex() == 0 and window.source_panel.image_path == chosen


def test_restoring_an_a1111_img2img_picture_restores_its_controls(make_window, settings, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    window = make_window(settings)
    info = PngInfo()
    info.add_text("parameters", "a red circle\nSteps: 12, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6, "
                                "Seed: 9, Size: 64x64, Model: tiny, Denoising strength: 0.55, Mask blur: 7, "
                                "Inpaint area: Only masked, Masked area padding: 20, Masked content: fill, "
                                "Hires upscale: 1.5, Hires upscaler: Latent, Variation seed: 4, Variation seed strength: 0.2")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64), "white").save(path, pnginfo=info)
    assert window.restore_from_image(str(path))
    panel = window.source_panel
    assert (panel.strength.value(), panel.blur.value(), panel.area.currentData(), panel.padding.value(),
            panel.content.currentData(), panel.current_mode()) == (0.55, 7, "masked", 20, "fill", "inpaint")
    hires, variation = panel.hires_box, panel.variation_box
    assert hires.isChecked() and hires.scale.value() == 1.5 and hires.upscaler.currentData() == "latent"
    assert variation.isChecked() and (variation.seed.value(), variation.strength.value()) == (4, 0.2)
    assert window.panel.steps.value() == 12


def test_our_own_inpainting_restores_its_picture_and_mask(qtbot, make_window, settings, tmp_path):
    from desktop_app.core.recipe import Inpainting, Source

    init, mask = picture_file(tmp_path / "start.png"), tmp_path / "mask.png"
    painted = Image.new("L", (64, 64), 0)
    painted.paste(255, (10, 10, 30, 30))
    painted.save(mask)
    window = make_window(settings)
    recipe = window.panel.recipe().with_(source=Source(str(init), str(mask), 0.6, inpaint=Inpainting(blur=2)))
    window.use_settings(recipe)
    painter = window.workspace.painter
    assert window.source_panel.image_path == str(init) and mask_array(painter)[20, 20] == 255
    assert window.panel.recipe().source == recipe.source


@pytest.mark.parametrize("pressure", [1.0, 0.25])
def test_a_tablet_pen_paints_with_its_pressure(qtbot, make_window, settings, tmp_path, pressure):
    from PySide6.QtGui import QPointingDevice, QTabletEvent

    window = make_window(settings)
    drop_file(window.source_panel, picture_file(tmp_path / "p.png"))
    inpaint_mode(qtbot, window)
    painter = window.workspace.painter
    window.source_panel.brush_size.setValue(24)
    window.source_panel.hardness.setValue(1.0)
    device = QPointingDevice.primaryPointingDevice()
    for kind in (QTabletEvent.Type.TabletPress, QTabletEvent.Type.TabletRelease):
        at = QPointF(on_picture(painter, 32, 32))
        event = QTabletEvent(kind, device, at, painter.mapToGlobal(at), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                             Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        QApplication.sendEvent(painter, event)
    painted = mask_array(painter)
    width = int((painted[32] > 128).sum())
    assert (20 <= width <= 26) if pressure == 1.0 else (3 <= width <= 8)


def test_the_schedule_plot_marks_where_image_to_image_starts(qtbot):
    from desktop_app.gui.schedule_plot import NoiseSchedulePlot

    plot = NoiseSchedulePlot()
    qtbot.addWidget(plot)
    alphas, betas = np.linspace(1, 0, 1000), np.linspace(0, 0.02, 1000)
    plot.set_curves(("DDIM", 10), alphas, betas, np.linspace(900, 0, 10))
    plot.set_strength(0.3)
    assert plot.skipped() == 7  # int(10 · 0.3) = 3 steps run, the first 7 are skipped
    plot.set_current_step(1)
    plot.resize(320, 200)
    assert not plot.grab().isNull()
    plot.set_curves(("Heun", 10), alphas, betas, np.linspace(900, 0, 19))  # a second-order scheduler visits 2N − 1
    assert plot.skipped() == 14
    plot.set_strength(1.0)
    assert plot.skipped() == 0
