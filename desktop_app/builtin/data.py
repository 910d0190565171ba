"""The "Shapes" data set: procedural, seeded, endless 64×64 pictures of shapes with captions.

A picture holds one to three objects on a plain background. Every object has a shape kind, a
named colour, a size and a cell of a 3×3 grid (its position). The first object of a scene is the
main object: it is named first in the caption, it is never smaller than the others, and it is the
one the latent classifier learns to recognise.

Pictures are drawn at 4× with Pillow and box-filtered down, so edges are anti-aliased. Captions
come from a small grammar with synonyms and a few word orders; they are drawn afresh from the
scene each time, so one picture is seen with many phrasings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "heart")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (240, 220, 30),
    "green": (30, 160, 50),
    "cyan": (0, 200, 220),
    "blue": (30, 60, 220),
    "purple": (130, 40, 180),
    "pink": (255, 120, 190),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 240),
    "black": (25, 25, 25),
    "grey": (128, 128, 128),
}
SIZES: dict[str, float] = {"big": 12.0, "small": 7.0}

# 3×3 grid cells by name → (row, column); cell centres in pixels of the 64×64 picture.
CELLS: dict[str, tuple[int, int]] = {
    "top left": (0, 0), "top": (0, 1), "top right": (0, 2),
    "left": (1, 0), "centre": (1, 1), "right": (1, 2),
    "bottom left": (2, 0), "bottom": (2, 1), "bottom right": (2, 2),
}  # fmt: skip
CELL_CENTRES = (13.0, 32.0, 51.0)
JITTER = 2.0
GAP = 3.0  # minimum free pixels between two objects, so none touch
COUNT_WEIGHTS = (0.5, 0.35, 0.15)  # how often a scene holds one, two or three objects

SHAPE_WORDS = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "star": ("star",),
    "ring": ("ring", "donut"),
    "heart": ("heart",),
}
COLOUR_WORDS = {c: (c,) for c in COLOURS} | {"purple": ("purple", "violet")}
BACKGROUND_WORDS = {"white": ("white",), "black": ("black",), "grey": ("grey", "gray")}
SIZE_WORDS = {"big": ("big", "large"), "small": ("small", "little")}
POSITION_PHRASES = {
    "top left": ("in the top left corner", "at the top left", "in the top left"),
    "top right": ("in the top right corner", "at the top right", "in the top right"),
    "bottom left": ("in the bottom left corner", "at the bottom left", "in the bottom left"),
    "bottom right": ("in the bottom right corner", "at the bottom right", "in the bottom right"),
    "top": ("at the top", "on the top"),
    "bottom": ("at the bottom", "on the bottom"),
    "left": ("on the left", "at the left"),
    "right": ("on the right", "at the right"),
    "centre": ("in the centre", "in the center", "in the middle"),
}
FUNCTION_WORDS = ("a", "an", "and", "with", "on", "in", "at", "the", "corner", "background")


def grammar_words() -> list[str]:
    """Every word any caption can contain, sorted."""
    words = set(FUNCTION_WORDS)
    for table in (SHAPE_WORDS, COLOUR_WORDS, BACKGROUND_WORDS, SIZE_WORDS, POSITION_PHRASES):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    return sorted(words)


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    colour: str
    size: str
    cell: str
    cx: float
    cy: float

    @property
    def radius(self) -> float:
        return SIZES[self.size]


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[ShapeObject, ...]

    @property
    def main(self) -> ShapeObject:
        return self.objects[0]


# --- scenes -----------------------------------------------------------------------------------


def _fits(obj: ShapeObject, others: list[ShapeObject]) -> bool:
    return all(math.hypot(obj.cx - o.cx, obj.cy - o.cy) >= obj.radius + o.radius + GAP for o in others)


def _place(rng: np.random.Generator, shape: str, colour: str, size: str, cell: str) -> ShapeObject:
    row, col = CELLS[cell]
    r = SIZES[size]
    cx = CELL_CENTRES[col] + rng.uniform(-JITTER, JITTER)
    cy = CELL_CENTRES[row] + rng.uniform(-JITTER, JITTER)
    cx = float(np.clip(cx, r + 1, SIZE - r - 1))
    cy = float(np.clip(cy, r + 1, SIZE - r - 1))
    return ShapeObject(shape, colour, size, cell, cx, cy)


def held_out_main(colour: str, shape: str, cell: str) -> bool:
    """About one in eleven (colour, shape, cell) triples never appears as a training main object."""
    index = (list(COLOURS).index(colour) * len(SHAPES) + SHAPES.index(shape)) * len(CELLS) + list(
        CELLS
    ).index(cell)
    return (index * 7919 + 13) % 11 == 0


def held_out_pair(first: tuple[str, str], second: tuple[str, str]) -> bool:
    """About one in sixteen ordered (colour shape, colour shape) pairs never appears in training."""
    a = list(COLOURS).index(first[0]) * len(SHAPES) + SHAPES.index(first[1])
    b = list(COLOURS).index(second[0]) * len(SHAPES) + SHAPES.index(second[1])
    return ((a * 48 + b) * 104729 + 7) % 16 == 0


def is_held_out(scene: Scene) -> bool:
    main = scene.main
    if len(scene.objects) == 1:
        return held_out_main(main.colour, main.shape, main.cell)
    second = scene.objects[1]
    return held_out_pair((main.colour, main.shape), (second.colour, second.shape))


def random_scene(
    rng: np.random.Generator, allow_held_out: bool = False, count_weights: tuple[float, ...] = COUNT_WEIGHTS
) -> Scene:
    while True:
        scene = _random_scene(rng, count_weights)
        if allow_held_out or not is_held_out(scene):
            return scene


def _random_scene(rng: np.random.Generator, count_weights: tuple[float, ...]) -> Scene:
    weights = np.asarray(count_weights, dtype=float)
    count = int(rng.choice([1, 2, 3], p=weights / weights.sum()))
    background = str(rng.choice(list(BACKGROUNDS)))
    cells = list(CELLS)
    while True:
        objects: list[ShapeObject] = []
        for k in range(count):
            size = str(rng.choice(list(SIZES))) if count == 1 else ("big" if k == 0 else "small")
            obj = _place(
                rng, str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS))), size, str(rng.choice(cells))
            )
            if any(o.cell == obj.cell for o in objects) or not _fits(obj, objects):
                break
            objects.append(obj)
        if len(objects) == count:
            return Scene(background, tuple(objects))


# --- rendering --------------------------------------------------------------------------------


def _heart_polygon(cx: float, cy: float, r: float, n: int = 48) -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    # the raw curve spans x in [-16, 16], y in [-12, 17]; centre its box and fit it to ±r
    y = y - 2.5
    scale = r / 16.0
    return [(cx + float(a) * scale, cy + float(b) * scale) for a, b in zip(x, y, strict=True)]


def _star_polygon(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle) + r * 0.1))
    return points


def draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill, background
) -> None:
    """Draw one shape centred on (cx, cy), half-extent r, in the draw's own pixel units."""
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        h = r * 0.85
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)
    elif shape == "star":
        draw.polygon(_star_polygon(cx, cy, r), fill=fill)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        h = r * 0.5
        draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=background)
    elif shape == "heart":
        draw.polygon(_heart_polygon(cx, cy, r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene) -> np.ndarray:
    """The scene as a 64×64×3 uint8 array."""
    s = SUPERSAMPLE
    background = BACKGROUNDS[scene.background]
    image = Image.new("RGB", (SIZE * s, SIZE * s), background)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        draw_shape(draw, obj.shape, obj.cx * s, obj.cy * s, obj.radius * s, COLOURS[obj.colour], background)
    return np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BOX))


