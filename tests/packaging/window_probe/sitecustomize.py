"""Test probe, put on PYTHONPATH of a launched app: when its event loop starts, print the visible
top-level windows ("WINDOW <title>") and close them, so the app exits as if the user closed it.

It lets a test start the exact command of a desktop entry's Exec line, unchanged, and see that a
window appears. It hooks QApplication.exec only, nothing of the app's own code.
"""

import os

if os.environ.get("DIFFUSE_STUDIO_WINDOW_PROBE") == "1":
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    _original_exec = QApplication.exec

    def _report_and_close() -> None:
        for widget in QApplication.topLevelWidgets():
            if widget.isVisible() and widget.isWindow():
                print(f"WINDOW {widget.windowTitle()}", flush=True)
        QApplication.closeAllWindows()

    def _exec(*_args):
        QTimer.singleShot(0, _report_and_close)
        return _original_exec()

    QApplication.exec = _exec
