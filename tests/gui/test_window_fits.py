"""The window as a new user meets it on a laptop: it fits 1280×720, nothing is clipped, the keyboard
works from the first moment (offscreen Qt, the scripted fake backend)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QSlider,
    QTabBar,
    QWidget,
)

from desktop_app.backend.fake import FakeBackend
from desktop_app.backend.local.discovery import inspect_model

LONG = 60_000
CONTROLS = (QAbstractButton, QComboBox, QAbstractSpinBox, QSlider, QLabel, QLineEdit, QPlainTextEdit, QProgressBar)
LABELS = {"colour": ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"],
          "shape": ["circle", "square", "triangle", "star", "ring", "heart"]}


def classifier_model(tiny_model):
    return dataclasses.replace(inspect_model(tiny_model), id="shapes-like", name="Shapes-like with a classifier",
                               classifier_labels=LABELS)


def active(qtbot, window):
    """The window as a user has it: active, so its shortcuts reach it."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    return window


def clipped_controls(root: QWidget) -> list[str]:
    """Visible controls that stick out of their parent, or out of the visible part of a scroll area."""
    found = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, CONTROLS) or not widget.isVisibleTo(root) or widget.isWindow() or _in_a_hidden_tab(widget):
            continue
        parent = widget.parentWidget()
        if isinstance(parent.parentWidget(), (QComboBox, QAbstractSpinBox)):
            continue  # a combo's or spin box's own insides
        if not parent.rect().contains(widget.geometry()):
            found.append(f"{type(widget).__name__} {widget.objectName() or widget.toolTip()[:40]!r} "
                         f"{widget.geometry().getRect()} outside its parent {parent.rect().getRect()}")
            continue
        area = _scroll_area_of(widget)
        if area is not None:  # inside a scrolled panel: it must be within the viewport's width
            left = widget.mapTo(area.viewport(), widget.rect().topLeft()).x()
            if left < 0 or left + widget.width() > area.viewport().width():
                found.append(f"{type(widget).__name__} {widget.toolTip()[:40]!r} is cut by the scroll area's right edge")
    return found


def assert_nothing_clipped(qtbot, root: QWidget) -> None:
    """Nothing clipped once the layouts have settled: a dock that changes size lays its scroll
    area out over a few passes of the event loop (a scroll bar appears, then the panel narrows)."""
    try:
        qtbot.waitUntil(lambda: not clipped_controls(root), timeout=3_000)
    except qtbot.TimeoutError:
        pass  # the assertion below names what stays clipped
    assert clipped_controls(root) == []


def _in_a_hidden_tab(widget: QWidget) -> bool:
    """In a dock tabbed behind another (Qt keeps it "visible", parked outside the window)."""
    parent = widget
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent is not None and parent.visibleRegion().isEmpty()


def _scroll_area_of(widget: QWidget) -> QScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea) and parent.widgetResizable():
            return parent
        parent = parent.parentWidget()
    return None


def test_the_window_fits_1280x720_after_an_image_with_a_long_path(qtbot, make_window, settings, home, tiny_model):
    settings.output_dir = str(home / ("a folder with a really quite long name for its pictures " * 3).strip())
    backend = FakeBackend([inspect_model(tiny_model), classifier_model(tiny_model)])
    window = make_window(settings, backend=backend)
    window.panel.prompt.setPlainText("a big yellow star in the top right corner on a grey background, small and bright")
    with qtbot.waitSignal(window.bridge.job_finished, timeout=LONG):
        window.generate_button.click()
    assert "a_big_yellow_star" in window.image_info.toolTip()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.size() == QSize(1280, 720), timeout=5_000)
    QApplication.processEvents()
    full = window.image_info.toolTip()
    shown = window.image_info.shown_text()
    assert shown != full and "…" in shown and shown.endswith(".png")  # elided in the middle
    assert window.image_info.width() <= window.width()
    assert full.endswith(".png") and settings.output_dir in full
    scroll = window.parameters_dock.widget()
    assert not scroll.horizontalScrollBar().isVisible()
    assert_nothing_clipped(qtbot, window)
    window.panel.model.setCurrentIndex(window.panel.model.findData("shapes-like"))
    window.panel.guidance_mode.setCurrentIndex(1)  # + Classifier guidance: the widest form
    QApplication.processEvents()
    assert not scroll.horizontalScrollBar().isVisible()
    assert_nothing_clipped(qtbot, window)
    window.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    assert window.size() == QSize(1280, 720)
    assert_nothing_clipped(qtbot, window)


