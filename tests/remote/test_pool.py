"""Several servers: a batch spreads over them, a server that dies hands its pictures to the others,
a job pinned to a server stays there, and a job goes where its checkpoint is."""

from __future__ import annotations

from desktop_app.core.events import Failed, Finished, ImageMade

from .conftest import OPTIONS, recipe
from .fake_comfy import picture_for
from .test_jobs import kinds, wait_for


def posted(fake) -> list[int]:  # type: ignore[no-untyped-def]
    return [body["prompt"]["5"]["inputs"]["seed"] for _m, path, _q, body in fake.requests if path == "/prompt"]


def check_pictures(done, seeds: list[int]) -> None:  # type: ignore[no-untyped-def]
    made = sorted((e.image for e in done if isinstance(e, ImageMade)), key=lambda g: g.index)
    assert [g.seed for g in made] == seeds
    for picture in made:
        assert picture.image.getpixel((3, 3)) == picture_for(picture.seed, 64, 64).getpixel((3, 3))


def test_two_servers_share_a_batch(make_fake, make_backend):
    a, b = make_fake(step_delay=0.02), make_fake(step_delay=0.02)
    backend, events = make_backend(a, b)
    done = events.until_done(backend.submit(recipe(batch_size=4, seed=100), OPTIONS))
    assert kinds(done)[-1] == "Finished"
    check_pictures(done, [100, 101, 102, 103])
    assert len(posted(a)) == 2 and len(posted(b)) == 2
    assert sorted(posted(a) + posted(b)) == [100, 101, 102, 103]
    assert {e.image.run["server"] for e in done if isinstance(e, ImageMade)} == {a.url, b.url}


def test_a_server_that_dies_hands_its_pictures_to_the_other(make_fake, make_backend):
    a, b = make_fake(pause_at_step=2), make_fake(step_delay=0.02)
    backend, events = make_backend(a, b)
    job = backend.submit(recipe(batch_size=4, seed=200), OPTIONS)
    assert a.paused.wait(5)
    wait_for(lambda: len(posted(a)) == 2)  # one running (paused), one waiting in its queue
    a.stop()  # the box is gone: the port closes
    done = events.until_done(job, timeout=15)
    assert sum(isinstance(e, (Finished, Failed)) for e in done) == 1 and isinstance(done[-1], Finished)
    check_pictures(done, [200, 201, 202, 203])
    assert sorted(posted(b)) == [200, 201, 202, 203]  # its own two and the two a dropped
    assert {e.image.run["server"] for e in done if isinstance(e, ImageMade)} == {b.url}
    assert sum("moved from" in note for note in done[-1].summary.notes) == 2


def test_a_pinned_job_runs_only_on_its_server(make_fake, make_backend):
    a, b = make_fake(), make_fake()
    backend, events = make_backend(a, b)
    done = events.until_done(backend.submit(recipe(batch_size=3, seed=7), OPTIONS, server=b.url))
    check_pictures(done, [7, 8, 9])
    assert posted(a) == [] and sorted(posted(b)) == [7, 8, 9]


def test_a_job_goes_to_the_server_that_has_its_checkpoint(make_fake, make_backend):
    a = make_fake(checkpoints=("other.safetensors",))
    b = make_fake()
    backend, events = make_backend(a, b)
    assert backend.where("sd15-random.safetensors") == [f"ComfyUI at 127.0.0.1:{b.port}"]
    assert {m.id for m in backend.models().models} == {"other.safetensors", "sd15-random.safetensors",
                                                       "mini-sd15-taesd.safetensors"}
    done = events.until_done(backend.submit(recipe(batch_size=2, seed=3), OPTIONS))
    check_pictures(done, [3, 4])
    assert posted(a) == []
    states = {s.url: s for s in backend.servers()}
    assert states[b.url].online and states[b.url].gpu == "cpu" and states[b.url].vram_total == 2**34
