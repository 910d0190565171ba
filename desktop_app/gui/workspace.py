"""The middle of the window: the picture (previews, results), the mask painter, before/after.

Three pages under one tab bar; the mask and compare tabs appear once there is a source picture
or a result to compare with it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QStackedWidget, QTabBar, QVBoxLayout, QWidget

from desktop_app.gui.canvas import PreviewCanvas
from desktop_app.gui.compare import CompareView
from desktop_app.gui.mask_painter import MaskPainter

PAGES = ("picture", "mask", "compare")


class Workspace(QWidget):
    def __init__(self, canvas: PreviewCanvas, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self.painter = MaskPainter()
        self.compare = CompareView()
        self.tabs = QTabBar()
        self.tabs.setDocumentMode(True)
        self.tabs.setDrawBase(False)
        for label, tip in (("Picture", "Previews and the finished picture"),
                           ("Mask", "Paint where the source picture should change; drag the edges to extend it"),
                           ("Before / after", "The source picture and the result, split")):
            self.tabs.setTabToolTip(self.tabs.addTab(label), tip)
        self.stack = QStackedWidget()
        for page in (canvas, self.painter, self.compare):
            self.stack.addWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tabs)
        layout.addWidget(self.stack, 1)
        self.tabs.currentChanged.connect(self.stack.setCurrentIndex)
        self.set_available(mask=False, compare=False)

    def show_page(self, name: str) -> None:
        index = PAGES.index(name)
        self.tabs.setTabVisible(index, True)
        self.tabs.setCurrentIndex(index)

    def page(self) -> str:
        return PAGES[self.stack.currentIndex()]

    def set_available(self, *, mask: bool | None = None, compare: bool | None = None) -> None:
        for name, visible in (("mask", mask), ("compare", compare)):
            if visible is None:
                continue
            index = PAGES.index(name)
            if not visible and self.tabs.currentIndex() == index:
                self.tabs.setCurrentIndex(0)
            self.tabs.setTabVisible(index, visible)
        self.tabs.setVisible(any(self.tabs.isTabVisible(k) for k in (1, 2)))