def test_on_a_laptop_the_parameters_need_no_scrolling_and_image_to_image_is_a_tab_beside_them(qtbot, make_window,
                                                                                             settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([inspect_model(tiny_model)]), start_engine=False)
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.size() == QSize(1366, 768), timeout=5_000)
    QApplication.processEvents()
    scroll = window.parameters_dock.widget()
    last = window.panel.batch_count  # the last control of the panel
    bottom = last.mapTo(scroll.viewport(), last.rect().bottomLeft()).y()
    assert not window.panel.visibleRegion().isEmpty() and bottom <= scroll.viewport().height()
    assert window.source_panel.visibleRegion().isEmpty()  # behind its tab
    bars = [bar for bar in window.findChildren(QTabBar)
            if any(bar.tabText(k).startswith("Image to image") for k in range(bar.count()))]
    assert len(bars) == 1
    bar = bars[0]
    tab = next(k for k in range(bar.count()) if bar.tabText(k).startswith("Image to image"))
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(tab).center())
    qtbot.waitUntil(lambda: not window.source_panel.visibleRegion().isEmpty(), timeout=5_000)
    assert window.panel.visibleRegion().isEmpty()
    assert_nothing_clipped(qtbot, window)


def test_classifier_guidance_fits_the_parameters_panel(qtbot, make_window, settings, tiny_model):
    window = make_window(settings, backend=FakeBackend([classifier_model(tiny_model)]), model="shapes-like",
                         start_engine=False)
    QApplication.processEvents()
    window.panel.guidance_mode.setCurrentIndex(window.panel.guidance_mode.findData("classifier"))
    QApplication.processEvents()
    scroll = window.parameters_dock.widget()
    assert window.panel.classifier_scale.isVisible()
    assert not scroll.horizontalScrollBar().isVisible()
    assert clipped_controls(window.parameters_dock) == []


def test_the_prompt_has_the_keyboard_at_launch(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    window.panel.prompt.clear()
    active(qtbot, window)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.panel.prompt, timeout=5_000)
    for char in "a star":
        QTest.keyClick(window.windowHandle(), char)
    assert window.panel.prompt.text() == "a star"


def test_ctrl_comma_opens_the_settings(qtbot, make_window, settings):
    from desktop_app.gui.dialogs import SettingsDialog

    window = active(qtbot, make_window(settings, start_engine=False))
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialogs = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    assert len(dialogs) == 1
    dialogs[0].reject()


def _action(window, menu_title: str, text: str):
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == menu_title:
            for act in menu_action.menu().actions():
                if act.text().replace("&", "") == text:
                    return act
    raise AssertionError(f"no {menu_title} → {text}")


def test_getting_started_shows_one_welcome_and_warnings_do_not_stack(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    getting_started = _action(window, "Help", "Getting started")
    for _ in range(3):
        getting_started.trigger()
    assert sum("Welcome" in text for text in window.messages.messages()) == 1
    for _ in range(3):
        window.messages.show_message("The model could not be loaded.")
    assert window.messages.messages("error").count("The model could not be loaded.") == 1


def test_informational_messages_dismiss_themselves_errors_stay(qtbot, make_window, settings):
    window = make_window(settings, start_engine=False)
    window.messages.info_seconds = 0.2
    window.use_settings({"prompt": "x", "model_id": "not-here", "scheduler": "DDIM"})  # an info note
    window.messages.show_message("Something failed.")
    assert any("not-here" in text for text in window.messages.messages("info"))
    qtbot.waitUntil(lambda: not window.messages.messages("info"), timeout=5_000)
    assert window.messages.messages("error") == ["Something failed."]


def test_ctrl_0_fits_and_ctrl_1_shows_actual_size(qtbot, make_window, settings):
    window = active(qtbot, make_window(settings, start_engine=False))
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(window, Qt.Key.Key_1, ctrl)
    assert not window.canvas.fit
    qtbot.keyClick(window, Qt.Key.Key_0, ctrl)
    assert window.canvas.fit
    qtbot.keyClick(window, Qt.Key.Key_0, ctrl)  # fit again: still fit, not a toggle
    assert window.canvas.fit
    assert _action(window, "View", "Fit to window").isChecked()


def test_dock_sizes_survive_switching_to_the_gallery_and_back(qtbot, make_window, settings):
    window = active(qtbot, make_window(settings, start_engine=False))
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.size() == QSize(1366, 768), timeout=5_000)
    QApplication.processEvents()
    docks = (window.parameters_dock, window.queue_dock, window.schedule_dock, window.session_dock)
    before = [d.geometry() for d in docks]
    tab_bar = window.tabs.tabBar()
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
        QApplication.processEvents()
        assert window.tabs.currentIndex() == 1
        qtbot.mouseClick(tab_bar, Qt.MouseButton.LeftButton, pos=tab_bar.tabRect(0).center())
        QApplication.processEvents()
        assert window.tabs.currentIndex() == 0
    assert [d.geometry() for d in docks] == before


