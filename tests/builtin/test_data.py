"""The Shapes data set: deterministic by seed, captions from the grammar, held-out combinations kept out."""

from __future__ import annotations

import numpy as np

from desktop_app.builtin.data import COLOURS, SHAPES, ShapesDataset, grammar_words, is_held_out


def test_same_seed_gives_the_same_items():
    a, b = ShapesDataset(7), ShapesDataset(7)
    for index in (0, 1, 99):
        image_a, caption_a, scene_a = a.item(index)
        image_b, caption_b, scene_b = b.item(index)
        assert np.array_equal(image_a, image_b)
        assert caption_a == caption_b and scene_a == scene_b


def test_another_seed_gives_other_items():
    assert [ShapesDataset(1).scene(i) for i in range(5)] != [ShapesDataset(2).scene(i) for i in range(5)]


def test_pictures_are_64_by_64_rgb_and_captions_use_only_grammar_words():
    words = set(grammar_words())
    data = ShapesDataset(3)
    for index in range(200):
        image, caption, scene = data.item(index)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert set(caption.split()) <= words, caption
        assert 1 <= len(scene.objects) <= 3
        assert all(o.radius <= scene.main.radius for o in scene.objects)


def test_every_shape_and_colour_appears_and_held_out_scenes_never_do():
    data = ShapesDataset(0)
    scenes = [data.scene(i) for i in range(600)]
    assert {o.shape for s in scenes for o in s.objects} == set(SHAPES)
    assert {o.colour for s in scenes for o in s.objects} == set(COLOURS)
    assert not any(is_held_out(s) for s in scenes)
    assert any(is_held_out(ShapesDataset(0, allow_held_out=True).scene(i)) for i in range(600))


def test_pictures_are_anti_aliased():
    image, _, _ = ShapesDataset(5).item(0)
    colours = {tuple(p) for p in image.reshape(-1, 3)}
    assert len(colours) > 2 + 10  # edge pixels blend object and background


def test_count_weights_set_how_many_objects_a_scene_holds():
    only_pairs = ShapesDataset(seed=3, count_weights=(0, 1, 0))
    assert {len(only_pairs.scene(i).objects) for i in range(50)} == {2}
    default = ShapesDataset(seed=3)
    counts = [len(default.scene(i).objects) for i in range(400)]
    assert 0.4 < counts.count(1) / 400 < 0.6 and counts.count(3) > 0  # 50% / 35% / 15%
