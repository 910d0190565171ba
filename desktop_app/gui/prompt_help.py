"""What the prompt box tells a user as they type: how many tokens the text encoder will see, and,
for a model that declares its vocabulary (the built-in Shapes model knows 43 words), which words
it knows and which of the typed ones it does not."""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from desktop_app.gui.tokens import TokenCount

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
WARNING_COLOUR = "#d97706"


def unknown_words(text: str, vocabulary: frozenset[str]) -> list[str]:
    """The words of ``text`` that are not in ``vocabulary`` (each once, in order of appearance)."""
    if not vocabulary:
        return []
    found: list[str] = []
    for match in WORD.finditer(text):
        word = match.group().casefold()
        if word not in vocabulary and word not in found:
            found.append(word)
    return found


class UnknownWordHighlighter(QSyntaxHighlighter):
    """Underlines, as a spell checker does, the words a model does not know."""

    def __init__(self, document: QTextDocument):
        super().__init__(document)
        self.vocabulary: frozenset[str] = frozenset()
        self._format = QTextCharFormat()
        self._format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self._format.setUnderlineColor(QColor(WARNING_COLOUR))

    def set_vocabulary(self, vocabulary: frozenset[str]) -> None:
        if vocabulary != self.vocabulary:
            self.vocabulary = vocabulary
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt naming
        if not self.vocabulary:
            return
        for match in WORD.finditer(text):
            if match.group().casefold() not in self.vocabulary:
                self.setFormat(match.start(), match.end() - match.start(), self._format)


class PromptHelp(QWidget):
    """The lines under the prompt: the token count, the model's words, the unknown ones."""

    word_chosen = Signal(str)  # a word of the vocabulary was clicked: put it in the prompt

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model_name = ""
        self.vocabulary: tuple[str, ...] = ()
        self.tokens = QLabel()
        self.tokens.setObjectName("hint")
        self.tokens.setToolTip("Tokens the text encoder sees of this prompt, and how many it takes at most; "
                               "words past the limit are ignored")
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.words_button = QToolButton()
        self.words_button.setText("Words…")
        self.words_button.setCheckable(True)
        self.words_button.setToolTip("Show the words this model knows (click one to add it to the prompt)")
        self.words = QLabel()
        self.words.setWordWrap(True)
        self.words.setTextFormat(Qt.TextFormat.RichText)
        self.words.linkActivated.connect(self.word_chosen)
        self.words.hide()
        self.unknown = QLabel()
        self.unknown.setWordWrap(True)
        self.unknown.setStyleSheet(f"color: {WARNING_COLOUR};")
        self.unknown.hide()
        self.words_button.toggled.connect(self.words.setVisible)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(self.words_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.tokens, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.words)
        layout.addWidget(self.unknown)

    def set_model(self, name: str, vocabulary: tuple[str, ...]) -> None:
        self.model_name = name
        self.vocabulary = tuple(vocabulary)
        known = bool(self.vocabulary)
        self.summary.setText(f"{len(self.vocabulary)} words known" if known else "")
        self.summary.setToolTip(f"{name} was trained on these {len(self.vocabulary)} words only; any other word in "
                                "the prompt is underlined, and the picture will not show it" if known else "")
        self.words.setText(", ".join(f"<a href='{html.escape(w)}'>{html.escape(w)}</a>" for w in sorted(self.vocabulary)))
        self.words_button.setVisible(known)
        if not known:
            self.words_button.setChecked(False)

    def show_state(self, count: TokenCount | None, unknown: list[str]) -> None:
        if count is None:
            self.tokens.setText("")
        else:
            self.tokens.setText(count.label())
            chunked = count.chunks > 1
            self.tokens.setStyleSheet(f"color: {WARNING_COLOUR};" if chunked else "")
            self.tokens.setToolTip(
                f"{count.tokens} tokens; the text encoder takes {count.chunk_size} at a time: "
                + (f"the prompt is encoded in {count.chunks} chunks of {count.chunk_size}, and every word is used "
                   "(words far apart in different chunks weigh on each other less)" if chunked
                   else "all of them are used"))
        self.tokens.setVisible(count is not None)
        self.unknown.setText(f"{self.model_name} does not know {', '.join(unknown)}: it was not trained on "
                             f"{'this word' if len(unknown) == 1 else 'these words'}, so "
                             f"{'it' if len(unknown) == 1 else 'they'} will not be drawn." if unknown else "")
        self.unknown.setVisible(bool(unknown))
        self.setVisible(count is not None or bool(self.vocabulary))
