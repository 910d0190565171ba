"""Starting the window: the Qt application, the main window, and the screenshot and start-up probes.

Only Qt and the torch-free parts of the app are imported here. The entry point
(``desktop_app.cli.window``) makes the backend and the gallery library and passes them in; the
backend's own thread imports torch after the window is on screen.
"""

from __future__ import annotations

import sys
import time


def create_app(argv: list[str] | None = None):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop_app import __version__
    from desktop_app.core.paths import DESKTOP_ID
    from desktop_app.gui import theme
    from desktop_app.gui.icon import app_icon

    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName("Diffuse Studio")
    app.setApplicationDisplayName("Diffuse Studio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Diffuse Studio")
    app.setDesktopFileName(DESKTOP_ID)  # the installed entry's name: the desktop shows our icon and name
    app.setWindowIcon(app_icon())
    return app, theme


def show_startup_error(text: str) -> None:
    """Say in a dialog what keeps the window from opening (started from a menu, there is no console)."""
    create_app()
    from PySide6.QtWidgets import QMessageBox

    QMessageBox(QMessageBox.Icon.Critical, "Diffuse Studio cannot start", text).exec()


def run_gui(settings, backend, library, *, configure_backend=None, theme_override: str | None = None,
            quit_after_show: bool = False, screenshot=None, started: float | None = None) -> int:
    """Show the window on ``backend`` and run the event loop until it closes; returns the exit status."""
    app, theme = create_app()
    from desktop_app.gui.window import MainWindow

    theme.apply_theme(app, theme_override or settings.theme)
    window = MainWindow(settings, backend, library, start_engine=not quit_after_show, configure_backend=configure_backend)
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: window.settings.theme == "system" and theme.apply_theme(app, "system"))
    window.show()
    _close_on_signals(window)
    if quit_after_show:
        from PySide6.QtCore import QTimer

        def report() -> None:
            seconds = time.perf_counter() - (started if started is not None else time.perf_counter())
            print(f"window shown after {seconds:.3f} s; torch imported: {'torch' in sys.modules}", flush=True)
            window.close()

        QTimer.singleShot(0, report)
    elif screenshot is not None:
        _arrange_screenshot(window, screenshot)
    return app.exec()


def _close_on_signals(window) -> None:
    """Ctrl+C or a TERM signal closes the window properly (cancel, stop the engine, save settings)."""
    import signal

    from PySide6.QtCore import QTimer

    def close(*_: object) -> None:
        QTimer.singleShot(0, window.close)

    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), close)
    ticker = QTimer(window)  # Python runs signal handlers only when it gets the GIL back from Qt
    ticker.timeout.connect(lambda: None)
    ticker.start(250)


def _grab(window):
    """What is on the screen where the window is (X11), else the window rendered offscreen."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.platformName() == "xcb":
        frame = window.frameGeometry()
        return window.screen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    return window.grab()


def _arrange_screenshot(window, args) -> None:
    from pathlib import Path

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    if args.model:
        index = window.panel.model.findData(args.model)
        if index >= 0:
            window.panel.model.setCurrentIndex(index)
    window.panel.prompt.setPlainText(args.prompt)
    if args.steps:
        window.panel.steps.setValue(args.steps)
    if args.batch:
        window.panel.batch_size.setValue(args.batch)

    taken = []

    def save() -> None:
        if taken:
            return
        taken.append(True)
        if args.tab == "gallery":
            window.tabs.setCurrentIndex(window.tabs.count() - 1)
            if window.gallery is not None and window.gallery.model.rowCount():
                window.gallery.select_row(0)
            QTimer.singleShot(1500, grab)  # the thumbnails load on worker threads
        else:
            grab()

    def grab() -> None:
        QApplication.instance().processEvents()
        path = Path(args.screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        _grab(window).save(str(path))
        print(f"screenshot saved to {path}", flush=True)
        window.close()

    def at_step(job_id: str, step: int, *_: object) -> None:
        if args.at_step and step >= args.at_step:
            QTimer.singleShot(100, save)  # let the step's preview reach the screen first

    window.bridge.progress.connect(at_step)
    for signal in (window.bridge.job_finished, window.bridge.job_failed, window.bridge.job_cancelled):
        signal.connect(lambda *_: QTimer.singleShot(400, save))
    QTimer.singleShot(200, window.generate)
