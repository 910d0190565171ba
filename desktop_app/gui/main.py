"""Starting the window: ``run_gui()`` (what ``diffuse-studio`` runs with no subcommand).

Only Qt and the torch-free parts of the app are imported here; the engine thread imports torch
after the window is on screen. ``python -m desktop_app.gui.main --screenshot out.png`` generates
once and saves a picture of the window (scripts/screenshot.sh uses it).
"""

from __future__ import annotations

import argparse
import sys
import time

_STARTED = time.perf_counter()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m desktop_app.gui.main", description="Open the Diffuse Studio window.")
    p.add_argument("--screenshot", metavar="PATH", help="generate once, save a picture of the window to PATH, quit")
    p.add_argument("--prompt", default="a big yellow star in the top right corner", help="with --screenshot")
    p.add_argument("--model", default=None, help="model id or folder to select (with --screenshot)")
    p.add_argument("--models-dir", action="append", default=[], help="an extra model folder for this run")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None, help="batch size (with --screenshot)")
    p.add_argument("--tab", choices=["create", "gallery"], default="create", help="the tab to photograph (with --screenshot)")
    p.add_argument("--at-step", type=int, default=0, help="photograph the running job at this step instead of the end")
    p.add_argument("--theme", choices=["system", "light", "dark"], help="this run's theme (the setting is kept)")
    p.add_argument("--quit-after-show", action="store_true", help="print the start-up time and quit (benchmark)")
    return p


def create_app(argv: list[str] | None = None):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop_app import __version__
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
    from desktop_app.desktop_entry import DESKTOP_ID

    app.setDesktopFileName(DESKTOP_ID)  # the installed entry's name: the desktop shows our icon and name
    app.setWindowIcon(app_icon())
    return app, theme


def run_gui(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv or [])
    app, theme = create_app()
    from desktop_app.gui.window import MainWindow
    from desktop_app.settings import Settings

    settings = Settings.load()
    for folder in args.models_dir:
        if folder not in settings.extra_model_dirs:
            settings.extra_model_dirs.append(folder)
    theme.apply_theme(app, args.theme or settings.theme)
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: window.settings.theme == "system" and theme.apply_theme(app, "system"))
    window = MainWindow(settings, start_engine=not args.quit_after_show)
    window.show()
    _close_on_signals(window)
    if args.quit_after_show:
        from PySide6.QtCore import QTimer

        def report() -> None:
            print(f"window shown after {time.perf_counter() - _STARTED:.3f} s; torch imported: {'torch' in sys.modules}", flush=True)
            window.close()

        QTimer.singleShot(0, report)
    elif args.screenshot:
        _arrange_screenshot(window, args)
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
        QApplication.instance().processEvents()
        path = Path(args.screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        _grab(window).save(str(path))
        print(f"screenshot saved to {path}", flush=True)
        window.close()

    def at_step(job_id: int, step: int, *_: object) -> None:
        if args.at_step and step >= args.at_step:
            QTimer.singleShot(100, save)  # let the step's preview reach the screen first

    window.engine.progress.connect(at_step)
    for signal in (window.engine.job_finished, window.engine.job_failed, window.engine.job_cancelled):
        signal.connect(lambda *_: QTimer.singleShot(400, save))
    QTimer.singleShot(200, window.generate)


if __name__ == "__main__":
    from desktop_app.app import setup_logging

    setup_logging()
    sys.exit(run_gui(sys.argv[1:]))
