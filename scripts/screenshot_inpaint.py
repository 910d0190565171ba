"""Screenshots of inpainting and outpainting on the built-in model, driven like a user would.

Run under an X server with a window manager (the mouse strokes are real X events, sent with
xdotool), e.g.:

    Xvfb :99 -screen 0 1600x1000x24 & DISPLAY=:99 openbox &
    DISPLAY=:99 DIFFUSE_STUDIO_HOME=$(mktemp -d) QT_QPA_PLATFORM=xcb python scripts/screenshot_inpaint.py OUT_FOLDER

It makes "a big red circle in the centre", sends it to inpainting, paints over the circle and the
place to its right, repaints "a big red circle on the right", then extends the result 32 pixels on
the left (outpainting). Each stage is saved as a screenshot of the whole screen (``import``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QPoint, QTimer

from desktop_app.cli.window import make_backend, make_library
from desktop_app.core.settings import Settings
from desktop_app.gui.main import create_app


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    app, theme = create_app()
    from desktop_app.gui.window import MainWindow

    settings = Settings(device="cpu", precision="fp32", first_run_done=True)
    window = MainWindow(settings, make_backend(settings), make_library(settings))
    theme.apply_theme(app, "light")
    window.resize(1560, 960)
    window.show()
    panel, source = window.panel, window.source_panel
    painter = window.workspace.painter

    def shot(name: str) -> None:
        app.processEvents()
        subprocess.run(["import", "-window", "root", str(out / f"{name}.png")], check=True)
        print("saved", out / f"{name}.png", flush=True)

    def screen_point(x: float, y: float) -> QPoint:
        rect = painter.picture_rect()
        return painter.mapToGlobal(QPoint(round(rect.left() + x * painter.scale()), round(rect.top() + y * painter.scale())))

    def drag(points, button: int = 1) -> None:
        """A real mouse drag through ``points`` (widget-independent screen coordinates)."""
        first, *rest = points
        command = ["xdotool", "mousemove", str(first.x()), str(first.y()), "mousedown", str(button)]
        for point in rest:
            command += ["mousemove", "--sync", str(point.x()), str(point.y())]
        command += ["mouseup", str(button)]
        subprocess.run(command, check=True)

    def first_picture() -> None:
        panel.model.setCurrentIndex(panel.model.findData("shapes"))
        panel.prompt.setPlainText("a big red circle in the centre")
        panel.steps.setValue(20)
        panel.seed.setValue(7)
        window.generate()

    def paint_mask() -> None:
        next(a for a in window.canvas.actions() if a.text() == "Send to inpainting").trigger()
        source.strength.setValue(1.0)
        source.brush_size.setValue(14)
        QTimer.singleShot(500, stroke)

    def stroke() -> None:
        for y in range(16, 50, 6):
            drag([screen_point(14, y), screen_point(40, y), screen_point(62, y)])
        QTimer.singleShot(600, lambda: (shot("1-mask"), after_mask()))

    def after_mask() -> None:
        panel.prompt.setPlainText("a big red circle on the right")
        window.generate()

    def inpainted() -> None:
        shot("2-inpainted-compare")
        window.workspace.show_page("picture")
        QTimer.singleShot(300, lambda: (shot("3-inpainted"), advance()))

    def outpaint() -> None:
        next(a for a in window.canvas.actions() if a.text() == "Send to inpainting").trigger()
        source.content.setCurrentIndex(source.content.findData("fill"))

        def handles() -> None:
            left = painter.handle_rects()["left"].center().toPoint()
            start = painter.mapToGlobal(left)
            drag([start, start - QPoint(round(16 * painter.scale()), 0), start - QPoint(round(32 * painter.scale()), 0)])
            QTimer.singleShot(600, lambda: (shot("4-outpaint-handles"), go()))

        def go() -> None:
            panel.prompt.setPlainText("a big red circle on the right and a big blue square on the left")
            window.generate()

        QTimer.singleShot(500, handles)

    def outpainted() -> None:
        shot("5-outpainted-compare")
        window.workspace.show_page("picture")
        QTimer.singleShot(300, lambda: (shot("6-outpainted"), window.close()))

    stages = iter([first_picture, paint_mask, inpainted, outpaint, outpainted])

    def advance(*_: object) -> None:
        try:
            stage = next(stages)
        except StopIteration:
            return
        QTimer.singleShot(800, stage)

    window.bridge.job_finished.connect(advance)
    window.bridge.job_failed.connect(lambda job, message: (print("failed:", message, flush=True), window.close()))
    QTimer.singleShot(3000, advance)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/inpaint-shots")))