def test_the_noise_schedule_legend_fits_at_the_default_width(qtbot, make_window, settings):
    window = make_window(settings)
    with qtbot.waitSignal(window.bridge.curves_ready, timeout=LONG):
        pass
    QApplication.processEvents()
    plot = window.schedule_plot
    rects = plot.legend_rects()
    assert len(rects) == 3
    assert all(plot.rect().contains(r.toAlignedRect()) for r in rects), (plot.rect(), rects)


def test_queue_marks_use_no_glyph_the_font_lacks(qtbot, make_window, settings, tiny_model):
    from PySide6.QtGui import QFontMetrics

    backend = FakeBackend([inspect_model(tiny_model)])
    backend.hold_at = 1
    window = make_window(settings, backend=backend)
    window.panel.prompt.setPlainText("a red ring")
    ids = window.generate() + window.generate()
    qtbot.waitUntil(lambda: window.queue.state(ids[0]) == "running", timeout=LONG)
    metrics = QFontMetrics(window.queue.list.font())
    for row in range(window.queue.list.count()):
        item = window.queue.list.item(row)
        missing = [c for c in item.text() if not c.isspace() and not metrics.inFontUcs4(ord(c))]
        assert not missing, f"{item.text()!r}: the font has no glyph for {missing}"
        assert not item.icon().isNull()
    backend.release()
    qtbot.waitUntil(lambda: window.queue.state(ids[1]) == "finished", timeout=LONG)


def _type_into(qtbot, box, text: str) -> None:
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def test_a_typed_value_out_of_range_is_set_to_the_limit_and_said_so(qtbot, make_window, settings):
    window = active(qtbot, make_window(settings, start_engine=False))
    panel = window.panel
    _type_into(qtbot, panel.guidance.spin, "100")
    assert panel.guidance.value() == 50.0
    note = panel._errors["guidance.scale"]
    assert note.isVisible() and "100" in note.text() and "50" in note.text()
    _type_into(qtbot, panel.batch_size, "64")
    assert panel.batch_size.value() == 16
    note = panel._errors["output.batch_size"]
    assert note.isVisible() and "Batch size: 64" in note.text() and "16" in note.text()
    _type_into(qtbot, panel.steps.spin, "30")  # in range: nothing to say
    assert panel.steps.value() == 30 and "Steps" not in panel._errors["sampling.steps"].text()


def test_folders_that_cannot_be_opened_are_named_and_copied(qtbot, make_window, settings):
    from desktop_app.core import paths

    window = make_window(settings, start_engine=False)
    window.open_url = lambda url: False  # no file manager, no xdg-open
    _action(window, "File", "Open output folder").trigger()
    assert any(str(settings.output_path) in text and "could not be opened" in text
               for text in window.messages.messages("warning"))
    assert QApplication.clipboard().text() == str(settings.output_path)
    _action(window, "Help", "Open the log folder").trigger()
    assert any(str(paths.log_dir()) in text for text in window.messages.messages("warning"))


def test_an_image_dropped_from_another_tool_says_what_is_not_restored(qtbot, make_window, settings, tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 12, Sampler: Euler a, CFG scale: 4, Seed: 77, Size: 64x64, "
                                "Model: tiny, Clip skip: 2")
    path = tmp_path / "lighthouse.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    window = make_window(settings, start_engine=False)
    assert window.restore_from_image(str(path))
    assert any("lighthouse.png" in text and "Clip skip: 2" in text for text in window.messages.messages("info"))
