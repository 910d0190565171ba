"""The gallery panel at scale: open time, scroll frame times and thumbnail memory, in real widgets.

``run_panel_bench(n)`` makes ``n`` images (see ``desktop_app.gallery.bench.make_files``), opens a
``GalleryPanel`` on them and scrolls from top to bottom one screen at a time, timing each frame
(scroll + paint, which asks for the visible thumbnails) and the event loop's longest stall while
the workers make thumbnails. Run: ``python -m desktop_app.gui.gallery.bench 10000``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from desktop_app.benchmarks.gallery import make_files
from desktop_app.core.paths import HOME_ENV
from desktop_app.gallery.store import GalleryStore


def _pump(app: QApplication, ms: int) -> float:
    """Run the event loop for ``ms``; returns the longest gap between 5 ms timer ticks (a stall)."""
    longest = 0.0
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        nonlocal longest
        now = clock.elapsed()
        longest = max(longest, now - last[0])
        last[0] = now

    timer = QTimer(interval=5)
    timer.timeout.connect(tick)
    timer.start()
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    timer.stop()
    return longest


def run_panel_bench(n: int = 10_000) -> dict[str, Any]:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    saved_home = os.environ.get(HOME_ENV)
    with tempfile.TemporaryDirectory(prefix="gallery-panel-bench-") as temp:
        os.environ[HOME_ENV] = str(Path(temp) / "home")
        try:
            return _run(app, Path(temp), n)
        finally:
            if saved_home is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = saved_home


def _run(app: QApplication, temp: Path, n: int) -> dict[str, Any]:
    from desktop_app.gui.gallery.panel import GalleryPanel

    root, db = temp / "pictures", temp / "gallery.sqlite3"
    make_files(root, n)
    with GalleryStore(db, roots=[root]) as store:
        store.sync()
    results: dict[str, Any] = {"images": n}
    start = time.perf_counter()
    store = GalleryStore(db, roots=[root])
    panel = GalleryPanel(store)
    panel.resize(1280, 800)
    panel.show()
    app.processEvents()
    results["panel_open_s"] = time.perf_counter() - start
    results["first_screen_stall_ms"] = _pump(app, 400)

    bar = panel.view.verticalScrollBar()
    frames = []
    stalls = []
    step = max(bar.pageStep(), 1)
    value = 0
    while value <= bar.maximum():
        t0 = time.perf_counter()
        bar.setValue(value)
        panel.view.viewport().repaint()
        frames.append((time.perf_counter() - t0) * 1000)
        stalls.append(_pump(app, 15))
        value += step
    results.update(
        scroll_frames=len(frames),
        scroll_frame_ms_median=statistics.median(frames),
        scroll_frame_ms_max=max(frames),
        event_loop_stall_ms_max=max(stalls),
        thumbnail_cache_mb=panel.loader.cache.bytes / 2**20,
        thumbnail_cache_cap_mb=panel.loader.cache.max_bytes / 2**20,
        thumbnail_cache_entries=len(panel.loader.cache),
    )
    panel.shutdown()
    panel.close()
    store.close()
    return results


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for key, value in run_panel_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000).items():
        print(f"  {key:28s} {value:.3f}" if isinstance(value, float) else f"  {key:28s} {value}")
