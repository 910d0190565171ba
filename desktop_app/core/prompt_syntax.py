"""AUTOMATIC1111's prompt syntax: emphasis, BREAK and extra-network tags, parsed into weighted text.

Written from the rules A1111 documents (its wiki, "Attention/emphasis"), not from its code:

- ``(text)`` multiplies the attention to ``text`` by 1.1, ``[text]`` divides it by 1.1;
- ``(text:1.3)`` sets the factor to 1.3 (a number, optional spaces, then ``)``); only round brackets
  take a number;
- groups nest and their factors multiply: ``((text))`` is 1.21, ``([text])`` is 1.0;
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` are the literal characters, ``\\\\`` a literal backslash;
- a group left open applies its factor to the end of the prompt; a closing bracket that closes
  nothing is literal text; so is a ``:number)`` with no round group open;
- ``BREAK`` (upper case, a word of its own) starts a new 75-token chunk; the spaces around it go;
- ``<lora:name>`` / ``<lora:name:0.8>`` (and any ``<kind:name:…>`` extra-network tag) is taken out of
  the text and returned; ``<lora:name:0.8:0.5>`` gives the text encoders 0.8 and the UNet 0.5.

Torch-free: the window uses it for highlighting and the token counter, the encoder for weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMPHASIS = 1.1
_TAG = re.compile(r"<(\w+):([^<>]+)>")
_WEIGHT = re.compile(r":\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_ESCAPABLE = "()[]\\"


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class ExtraNetwork:
    """A ``<kind:name:weights>`` tag: ``weight`` for the text encoders, ``unet_weight`` for the UNet."""

    kind: str
    name: str
    weight: float = 1.0
    unet_weight: float = 1.0
    tag: str = ""

    def format(self) -> str:
        return format_tag(self.kind, self.name, self.weight, self.unet_weight)


@dataclass(frozen=True)
class ParsedPrompt:
    """``segments``: the prompt split at each BREAK, each a run of weighted fragments (possibly none)."""

    segments: tuple[tuple[Fragment, ...], ...]
    networks: tuple[ExtraNetwork, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def loras(self) -> tuple[ExtraNetwork, ...]:
        return tuple(n for n in self.networks if n.kind in ("lora", "lyco"))

    @property
    def fragments(self) -> tuple[Fragment, ...]:
        return tuple(f for segment in self.segments for f in segment)

    @property
    def is_plain(self) -> bool:
        """One segment, every weight 1: encodes exactly as the text alone would."""
        return len(self.segments) == 1 and all(f.weight == 1.0 for f in self.segments[0])

    @property
    def plain_text(self) -> str:
        return " ".join("".join(f.text for f in segment) for segment in self.segments)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def format_tag(kind: str, name: str, weight: float = 1.0, unet_weight: float | None = None) -> str:
    """The tag for a network, as the LoRA picker inserts it and an image's prompt records it."""
    parts = [kind, name, f"{weight:g}"]
    if unet_weight is not None and unet_weight != weight:
        parts.append(f"{unet_weight:g}")
    return "<" + ":".join(parts) + ">"


def extract_networks(text: str) -> tuple[str, tuple[ExtraNetwork, ...], tuple[str, ...]]:
    """(the text without its tags, the tags in order, problems with them)."""
    networks: list[ExtraNetwork] = []
    problems: list[str] = []

    def take(match: re.Match) -> str:
        kind, args = match.group(1).lower(), match.group(2).split(":")
        name = args[0].strip()
        numbers = [_number(a.strip()) for a in args[1:3]]
        if not name or any(n is None for n in numbers):
            problems.append(f"{match.group(0)}: a tag is <{kind}:name> or <{kind}:name:weight>")
            return ""
        weight = numbers[0] if numbers else 1.0
        unet = numbers[1] if len(numbers) > 1 else weight
        networks.append(ExtraNetwork(kind, name, weight, unet, match.group(0)))
        return ""

    return _TAG.sub(take, text), tuple(networks), tuple(problems)


def parse_emphasis(text: str) -> list[Fragment]:
    """Weighted fragments of a text without tags; BREAK stays in the text (see ``parse_prompt``)."""
    pieces: list[list] = []  # [text, weight]; a group covers the pieces from its start to the end
    round_open: list[int] = []
    square_open: list[int] = []
    run = [False]  # whether the last piece is still growing (no bracket since it began)

    def literal(chars: str) -> None:
        if run[0]:
            pieces[-1][0] += chars
        else:
            pieces.append([chars, 1.0])
            run[0] = True

    def mark() -> int:
        run[0] = False
        return len(pieces)

    def close(start: int, factor: float) -> None:
        run[0] = False
        for piece in pieces[start:]:
            piece[1] *= factor

    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE:
            literal(text[i + 1])
            i += 2
            continue
        if char == "(":
            round_open.append(mark())
        elif char == "[":
            square_open.append(mark())
        elif char == ":" and round_open and (match := _WEIGHT.match(text, i)):
            close(round_open.pop(), float(match.group(1)))
            i = match.end()
            continue
        elif char == ")" and round_open:
            close(round_open.pop(), EMPHASIS)
        elif char == "]" and square_open:
            close(square_open.pop(), 1 / EMPHASIS)
        else:
            literal(char)
        i += 1
    for start in reversed(round_open):
        close(start, EMPHASIS)
    for start in reversed(square_open):
        close(start, 1 / EMPHASIS)
    merged: list[Fragment] = []
    for chars, weight in pieces:
        if not chars:
            continue
        if merged and merged[-1].weight == weight:
            merged[-1] = Fragment(merged[-1].text + chars, weight)
        else:
            merged.append(Fragment(chars, weight))
    return merged


def _split_breaks(fragments: list[Fragment]) -> tuple[tuple[Fragment, ...], ...]:
    segments: list[list[Fragment]] = [[]]
    for fragment in fragments:
        parts = _BREAK.split(fragment.text)
        for k, part in enumerate(parts):
            if k:
                segments.append([])
            if part:
                segments[-1].append(Fragment(part, fragment.weight))
    return tuple(tuple(s) for s in segments)


def parse_prompt(text: str) -> ParsedPrompt:
    """Parse a prompt: its tags taken out, then emphasis, then BREAK."""
    rest, networks, problems = extract_networks(text)
    return ParsedPrompt(_split_breaks(parse_emphasis(rest)), networks, problems)
