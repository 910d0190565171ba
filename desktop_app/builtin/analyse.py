"""A classical analyser for Shapes pictures: what objects are there, what colour, what shape, where.

No learning involved, so it can judge the model fairly:

1. background = median colour of the border pixels;
2. foreground = pixels far enough from the background colour; objects = its 8-connected
   components (tiny specks dropped);
3. colour = nearest named colour to the median of each object's inner pixels;
4. shape kind = best overlap (soft IoU) between the object's mask, cropped to its bounding box and
   resized to a 16×16 grid, and the same crop of each shape kind drawn by the data set's own
   drawing code (holes count, so a ring is not a circle);
5. position = the 3×3 grid cell holding the object's centroid.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from desktop_app.builtin.data import BACKGROUNDS, CELLS, COLOURS, SHAPES, draw_shape

GRID = 16
FOREGROUND_DISTANCE = 60.0  # RGB distance from the background that makes a pixel foreground
MIN_AREA = 10  # pixels; smaller blobs are noise
_CELL_BY_INDEX = {index: name for name, index in CELLS.items()}


@dataclass(frozen=True)
class FoundObject:
    colour: str
    shape: str
    cell: str
    area: int
    centre: tuple[float, float]  # (x, y) in pixels
    shape_score: float  # soft IoU with the chosen shape's template, 0..1


@dataclass(frozen=True)
class Analysis:
    background: str
    objects: tuple[FoundObject, ...]  # largest first

    @property
    def main(self) -> FoundObject | None:
        return self.objects[0] if self.objects else None

    def has(self, colour: str, shape: str) -> bool:
        return any(o.colour == colour and o.shape == shape for o in self.objects)


def _nearest(table: dict[str, tuple[int, int, int]], rgb: np.ndarray) -> str:
    names = list(table)
    values = np.array([table[n] for n in names], dtype=np.float32)
    return names[int(np.argmin(((values - rgb) ** 2).sum(axis=1)))]


def _crop_to_grid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 0.5)
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    image = Image.fromarray((crop * 255).astype(np.uint8))
    return np.asarray(image.resize((GRID, GRID), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


@lru_cache(maxsize=1)
def shape_templates() -> dict[str, np.ndarray]:
    """Each shape kind drawn large, cropped to its box and brought to the 16×16 grid."""
    templates = {}
    for shape in SHAPES:
        canvas = Image.new("L", (256, 256), 0)
        draw_shape(ImageDraw.Draw(canvas), shape, 128.0, 128.0, 100.0, 255, 0)
        templates[shape] = _crop_to_grid(np.asarray(canvas, dtype=np.float32) / 255.0)
    return templates


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of a boolean mask, as arrays of (y, x) pixel coordinates."""
    seen = np.zeros_like(mask, dtype=bool)
    height, width = mask.shape
    found = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, pixels = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            pixels.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        found.append(np.array(pixels))
    return found


def _classify_shape(soft: np.ndarray) -> tuple[str, float]:
    grid = _crop_to_grid(soft)
    scores = {}
    for shape, template in shape_templates().items():
        scores[shape] = float(np.minimum(grid, template).sum() / max(np.maximum(grid, template).sum(), 1e-6))
    best = max(scores, key=scores.get)
    return best, scores[best]


def analyse(picture) -> Analysis:
    """Analyse a 64×64 RGB picture (PIL image or H×W×3 uint8 array)."""
    rgb = np.asarray(
        picture.convert("RGB") if isinstance(picture, Image.Image) else picture, dtype=np.float32
    )
    border = np.concatenate(
        [
            rgb[:2].reshape(-1, 3),
            rgb[-2:].reshape(-1, 3),
            rgb[:, :2].reshape(-1, 3),
            rgb[:, -2:].reshape(-1, 3),
        ]
    )
    background_rgb = np.median(border, axis=0)
    distance = np.sqrt(((rgb - background_rgb) ** 2).sum(axis=2))
    mask = distance > FOREGROUND_DISTANCE
    height, width = mask.shape
    objects = []
    for pixels in _components(mask):
        if len(pixels) < MIN_AREA:
            continue
        ys, xs = pixels[:, 0], pixels[:, 1]
        strong = distance[ys, xs] >= np.percentile(distance[ys, xs], 50)
        colour = _nearest(COLOURS, np.median(rgb[ys[strong], xs[strong]], axis=0))
        soft = np.zeros(mask.shape, dtype=np.float32)
        soft[ys, xs] = np.clip(distance[ys, xs] / max(float(np.percentile(distance[ys, xs], 90)), 1.0), 0, 1)
        shape, score = _classify_shape(soft)
        cx, cy = float(xs.mean()), float(ys.mean())
        cell = _CELL_BY_INDEX[(min(int(cy * 3 / height), 2), min(int(cx * 3 / width), 2))]
        objects.append(FoundObject(colour, shape, cell, len(pixels), (cx, cy), score))
    objects.sort(key=lambda o: -o.area)
    return Analysis(_nearest(BACKGROUNDS, background_rgb), tuple(objects))