# --- captions ---------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _noun_phrase(rng: np.random.Generator, obj: ShapeObject, with_size: bool) -> str:
    words = []
    if with_size:
        words.append(_pick(rng, SIZE_WORDS[obj.size]))
    words.append(_pick(rng, COLOUR_WORDS[obj.colour]))
    words.append(_pick(rng, SHAPE_WORDS[obj.shape]))
    if rng.random() < 0.85:
        words.insert(0, "an" if words[0] == "orange" else "a")
    return " ".join(words)


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption for the scene, drawn from the grammar."""
    single = len(scene.objects) == 1
    parts = []
    for obj in scene.objects:
        with_size = rng.random() < (0.4 if single else 0.15)
        phrase = _noun_phrase(rng, obj, with_size)
        if rng.random() < (0.8 if single else 0.5):
            position = _pick(rng, POSITION_PHRASES[obj.cell])
            if single and rng.random() < 0.3:
                phrase = f"{position} {phrase}"
            else:
                phrase = f"{phrase} {position}"
        parts.append(phrase)
    text = parts[0]
    for part in parts[1:]:
        text += (" and " if rng.random() < 0.7 else " with ") + part
    if rng.random() < 0.5:
        background = _pick(rng, BACKGROUND_WORDS[scene.background])
        if rng.random() < 0.7:
            text += f" on a {background} background"
        else:
            text = f"{background} background with {text}"
    return text


def canonical_caption(scene: Scene, positions: bool = True) -> str:
    """The plain caption used for evaluation prompts: "a red star in the top left corner and ..."."""
    parts = []
    for obj in scene.objects:
        det = "an" if obj.colour == "orange" else "a"
        phrase = f"{det} {obj.colour} {obj.shape}"
        if positions:
            phrase += " " + POSITION_PHRASES[obj.cell][0]
        parts.append(phrase)
    return " and ".join(parts)


# --- the data set -----------------------------------------------------------------------------


class ShapesDataset:
    """Endless and deterministic: item i of seed s is always the same scene and picture."""

    def __init__(self, seed: int = 0, allow_held_out: bool = False, count_weights: tuple[float, ...] = COUNT_WEIGHTS):
        self.seed = seed
        self.allow_held_out = allow_held_out
        self.count_weights = count_weights

    def scene(self, index: int) -> Scene:
        return random_scene(np.random.default_rng([self.seed, index]), self.allow_held_out, self.count_weights)

    def item(self, index: int) -> tuple[np.ndarray, str, Scene]:
        scene = self.scene(index)
        text = caption(scene, np.random.default_rng([self.seed, index, 1]))
        return render(scene), text, scene

    def batch(self, start: int, count: int) -> tuple[np.ndarray, list[Scene]]:
        scenes = [self.scene(i) for i in range(start, start + count)]
        return np.stack([render(s) for s in scenes]), scenes
