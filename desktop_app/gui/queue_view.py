"""The job queue: what is running and waiting, in order; queued jobs can be removed, the running one cancelled."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from desktop_app.core.recipe import Recipe

STATE_MARK = {"queued": "⏳", "running": "▶", "finished": "✔", "failed": "✖", "cancelled": "⊘"}


def describe(label: str, recipe: Recipe) -> str:
    text = recipe.prompt.text
    prompt = text if len(text) <= 40 else text[:39] + "…"
    seed = "random seed" if recipe.output.seed is None else f"seed {recipe.output.seed}"
    return f"{label}  {prompt or '(no prompt)'} · {recipe.sampling.scheduler}, {recipe.sampling.steps} steps, {seed}"


class JobQueueView(QWidget):
    cancel_requested = Signal(str)  # the running job, or a queued one being removed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip("Jobs run in order. Del removes a queued job; Cancel stops the running one.")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.remove_button = QPushButton("Remove / Cancel")
        self.remove_button.setToolTip("Remove the selected queued job, or cancel it if it is running (Del)")
        self.clear_button = QPushButton("Clear finished")
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._items: dict[str, QListWidgetItem] = {}
        self._states: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self.remove_button.clicked.connect(self._remove_selected)
        self.clear_button.clicked.connect(self.clear_finished)
        self.list.currentItemChanged.connect(self._update_buttons)
        self._update_buttons()

    def label(self, job_id: str) -> str:
        """A short name for a job ("#3"), numbered in the order the window queued them."""
        return self._labels.get(job_id, job_id)

    def add(self, job_id: str, recipe: Recipe) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, job_id)
        self._items[job_id] = item
        self._labels[job_id] = f"#{len(self._labels) + 1}"
        self._texts[job_id] = describe(self._labels[job_id], recipe)
        self.list.addItem(item)
        self.set_state(job_id, "queued")

    def set_state(self, job_id: str, state: str, detail: str = "") -> None:
        item = self._items.get(job_id)
        if item is None:
            return
        self._states[job_id] = state
        item.setText(f"{STATE_MARK.get(state, '')} {self._texts[job_id]}" + (f" — {detail}" if detail else ""))
        item.setToolTip(f"{self._texts[job_id]}\n{state}{': ' + detail if detail else ''}")
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
        self._texts.pop(job_id, None)
        self._update_buttons()

    def clear_finished(self) -> None:
        for job_id in self.job_ids("finished", "failed", "cancelled"):
            self.remove(job_id)

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

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self._remove_selected()
            return
        super().keyPressEvent(event)

    def _update_buttons(self, *_: object) -> None:
        state = self._states.get(self._selected()) if self._selected() is not None else None
        self.remove_button.setEnabled(state is not None)
        self.remove_button.setText({"running": "Cancel", "queued": "Remove"}.get(state or "", "Remove"))
        self.clear_button.setEnabled(bool(self.job_ids("finished", "failed", "cancelled")))
