"""A dropped connection, a server restarted mid-job, and an app that crashed: nothing finished is
lost, and what the server lost is said so and offered again. The crash is a real one: a child
process with the backend is killed (SIGKILL) mid-job, and a new backend reads its journal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from desktop_app.core.events import Failed, Finished, ImageMade, Progress, Status

from .conftest import FAST, OPTIONS, recipe
from .fake_comfy import picture_for
from .test_jobs import kinds, wait_for

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from desktop_app.backend.remote.comfyui import connect, Timing
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe
backend = connect(sys.argv[1], timing=Timing(poll_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2))
recipe = Recipe.of("a red circle on a blue background", model_id="sd15-random.safetensors", scheduler="Euler",
                   steps=4, width=64, height=64, seed=int(sys.argv[2]), batch_size=int(sys.argv[3]))
print(backend.submit(recipe, RunOptions()), flush=True)
time.sleep(60)
"""


def crash_mid_job(fake, seed: int, batch: int = 1) -> str:  # type: ignore[no-untyped-def]
    """Start a job in a child process, kill it once the server is at the paused step; the job id."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, fake.url, str(seed), str(batch)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert job_id, "the child process did not submit"
        assert fake.paused.wait(15)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    return job_id


def statuses(events) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.text for e in events.seen if isinstance(e, Status)]


def test_a_dropped_connection_reconnects_and_the_job_goes_on(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    backend, events = make_backend(fake)
    job = backend.submit(recipe(), OPTIONS)
    assert fake.paused.wait(5)
    fake.drop_connections()
    events.until(lambda e: isinstance(e, Status) and "reconnected" in e.text)
    assert any("connection lost" in text for text in statuses(events))
    fake.resume()
    done = events.until_done(job)
    assert [e.step for e in done if isinstance(e, Progress)] == [1, 2, 3, 4]  # followed again, live
    assert kinds(done)[-2:] == ["ImageMade", "Finished"]
    assert sum(isinstance(e, (Finished, Failed)) for e in done) == 1


def test_a_job_that_finished_while_disconnected_is_fetched(make_fake, make_backend):
    fake = make_fake(pause_at_step=4, step_delay=0.0)
    backend, events = make_backend(fake)
    job = backend.submit(recipe(seed=5), OPTIONS)
    assert fake.paused.wait(5)
    fake.token = "now-locked"  # the proxy refuses us for a moment: we cannot reconnect
    fake.drop_connections()
    fake.resume()
    wait_for(lambda: len(fake.history) == 1)
    fake.token = None
    done = events.until_done(job)
    assert kinds(done)[-2:] == ["ImageMade", "Finished"]
    assert done[-2].image.image.getpixel((1, 1)) == picture_for(5, 64, 64).getpixel((1, 1))


def test_a_server_restarted_mid_job_loses_it_and_it_is_offered_again(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    backend, events = make_backend(fake)
    job = backend.submit(recipe(seed=21), OPTIONS)
    assert fake.paused.wait(5)
    fake.pause_at_step = None
    fake.restart()  # forgets queue and history; the job was running
    done = events.until_done(job)
    assert kinds(done) == ["Started", "Progress", "Failed"]
    assert done[-1].kind == "server" and "lost on ComfyUI at" in done[-1].message
    assert "safe to run again" in done[-1].message
    ((lost_id, lost_recipe, message),) = backend.lost_jobs()
    assert lost_id == job and lost_recipe.output.seed == 21 and "safe to run again" in message
    again = events.until_done(backend.rerun(job))
    assert kinds(again)[-2:] == ["ImageMade", "Finished"]
    assert again[-2].image.seed == 21
    assert again[-2].image.image.getpixel((0, 0)) == picture_for(21, 64, 64).getpixel((0, 0))
    assert backend.lost_jobs() == []


def test_after_an_app_crash_a_finished_job_is_fetched_and_emitted(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    job = crash_mid_job(fake, seed=31, batch=2)
    fake.resume()
    wait_for(lambda: len(fake.history) == 2)
    backend, events = make_backend(fake)
    assert [j for j, _r in backend.recovered_jobs()] == [job]
    done = events.until_done(job)
    assert kinds(done) == ["Started", "ImageMade", "ImageMade", "Finished"]
    made = sorted(e.image.seed for e in done if isinstance(e, ImageMade))
    assert made == [31, 32]
    backend.close()
    fresh, _events = make_backend(fake)
    assert fresh.recovered_jobs() == []  # delivered: not picked up a second time


def test_after_an_app_crash_a_running_job_is_followed_to_its_end(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    job = crash_mid_job(fake, seed=41)
    backend, events = make_backend(fake)
    assert [j for j, _r in backend.recovered_jobs()] == [job]
    time.sleep(0.2)  # reconciled: still running on the server, so nothing ends yet
    assert not [e for e in events.of(job) if isinstance(e, (Finished, Failed))]
    fake.resume()
    done = events.until_done(job)
    assert kinds(done)[-2:] == ["ImageMade", "Finished"]
    assert done[-2].image.image.getpixel((2, 2)) == picture_for(41, 64, 64).getpixel((2, 2))


def test_a_picture_finished_before_app_crash_and_server_restart_is_found_by_name(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    job = crash_mid_job(fake, seed=51)
    fake.resume()
    wait_for(lambda: len(fake.history) == 1)
    fake.restart()  # history gone, the file stays in output/
    backend, events = make_backend(fake)
    done = events.until_done(job)
    assert kinds(done) == ["Started", "ImageMade", "Finished"]
    assert done[1].image.image.getpixel((0, 0)) == picture_for(51, 64, 64).getpixel((0, 0))
    assert any("found on" in note for note in done[-1].summary.notes)


def test_after_an_app_crash_and_a_restart_mid_job_the_job_is_lost_not_hung(make_fake, make_backend):
    fake = make_fake(pause_at_step=2)
    job = crash_mid_job(fake, seed=61)
    fake.pause_at_step = None
    fake.restart()
    backend, events = make_backend(fake)
    done = events.until_done(job)
    assert kinds(done) == ["Started", "Failed"] and "safe to run again" in done[-1].message
    assert [j for j, _r, _m in backend.lost_jobs()] == [job]


assert FAST.handover_after_s < 1
