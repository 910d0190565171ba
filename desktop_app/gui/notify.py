"""A desktop notification when a long queue finishes while the user is in another window.

The notification goes to the desktop's notification service through ``notify-send`` (libnotify,
on every common Linux desktop), else through a tray icon where the desktop has a tray (Windows,
macOS, KDE); the window's taskbar entry asks for attention too. Nothing is said for a short run, or when the user is
looking at the window anyway.
"""

from __future__ import annotations

import shutil
import time

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

LONG_RUN_SECONDS = 30.0


class QueueNotifier:
    """Counts a run of jobs (from the first start with nothing queued to the moment the queue is
    empty again) and says how it went when it took long."""

    def __init__(self, window: QWidget):
        self.window = window
        self.after_seconds = LONG_RUN_SECONDS
        self._began: float | None = None
        self._images = 0
        self._failed = 0
        self._tray: QSystemTrayIcon | None = None

    def job_started(self) -> None:
        if self._began is None:
            self._began = time.monotonic()
            self._images = self._failed = 0

    def job_ended(self, images: int, failed: bool, queue_empty: bool) -> None:
        self._images += images
        self._failed += int(failed)
        if not queue_empty or self._began is None:
            return
        took, self._began = time.monotonic() - self._began, None
        if took < self.after_seconds or (self.window.isActiveWindow() and not self.window.isMinimized()):
            return
        text = f"{self._images} image{'s' if self._images != 1 else ''} made in {took:.0f} s"
        if self._failed:
            text += f"; {self._failed} job{'s' if self._failed != 1 else ''} failed"
        self.send("Diffuse Studio: the queue is done", text + ".")
        QApplication.alert(self.window)

    def send(self, title: str, text: str) -> bool:
        """Show a notification; False where the desktop offers no way to."""
        return self._by_notify_send(title, text) or self._by_tray(title, text)

    @staticmethod
    def _by_notify_send(title: str, text: str) -> bool:
        program = shutil.which("notify-send")  # libnotify's: talks to the desktop's notification service
        return bool(program) and QProcess.startDetached(program, ["--app-name=Diffuse Studio", title, text])[0]

    def _by_tray(self, title: str, text: str) -> bool:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return False
        if self._tray is None:
            self._tray = QSystemTrayIcon(self.window.windowIcon(), self.window)
        self._tray.show()
        self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 8000)
        return True
