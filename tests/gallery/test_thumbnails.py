from __future__ import annotations

import os

from PIL import Image

from desktop_app.gallery.thumbnails import (
    THUMBNAIL_SIZE,
    ByteBoundedLru,
    make_thumbnail,
    prune_thumbnails,
    thumbnail_dir,
)

from .conftest import tiny_image


def test_thumbnail_is_cached_and_renewed_when_the_image_changes(tmp_path):
    path = tmp_path / "big.png"
    tiny_image("red", (800, 400)).save(path)
    thumb = make_thumbnail(path)
    assert Image.open(thumb).size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE // 2)
    assert make_thumbnail(path) == thumb
    tiny_image("blue", (300, 300)).save(path)
    os.utime(path, ns=(1, 1))
    assert make_thumbnail(path) != thumb


def test_prune_removes_the_least_recently_used(tmp_path):
    thumbs = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.effect_noise((300, 300), 50 + i).save(path)
        thumbs.append(make_thumbnail(path))
        os.utime(thumbs[-1], (1000 + i, 1000 + i))
    os.utime(thumbs[0], (5000, 5000))  # looked at recently
    size = thumbs[0].stat().st_size
    assert prune_thumbnails(max_bytes=int(size * 2.5)) == 2
    assert sorted(p.name for p in thumbnail_dir().rglob("*.jpg")) == sorted([thumbs[0].name, thumbs[3].name])


def test_lru_is_bounded_by_bytes():
    cache: ByteBoundedLru[int, bytes] = ByteBoundedLru(100, len)
    for i in range(50):
        cache.put(i, b"x" * 30)
        cache.get(0)  # keeps 0 fresh
    assert cache.bytes <= 100 and 0 in cache and 49 in cache and len(cache) == 3
