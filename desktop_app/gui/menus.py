"""The window's menus and shortcuts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget

if TYPE_CHECKING:
    from desktop_app.gui.window import MainWindow


def with_platform_keys(key: str, standard: QKeySequence.StandardKey) -> list[QKeySequence]:
    """``key`` everywhere, plus the platform's own for ``standard``: X11 desktops have none for
    Preferences or Quit, so Qt's list is empty there and the menu entry would have no key."""
    keys = [QKeySequence(key)]
    keys += [k for k in QKeySequence.keyBindings(standard) if k not in keys]
    return keys


def build_menus(window: MainWindow) -> None:
    """File, Models, View and Help; sets ``window.generate_action``, ``cancel_action`` and ``fit_action``."""

    def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, window)
        if shortcut is not None:
            act.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        act.setStatusTip(tip)
        act.setToolTip(tip or text)
        act.triggered.connect(slot)
        window.addAction(act)
        return act

    enter = [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")]
    window.generate_action = action("&Generate", window.generate, enter, "Add a job with these parameters to the queue")
    window.cancel_action = action("&Cancel", window.cancel_running, "Esc", "Stop the running job")
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(window.generate_action)
    file_menu.addAction(window.cancel_action)
    file_menu.addSeparator()
    file_menu.addAction(action("&Use the settings of an image…", window.open_image_settings, QKeySequence.StandardKey.Open,
                               "Read the prompt and parameters from a PNG (this app's, A1111's, ComfyUI's or InvokeAI's); "
                               "you can also drop an image onto the window"))
    file_menu.addAction(action("Open &output folder", window.open_output_folder, None, "Show the saved images"))
    file_menu.addAction(action("Re&scan models", window.refresh_models, "F5", "Look for new model folders"))
    file_menu.addAction(action("&Settings…", window.open_settings,
                               with_platform_keys("Ctrl+,", QKeySequence.StandardKey.Preferences),
                               "Device, previews, folders, theme"))
    file_menu.addSeparator()
    file_menu.addAction(action("&Quit", window.close, with_platform_keys("Ctrl+Q", QKeySequence.StandardKey.Quit)))

    models = window.menuBar().addMenu("&Models")
    models.addAction(action("Model &manager…", lambda: window.model_tools.open_manager(), "Ctrl+M",
                            "Every model, LoRA, VAE and embedding found: family, size, hash, folder, problems"))
    models.addAction(action("Insert a &LoRA or embedding…", lambda: window.panel.open_add_on_picker(), "Ctrl+L",
                            "Write a LoRA's tag or an embedding's name into the prompt"))
    models.addAction(action("&Add another app's folder…", lambda: window.model_tools.choose_app_root(), None,
                            "Use the models of AUTOMATIC1111/Forge, ComfyUI, InvokeAI or a Hugging Face cache in place"))

    view = window.menuBar().addMenu("&View")
    # Ctrl+0 always fits and Ctrl+1 always shows pixels 1:1, as in image viewers: neither toggles
    window.fit_action = action("&Fit to window", lambda: window.canvas.set_fit(True), "Ctrl+0",
                               "Scale the image to the window (small images by whole steps, pixel-sharp)")
    window.actual_size_action = action("&Actual size (1:1)", lambda: window.canvas.set_fit(False), "Ctrl+1",
                                       "One image pixel per screen pixel")
    zoom = QActionGroup(window)
    for act in (window.fit_action, window.actual_size_action):
        act.setCheckable(True)
        zoom.addAction(act)
        view.addAction(act)
    window.fit_action.setChecked(True)
    view.addAction(action("&Gallery", lambda: window.tabs.setCurrentIndex(window.tabs.count() - 1), "Ctrl+G",
                          "Every image saved so far"))
    view.addSeparator()
    for dock in window.findChildren(QDockWidget):
        view.addAction(dock.toggleViewAction())

    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(action("&Getting started", window.show_first_run_hint, None, "How to add models"))
    help_menu.addAction(action("Open the &log folder", window.open_log_folder, None, "Where error details are written"))
    help_menu.addAction(action("&About Diffuse Studio", window.show_about))
