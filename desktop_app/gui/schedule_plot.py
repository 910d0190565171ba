"""A small plot of the scheduler's noise schedule: ᾱₜ and βₜ over t, with this run's timesteps.

The curves come from the backend (a ``Curves`` event): the local one builds the real diffusers
scheduler on its own thread, between steps when a job runs (diffusers is slow to import, and its
lazy module is not safe to import from two threads at once); the newest request wins.
The plot is drawn with QPainter. For image to image, the strength cuts the schedule: the plot
shows where the run starts (a line at the first timestep that runs, x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε)
and greys the timesteps it skips.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.core.image_parts import steps_left

ALPHA_COLOUR = QColor("#3b82f6")
BETA_COLOUR = QColor("#f59e0b")
VISIT_COLOUR = QColor("#e5484d")
SKIPPED_COLOUR = QColor(128, 128, 128, 110)


class NoiseSchedulePlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.alphas: np.ndarray | None = None
        self.betas: np.ndarray | None = None
        self.visited: np.ndarray | None = None
        self.title = ""
        self.key: tuple | None = None
        self.current_step = 0  # 1-based step of the running job when it matches this plot; 0: none
        self.strength = 1.0  # image to image: only the last steps × strength steps run
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("ᾱₜ: how much of the image is left at noise level t (xₜ = √ᾱₜ·x₀ + √(1−ᾱₜ)·ε).\n"
                        "βₜ: the noise added at step t. Red marks: the timesteps this run visits.")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        return QSize(300, 190)

    def set_curves(self, key, alphas, betas, visited) -> None:
        scheduler, steps = key
        self.key = key
        self.current_step = 0
        self.alphas, self.betas, self.visited = alphas, betas, np.asarray(visited, dtype=float)
        self.title = f"{scheduler}, {steps} steps"
        self.update()

    def set_strength(self, strength: float) -> None:
        if strength != self.strength:
            self.strength = strength
            self.update()

    def skipped(self) -> int:
        """How many of the visited timesteps the strength's cut skips (times the scheduler's order)."""
        if self.visited is None or self.key is None or self.strength >= 1.0:
            return 0
        steps = max(int(self.key[1]), 1)
        order = max(1, round(len(self.visited) / steps))
        return (steps - steps_left(steps, self.strength)) * order

    def set_current_step(self, step: int) -> None:
        if step != self.current_step:
            self.current_step = step
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().windowText().color()
        faint = QColor(text)
        faint.setAlpha(70)
        metrics = painter.fontMetrics()
        line = metrics.height()
        legend = self.legend_rects()
        legend_rows = len({round(r.top()) for r in legend}) or 1
        plot = QRectF(34, line + 8, max(self.width() - 34 - 40, 10),
                      max(self.height() - (2 + legend_rows) * line - 22, 10))
        if self.alphas is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Noise schedule: computing…")
            return
        count = len(self.alphas)
        beta_max = float(self.betas.max()) or 1.0

        def point(t: float, value: float, top: float = 1.0) -> QPointF:
            return QPointF(plot.left() + plot.width() * t / max(count - 1, 1), plot.bottom() - plot.height() * value / top)

        painter.setPen(QPen(faint, 1))
        painter.drawRect(plot)
        for frac in (0.25, 0.5, 0.75):
            y = plot.bottom() - plot.height() * frac
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        painter.setPen(text)
        painter.drawText(QRectF(0, 0, self.width(), line + 4), Qt.AlignmentFlag.AlignCenter, self.title)
        painter.drawText(QRectF(0, plot.top() - line / 2, 30, line), Qt.AlignmentFlag.AlignRight, "1")
        painter.drawText(QRectF(0, plot.bottom() - line / 2, 30, line), Qt.AlignmentFlag.AlignRight, "0")
        painter.drawText(QRectF(plot.right() + 3, plot.top() - line / 2, 40, line), Qt.AlignmentFlag.AlignLeft, f"{beta_max:.3g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, 40, line), Qt.AlignmentFlag.AlignLeft, "t = 0")
        painter.drawText(QRectF(plot.right() - 60, plot.bottom() + 2, 60, line), Qt.AlignmentFlag.AlignRight, f"{count - 1}")

        for values, colour, top in ((self.alphas, ALPHA_COLOUR, 1.0), (self.betas, BETA_COLOUR, beta_max)):
            path = QPainterPath()
            stride = max(count // 300, 1)
            for k, t in enumerate(range(0, count, stride)):
                (path.lineTo if k else path.moveTo)(point(t, float(values[t]), top))
            painter.setPen(QPen(colour, 2))
            painter.drawPath(path)

        painter.setPen(Qt.PenStyle.NoPen)
        ts = np.arange(count, dtype=float)
        radius = 2.8 if len(self.visited) <= 60 else 1.6
        skipped = self.skipped()
        for k, t in enumerate(self.visited):
            painter.setBrush(SKIPPED_COLOUR if k < skipped else VISIT_COLOUR)
            t = float(np.clip(t, 0, count - 1))
            alpha = float(np.interp(t, ts, self.alphas))
            painter.drawEllipse(point(t, alpha), radius, radius)
            tick = point(t, 0)
            painter.drawRect(QRectF(tick.x() - 0.75, tick.y() - 5, 1.5, 5))
        if skipped and skipped < len(self.visited):
            start = float(np.clip(self.visited[skipped], 0, count - 1))
            painter.setPen(QPen(VISIT_COLOUR, 1, Qt.PenStyle.DashLine))
            painter.drawLine(point(start, 0), point(start, 1))
            painter.drawText(point(start, 0.93) + QPointF(4, 0), f"start · strength {self.strength:g}")
            painter.setPen(Qt.PenStyle.NoPen)
        if 0 < self.current_step <= len(self.visited) - skipped:
            t = float(np.clip(self.visited[skipped + self.current_step - 1], 0, count - 1))
            painter.setPen(QPen(text, 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(point(t, float(np.interp(t, ts, self.alphas))), 6, 6)

        painter.setPen(Qt.PenStyle.NoPen)
        for rect, (label, colour) in zip(legend, self._legend_items(), strict=True):
            painter.setBrush(colour)
            painter.drawRect(QRectF(rect.left(), rect.top() + line / 2 - 4, 10, 8))
            painter.setPen(text)
            painter.drawText(QPointF(rect.left() + 14, rect.top() + metrics.ascent()), label)
            painter.setPen(Qt.PenStyle.NoPen)

    def _legend_items(self) -> list[tuple[str, QColor]]:
        visited = len(self.visited) if self.visited is not None else 0
        runs = visited - self.skipped() if visited else 0
        visits = f"{runs} of {visited} t run" if runs < visited else f"{visited} visited t"
        return [("ᾱₜ", ALPHA_COLOUR), ("βₜ (right scale)", BETA_COLOUR), (visits, VISIT_COLOUR)]

    def legend_rects(self) -> list[QRectF]:
        """Where each legend entry goes: along the bottom, wrapping onto a second row when the
        dock is narrow, so no entry is cut off."""
        metrics = self.fontMetrics()
        line = metrics.height()
        widths = [14 + metrics.horizontalAdvance(label) for label, _ in self._legend_items()]
        rows: list[list[float]] = [[]]
        x, right = 34.0, self.width() - 4.0
        for width in widths:
            if rows[-1] and x + width > right:
                rows.append([])
                x = 34.0 if width + 34 <= right else 4.0
            rows[-1].append(width)
            x += width + 8
        top = self.height() - len(rows) * line - 4
        rects: list[QRectF] = []
        for k, row in enumerate(rows):
            x = 34.0 if sum(row) + 8 * (len(row) - 1) + 34 <= right else 4.0
            for width in row:
                rects.append(QRectF(x, top + k * line, width, line))
                x += width + 8
        return rects
