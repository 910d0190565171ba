"""One ComfyUI server, the recorded scenarios: what the user sees of each job, event by event."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from desktop_app.core.events import Cancelled, Failed, Finished, ImageMade, Progress, Started
from desktop_app.core.recipe import AddOn

from .conftest import OPTIONS, recipe
from .fake_comfy import picture_for
from .recording import recording


def kinds(events) -> list[str]:  # type: ignore[no-untyped-def]
    return [type(e).__name__ for e in events]


def test_a_normal_job_with_type_4_previews(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    job = backend.submit(recipe(seed=512), OPTIONS)
    done = events.until_done(job)
    assert kinds(done) == ["Started"] + ["Progress"] * 4 + ["ImageMade", "Finished"]
    steps = [(e.step, e.total) for e in done if isinstance(e, Progress)]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # the previews are the recorded frames' pixels, each tied to its step
    frames = recording().metadata_frames("x")
    for k, event in enumerate(e for e in done if isinstance(e, Progress)):
        size = int.from_bytes(frames[k][4:8], "big")
        expected = np.asarray(Image.open(io.BytesIO(frames[k][8 + size:])).convert("RGB"))
        assert np.array_equal(event.preview, expected)
    made = next(e for e in done if isinstance(e, ImageMade)).image
    assert made.image.size == (64, 64)
    assert made.image.getpixel((10, 10)) == picture_for(512, 64, 64).getpixel((10, 10))
    assert made.seed == 512 and made.index == 0
    graph = json.loads(made.extra_chunks["prompt"])
    assert graph["5"]["inputs"]["seed"] == 512 and graph["5"]["inputs"]["sampler_name"] == "euler"
    assert made.run["server"] == fake.url and made.run["prompt_id"]
    assert made.image.info == {}  # the server's own PNG chunks stay behind
    posted = next(body for method, path, _q, body in fake.requests if path == "/prompt")
    assert posted["extra_data"] == {"preview_method": "latent2rgb"}
    assert posted["prompt_id"] == made.run["prompt_id"]
    assert isinstance(done[-1], Finished) and done[-1].summary.seeds == (512,)


def test_a_normal_job_with_legacy_type_1_previews(make_fake, make_backend):
    fake = make_fake(supports_metadata=False)  # an older server: ignores the handshake, sends type 1
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(steps=3), OPTIONS))
    assert kinds(done) == ["Started", "Progress", "Progress", "Progress", "ImageMade", "Finished"]
    frames = recording().legacy_frames()
    progress = [e for e in done if isinstance(e, Progress)]
    assert [p.step for p in progress] == [1, 2, 3]
    for k, event in enumerate(progress):  # each step gets the frame sent after its progress message
        expected = np.asarray(Image.open(io.BytesIO(frames[k][8:])).convert("RGB"))
        assert np.array_equal(event.preview, expected)
    assert done[-2].image.image.getpixel((0, 0)) == picture_for(511, 64, 64).getpixel((0, 0))


def test_previews_off_asks_the_server_for_none(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(), OPTIONS.__class__(preview="off")))
    assert all(e.preview is None for e in done if isinstance(e, Progress))
    assert isinstance(done[-1], Finished)
    posted = next(body for _m, path, _q, body in fake.requests if path == "/prompt")
    assert posted["extra_data"]["preview_method"] == "none"


def test_a_batch_is_one_prompt_per_picture_with_seed_plus_k(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(batch_size=3, seed=40), OPTIONS))
    made = sorted((e.image for e in done if isinstance(e, ImageMade)), key=lambda g: g.index)
    assert [g.seed for g in made] == [40, 41, 42]
    for picture in made:
        assert picture.image.getpixel((5, 5)) == picture_for(picture.seed, 64, 64).getpixel((5, 5))
        assert json.loads(picture.extra_chunks["prompt"])["5"]["inputs"]["seed"] == picture.seed
    progress = [e for e in done if isinstance(e, Progress)]
    assert progress[-1].step == progress[-1].total == 12
    assert isinstance(done[-1], Finished) and sorted(done[-1].summary.seeds) == [40, 41, 42]


def test_a_validation_error_names_the_node_and_input(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    fake.checkpoints = ("mini-sd15-taesd.safetensors",)  # deleted on the server after we listed it
    done = events.until_done(backend.submit(recipe(), OPTIONS))
    assert kinds(done) == ["Failed"]
    failure = done[0]
    assert failure.kind == "server"
    assert "CheckpointLoaderSimple (node 1)" in failure.message
    assert "ckpt_name: 'sd15-random.safetensors' not in" in failure.message
    assert "\n" not in failure.message


def test_what_comfyui_cannot_do_is_refused_before_anything_is_sent(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    cases = [
        (recipe(model_id="sdxl-big.safetensors"), ("model", "has no checkpoint 'sdxl-big.safetensors'")),
        (recipe(scheduler="DDIM", eta=0.5), ("invalid", "ComfyUI's DDIM is deterministic")),
        (recipe(scheduler="DDPM", ddpm_variance="fixed_large"), ("invalid", "uses β̃ₜ only")),
        (recipe(scheduler="PNDM"), ("invalid", "no PNDM/PLMS sampler")),
        (recipe(scheduler="Euler a", noise_seed_delta=31337), ("invalid", "ENSD")),
        (recipe(classifier_target="red circle", classifier_scale=5.0), ("invalid", "classifier")),
        (recipe(add_ons=[AddOn("lora", "x.safetensors")]), ("invalid", "add-ons (lora)")),
        (recipe(width=60), ("invalid", "multiple of 8")),
    ]
    for case, (kind, text) in cases:
        done = events.until_done(backend.submit(case, OPTIONS))
        assert kinds(done) == ["Failed"], case
        assert done[0].kind == kind and text in done[0].message, done[0].message
    assert not [r for r in fake.requests if r[1] == "/prompt"]


def test_a_runtime_error_is_one_line_with_the_exception(make_fake, make_backend):
    fake = make_fake(fail_node="1")
    backend, events = make_backend(fake)
    done = events.until_done(backend.submit(recipe(), OPTIONS))
    assert kinds(done) == ["Started", "Failed"]
    assert done[1].kind == "server"
    assert done[1].message.startswith(f"ComfyUI at 127.0.0.1:{fake.port}: CheckpointLoaderSimple (node 1) failed: "
                                      "ERROR: Could not detect model type of")
    assert "\n" not in done[1].message


def test_cancel_interrupts_the_running_prompt(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    backend, events = make_backend(fake)
    job = backend.submit(recipe(steps=20, width=256, height=256), OPTIONS)
    events.until(lambda e: isinstance(e, Progress) and e.job_id == job)
    assert fake.paused.wait(5)
    backend.cancel(job)
    wait_for(lambda: any(r[1] == "/interrupt" for r in fake.requests))
    fake.resume()
    done = events.until_done(job)
    assert kinds(done) == ["Started", "Progress", "Cancelled"]
    interrupt = next(body for _m, path, _q, body in fake.requests if path == "/interrupt")
    (prompt_id,) = fake.history
    assert interrupt == {"prompt_id": prompt_id}
    assert fake.history[prompt_id]["status"]["status_str"] == "error"  # as recorded: no separate status
    assert [m[0] for m in fake.history[prompt_id]["status"]["messages"]][-1] == "execution_interrupted"


def test_cancel_drops_a_queued_prompt_before_it_runs(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    backend, events = make_backend(fake)
    first = backend.submit(recipe(steps=4), OPTIONS)
    second = backend.submit(recipe(steps=4, seed=9), OPTIONS)
    assert fake.paused.wait(5)
    wait_for(lambda: len(fake.queue) == 1)
    backend.cancel(second)
    assert kinds(events.until_done(second)) == ["Cancelled"]
    assert any(r[1] == "/queue" and r[3] == {"delete": [fake_ids(fake)[-1]]} for r in fake.requests)
    fake.resume()
    assert isinstance(events.until_done(first)[-1], Finished)
    assert len(fake.history) == 1  # the cancelled one never ran


def test_an_identical_prompt_answered_from_the_cache(make_fake, make_backend):
    fake = make_fake()
    backend, events = make_backend(fake)
    first = events.until_done(backend.submit(recipe(seed=77), OPTIONS))
    again = events.until_done(backend.submit(recipe(seed=77), OPTIONS))
    assert kinds(again) == ["Started", "ImageMade", "Finished"]  # no steps: every node was cached
    (second_id,) = [pid for pid in fake.history if pid != first[-2].image.run["prompt_id"]]
    cached = [m for m in fake.history[second_id]["status"]["messages"] if m[0] == "execution_cached"]
    assert cached[0][1]["nodes"] == ["1", "4", "3", "2", "5", "6", "7"]
    names = [q["filename"] for _m, path, q, _b in fake.requests if path == "/view"]
    assert len(names) == 2 and names[0] == names[1]  # the old file: no new picture was made
    assert np.array_equal(np.asarray(again[1].image.image), np.asarray(first[-2].image.image))
    assert again[1].image.run["cached"] is True and first[-2].image.run["cached"] is False
    assert any("answered from its cache" in note for note in again[-1].summary.notes)


def test_close_cancels_running_jobs_and_stops_its_thread(make_fake, make_backend):
    fake = make_fake(pause_at_step=1)
    backend, events = make_backend(fake)
    job = backend.submit(recipe(), OPTIONS)
    assert fake.paused.wait(5)
    wait_for(lambda: fake.running is not None)
    backend.close()
    fake.resume()
    rest = []
    while (event := backend.next_event(timeout=0.1)) is not None:
        rest.append(event)
    terminal = [e for e in events.seen + rest if isinstance(e, (Finished, Failed, Cancelled)) and e.job_id == job]
    assert [type(e) for e in terminal] == [Cancelled]
    assert any(r[1] == "/interrupt" for r in fake.requests)


def fake_ids(fake) -> list[str]:  # type: ignore[no-untyped-def]
    return [body["prompt_id"] for _m, path, _q, body in fake.requests if path == "/prompt"]


def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


assert Started  # re-exported names used in kinds() comparisons
