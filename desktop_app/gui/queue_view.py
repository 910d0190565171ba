"""The job queue: what is running and waiting, in order. Queued jobs can be removed, the running one
cancelled, a failed or cancelled one retried, any one duplicated (queued again as it was asked for).

Each entry reads prompt first, then its number, state and the main settings; the tooltip has
everything. The state is an icon drawn here, not an emoji (many desktops have no emoji font).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from desktop_app.core.recipe import Recipe

STATE_TEXT = {"queued": "waiting", "running": "running", "finished": "done", "failed": "failed", "cancelled": "cancelled"}
ENDED = ("finished", "failed", "cancelled")
_COLOURS = {"queued": "#8a8f98", "running": "#3b82f6", "finished": "#22a559", "failed": "#e5484d", "cancelled": "#8a8f98"}


def state_icon(state: str, side: int = 16) -> QIcon:
    """A small round mark per state: hollow (waiting), filled (running), a tick, a cross, a slash."""
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(_COLOURS.get(state, "#8a8f98"))
    circle = QRectF(1.5, 1.5, side - 3, side - 3)
    if state == "queued":
        painter.setPen(QPen(colour, 1.6))
        painter.drawEllipse(circle)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(circle)
        painter.setPen(QPen(QColor("white"), 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        s = side / 16
        if state == "running":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("white"))
            painter.drawPolygon([QPointF(6 * s, 4.5 * s), QPointF(12 * s, 8 * s), QPointF(6 * s, 11.5 * s)])
        elif state == "finished":
            painter.drawPolyline([QPointF(4.5 * s, 8.5 * s), QPointF(7 * s, 11 * s), QPointF(11.5 * s, 5.5 * s)])
        elif state == "failed":
            painter.drawLine(QPointF(5.5 * s, 5.5 * s), QPointF(10.5 * s, 10.5 * s))
            painter.drawLine(QPointF(10.5 * s, 5.5 * s), QPointF(5.5 * s, 10.5 * s))
        else:
            painter.drawLine(QPointF(5 * s, 11 * s), QPointF(11 * s, 5 * s))
    painter.end()
    return QIcon(pixmap)


def describe(label: str, recipe: Recipe) -> str:
    """One line of settings after the prompt: "#3 · DDIM, 20 steps, seed 42"."""
    seed = "random seed" if recipe.output.seed is None else f"seed {recipe.output.seed}"
    return f"{label} · {recipe.sampling.scheduler}, {recipe.sampling.steps} steps, {seed}"


def details(recipe: Recipe) -> str:
    parts = [recipe.prompt.text or "(no prompt)"]
    if recipe.prompt.negative:
        parts.append(f"Not: {recipe.prompt.negative}")
    size = f"{recipe.output.width}×{recipe.output.height}" if recipe.output.width else "native size"
    parts.append(f"{recipe.model.id} · {recipe.sampling.scheduler}, {recipe.sampling.steps} steps, "
                 f"guidance {recipe.guidance.scale:g} · {size}, batch {recipe.output.batch_size}")
    return "\n".join(parts)


class JobQueueView(QWidget):
    cancel_requested = Signal(str)  # the running job, or a queued one being removed
    resubmit = Signal(str)  # queue this job's recipe again (retry or duplicate)
    use_settings = Signal(str)  # show this job's settings in the controls (double-click)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip("Jobs run in order. Del removes a queued job; Cancel stops the running one; "
                             "double-click puts a job's settings in the controls.")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setWordWrap(False)
        self.list.setAlternatingRowColors(True)
        self.remove_button = self._button("Remove", "Remove the selected queued job, or cancel it if it is running (Del)")
        self.retry_button = self._button("Retry", "Queue the selected failed or cancelled job again")
        self.duplicate_button = self._button("Duplicate", "Queue another job with the selected job's settings")
        self.clear_button = self._button("Clear finished", "Remove every job that has ended from the list")
        buttons = QHBoxLayout()
        for button in (self.remove_button, self.retry_button, self.duplicate_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._items: dict[str, QListWidgetItem] = {}
        self._states: dict[str, str] = {}
        self._recipes: dict[str, Recipe] = {}
        self._labels: dict[str, str] = {}
        self.remove_button.clicked.connect(self._remove_selected)
        self.retry_button.clicked.connect(lambda: self._resubmit_selected(ENDED[1:]))
        self.duplicate_button.clicked.connect(lambda: self._resubmit_selected(tuple(STATE_TEXT)))
        self.clear_button.clicked.connect(self.clear_finished)
        self.list.currentItemChanged.connect(self._update_buttons)
        self.list.itemDoubleClicked.connect(lambda item: self.use_settings.emit(item.data(Qt.ItemDataRole.UserRole)))
        for button in (self.retry_button, self.duplicate_button, self.remove_button):
            action = QAction(button.text(), self.list)
            action.triggered.connect(button.click)
            self.list.addAction(action)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._update_buttons()

    @staticmethod
    def _button(text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        return button

    def label(self, job_id: str) -> str:
        """A short name for a job ("#3"), numbered in the order the window queued them."""
        return self._labels.get(job_id, job_id)

    def recipe(self, job_id: str) -> Recipe | None:
        """The recipe the job was queued with (a random seed stays random)."""
        return self._recipes.get(job_id)

    def add(self, job_id: str, recipe: Recipe) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, job_id)
        self._items[job_id] = item
        self._labels[job_id] = f"#{len(self._labels) + 1}"
        self._recipes[job_id] = recipe
        self.list.addItem(item)
        self.set_state(job_id, "queued")

    def set_state(self, job_id: str, state: str, detail: str = "") -> None:
        item = self._items.get(job_id)
        if item is None:
            return
        self._states[job_id] = state
        recipe = self._recipes[job_id]
        status = STATE_TEXT.get(state, state) + (f" ({detail})" if detail else "")
        item.setText(f"{recipe.prompt.text or '(no prompt)'}\n{describe(self._labels[job_id], recipe)} · {status}")
        item.setIcon(state_icon(state))
        item.setToolTip(f"{self._labels[job_id]}: {status}\n{details(recipe)}")
        self._update_buttons()

    def state(self, job_id: str) -> str | None:
        return self._states.get(job_id)

    def job_ids(self, *states: str) -> list[str]:
        ids = [self.list.item(k).data(Qt.ItemDataRole.UserRole) for k in range(self.list.count())]
        return [i for i in ids if not states or self._states.get(i) in states]

    def remove(self, job_id: str) -> None:
        item = self._items.pop(job_id, None)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._states.pop(job_id, None)
        self._recipes.pop(job_id, None)
        self._update_buttons()

    def clear_finished(self) -> None:
        for job_id in self.job_ids(*ENDED):
            self.remove(job_id)

    def select(self, job_id: str) -> None:
        item = self._items.get(job_id)
        if item is not None:
            self.list.setCurrentItem(item)

    def _selected(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _remove_selected(self) -> None:
        job_id = self._selected()
        if job_id is None:
            return
        state = self._states.get(job_id)
        if state == "queued":
            self.cancel_requested.emit(job_id)
            self.remove(job_id)
        elif state == "running":
            self.cancel_requested.emit(job_id)
        else:
            self.remove(job_id)

    def _resubmit_selected(self, states: tuple[str, ...]) -> None:
        job_id = self._selected()
        if job_id is not None and self._states.get(job_id) in states:
            self.resubmit.emit(job_id)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self._remove_selected()
            return
        super().keyPressEvent(event)

    def _update_buttons(self, *_: object) -> None:
        state = self._states.get(self._selected()) if self._selected() is not None else None
        self.remove_button.setEnabled(state is not None)
        self.remove_button.setText("Cancel" if state == "running" else "Remove")
        self.retry_button.setEnabled(state in ("failed", "cancelled"))
        self.duplicate_button.setEnabled(state is not None)
        self.clear_button.setEnabled(bool(self.job_ids(*ENDED)))
