"""``diffuse-studio bench --gallery``: the gallery at scale, measured.

Makes ``n`` real PNG files (small images with full metadata) in a temporary folder, indexes them
and times what a user waits for: opening the gallery (open the index, check the folders for
changes, list every image newest first), a search, fetching the records of one screenful while
scrolling, and making thumbnails, with the memory the thumbnail cache holds. The targets
(issue 5) are: open <= 1 s and search <= 100 ms with 10,000 images, memory bounded.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from desktop_app.core.events import GeneratedImage
from desktop_app.core.paths import HOME_ENV
from desktop_app.core.recipe import Recipe
from desktop_app.gallery.save import build_metadata, encode_png, image_file_name
from desktop_app.gallery.store import GalleryStore, Query
from desktop_app.gallery.thumbnails import ByteBoundedLru, make_thumbnail

WORDS = ("red blue green yellow purple circle square triangle star hexagon castle forest river mountain cat dog "
         "portrait landscape sunset night city ocean glass metal wooden painting photo sketch detailed misty").split()
MODELS = ("shapes", "sd15", "sdxl-base", "dreamshaper")
SCHEDULERS = ("DPM++ 2M", "DPM++ 2M Karras", "Euler a", "DDIM", "UniPC")
IMAGE_SIZE = 128
THUMB_BYTES = 256 * 256 * 4  # what one full-size thumbnail pixmap costs in the GUI's cache
CACHE_BYTES = 64 * 1024 * 1024
PAGE = 60  # thumbnails on one screen of the grid


def _rss_mb() -> float:
    """Peak resident memory of this process (0 where the platform does not say, e.g. Windows)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def make_files(root: Path, n: int, seed: int = 0) -> None:
    """``n`` PNGs in date folders, as the library writes them (without the fsync per file)."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((IMAGE_SIZE, IMAGE_SIZE)).convert("RGB")
    start = datetime(2025, 1, 1).astimezone()
    for i in range(n):
        when = start + timedelta(minutes=7 * i)
        recipe = Recipe.of(
            " ".join(rng.sample(WORDS, 6)), negative_prompt=" ".join(rng.sample(WORDS, 2)),
            model_id=rng.choice(MODELS), scheduler=rng.choice(SCHEDULERS), steps=rng.randint(10, 50),
            guidance_scale=rng.choice((5.0, 7.0, 7.5)), seed=rng.randrange(2**31), width=IMAGE_SIZE, height=IMAGE_SIZE)
        image = base.rotate(i % 360) if i % 7 else base
        folder = root / f"{when:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{i:05d}-" + image_file_name(recipe, 0, when)
        (folder / name).write_bytes(encode_png(image, build_metadata(GeneratedImage(image, recipe, 0), created=when)))


def run_gallery_bench(n: int = 10_000, thumbnails: int = 1_000, workdir: Path | None = None,
                      log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Timings for a gallery of ``n`` images; see the module docstring. Seconds unless named _ms/_mb."""
    saved_home = os.environ.get(HOME_ENV)
    try:
        with tempfile.TemporaryDirectory(prefix="gallery-bench-", dir=workdir) as temp:
            os.environ[HOME_ENV] = str(Path(temp) / "home")  # thumbnails stay in the temporary folder
            return _run(Path(temp), n, thumbnails, log)
    finally:
        if saved_home is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = saved_home


def _run(temp: Path, n: int, thumbnails: int, log: Callable[[str], None]) -> dict[str, Any]:
    root, db_path = temp / "pictures", temp / "data" / "gallery.sqlite3"
    results: dict[str, Any] = {"images": n, "image_px": IMAGE_SIZE}
    log(f"writing {n} PNG files…")
    results["write_files_s"], _ = _timed(lambda: make_files(root, n))
    log("building the index from the files…")
    with GalleryStore(db_path, roots=[root]) as store:
        results["index_build_s"], report = _timed(store.sync)
        assert report.added == n, report
    results["db_mb"] = round(db_path.stat().st_size / 2**20, 1)

    log("opening the gallery…")
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        store = GalleryStore(db_path, roots=[root])
        t1 = time.perf_counter()
        store.sync()
        t2 = time.perf_counter()
        rows = store.query(Query())
        first_page = [store.record(image_id) for image_id, _ in rows[:PAGE]]
        t3 = time.perf_counter()
        opens.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
        assert len(rows) == n and all(first_page)
        if len(opens) < 3:
            store.close()
    best = min(opens)
    results.update(open_s=best[0], open_index_s=best[1], open_scan_s=best[2], open_list_s=best[3])

    log("searching…")
    rng = random.Random(1)
    queries = [Query(text=w) for w in rng.sample(WORDS, 8)] + [
        Query(text=f"{a} {b}") for a, b in zip(rng.sample(WORDS, 6), rng.sample(WORDS, 6), strict=True)] + [
        Query(text="cas"), Query(text="no-such-word"), Query(model_id="sdxl-base"),
        Query(text="red", model_id="shapes", scheduler="Euler a")]
    times, sizes = [], []
    for query in queries:
        for _ in range(3):
            elapsed, found = _timed(lambda q=query: store.query(q))
            times.append(elapsed * 1000)
        sizes.append(len(found))
    results.update(search_ms_median=statistics.median(times), search_ms_max=max(times), search_queries=len(queries),
                   search_hits_median=statistics.median(sizes))

    pages = []
    for _ in range(50):
        start = rng.randrange(0, max(1, n - PAGE))
        elapsed, _ = _timed(lambda s=start: [store.record(i) for i, _ in rows[s:s + PAGE]])
        pages.append(elapsed * 1000)
    results.update(scroll_page_ms_median=statistics.median(pages), scroll_page_ms_max=max(pages))

    log(f"making {thumbnails} thumbnails and scrolling past them…")
    cache: ByteBoundedLru[str, Image.Image] = ByteBoundedLru(CACHE_BYTES, lambda _img: THUMB_BYTES)
    rss_before = _rss_mb()
    made = []
    for _, path in rows[:thumbnails]:
        elapsed, thumb = _timed(lambda p=path: make_thumbnail(Path(p)))
        made.append(elapsed * 1000)
        with Image.open(thumb) as image:
            cache.put(path, image.copy())
    again = [_timed(lambda p=path: make_thumbnail(Path(p)))[0] * 1000 for _, path in rows[:200]]
    results.update(
        thumbnail_make_ms_mean=statistics.mean(made) if made else 0.0,
        thumbnail_cached_ms_mean=statistics.mean(again) if again else 0.0,
        thumbnail_cache_cap_mb=CACHE_BYTES / 2**20,
        thumbnail_cache_peak_mb=cache.peak_bytes / 2**20,
        thumbnail_cache_entries=len(cache),
        rss_growth_mb=_rss_mb() - rss_before,
    )
    store.close()
    return results


def format_results(results: dict[str, Any]) -> str:
    lines = [f"gallery benchmark, {results['images']} images ({results['image_px']}² PNGs with metadata)"]
    for key, value in results.items():
        if key in ("images", "image_px"):
            continue
        lines.append(f"  {key:28s} {value:.3f}" if isinstance(value, float) else f"  {key:28s} {value}")
    ok_open = results["open_s"] <= 1.0
    ok_search = results["search_ms_max"] <= 100.0
    lines.append(f"  target: open <= 1 s: {'met' if ok_open else 'MISSED'}; search <= 100 ms (worst query): "
                 f"{'met' if ok_search else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(format_results(run_gallery_bench(count, log=lambda m: print(m, file=sys.stderr))))
