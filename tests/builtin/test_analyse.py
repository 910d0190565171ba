"""The classical analyser must read the data set's own clean renders almost perfectly."""

from __future__ import annotations

import numpy as np

from desktop_app.builtin.analyse import analyse
from desktop_app.builtin.data import BACKGROUNDS, ShapesDataset
from desktop_app.builtin.evaluate import analyser_accuracy


def test_analyser_is_at_least_98_percent_right_on_clean_renders():
    assert analyser_accuracy(count=250, seed=11) >= 0.98


def test_analyser_reports_background_count_and_largest_object_first():
    image, _, scene = ShapesDataset(4).item(2)
    found = analyse(image)
    assert found.background == scene.background
    assert len(found.objects) == len(scene.objects)
    assert (found.main.colour, found.main.shape, found.main.cell) == (
        scene.main.colour,
        scene.main.shape,
        scene.main.cell,
    )


def test_empty_picture_has_no_objects():
    image = np.full((64, 64, 3), BACKGROUNDS["grey"], dtype=np.uint8)
    found = analyse(image)
    assert found.objects == () and found.main is None and found.background == "grey"
