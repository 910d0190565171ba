"""``ComfyUIBackend``: the backend protocol over one or several ComfyUI servers.

One asyncio loop on its own thread does all the work: a ``ServerLink`` per server, one task per
picture (``_drive``: place it on a server, submit it, follow it, fetch the picture), and the
journal written before each step. ``next_event`` drains a thread-safe queue. Placement, handover
and recovery after a crash live in ``pool.py``; this module is the protocol's face and a part's
life.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import queue
import threading
import uuid
from pathlib import Path

import aiohttp

from desktop_app.backend.protocol import next_from
from desktop_app.backend.remote.comfyui import pool
from desktop_app.backend.remote.comfyui.capabilities import checkpoint_info
from desktop_app.backend.remote.comfyui.client import (
    ComfyClient,
    ServerProtocolError,
    ServerRejected,
    ServerUnreachable,
    display_name,
    normalize_url,
)
from desktop_app.backend.remote.comfyui.curves import comfy_curves
from desktop_app.backend.remote.comfyui.frames import FrameError
from desktop_app.backend.remote.comfyui.jobs import Job, Part, PartListener, Refused, new_prompt_id, plan_job
from desktop_app.backend.remote.comfyui.journal import JOURNAL_FILE, Journal
from desktop_app.backend.remote.comfyui.limits import DEFAULT_LIMITS, Limits
from desktop_app.backend.remote.comfyui.results import Outcome, decode_result, validation_message
from desktop_app.backend.remote.comfyui.server import DEFAULT_TIMING, ServerLink, ServerState, Timing
from desktop_app.core import paths
from desktop_app.core.events import (
    Cancelled,
    Event,
    Failed,
    Finished,
    GeneratedImage,
    ImageMade,
    ModelsChanged,
    Status,
)
from desktop_app.core.models import ModelCatalog, ModelInfo, ModelLoadError
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe

log = logging.getLogger(__name__)


class ComfyUIBackend:
    def __init__(self, urls: list[str] | str, tokens: dict[str, str] | None = None, *,
                 journal_path: Path | None = None, limits: Limits = DEFAULT_LIMITS, timing: Timing = DEFAULT_TIMING):
        self.urls = [normalize_url(u) for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("a ComfyUI backend needs at least one server address")
        self.name = display_name(self.urls[0]) if len(self.urls) == 1 else f"{len(self.urls)} ComfyUI servers"
        self._tokens = {normalize_url(u): t for u, t in (tokens or {}).items()}
        self._journal_path = journal_path
        self.limits, self.timing = limits, timing
        self._events: queue.Queue[Event] = queue.Queue()
        self._catalog = ModelCatalog()
        self.links: list[ServerLink] = []
        self.jobs: dict[str, Job] = {}
        self.journal: Journal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._recovered: list[tuple[str, Recipe]] = []

    # ---- the protocol -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self.journal = Journal(self._journal_path or paths.data_dir() / JOURNAL_FILE)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="comfyui-backend", daemon=True)
        self._thread.start()
        self._ready.wait()
        self._recovered = self._call(pool.recover_jobs(self))

    def models(self) -> ModelCatalog:
        return self._catalog

    def refresh_models(self) -> None:
        self._soon(self._refresh_models())

    def describe(self, model_id: str) -> ModelInfo:
        found = self._catalog.find(model_id)
        if found is None:
            have = ", ".join(m.id for m in self._catalog.models[:12]) or "none"
            raise ModelLoadError(model_id, f"no ComfyUI server in the list has this checkpoint (they have: {have})")
        return found

    def submit(self, recipe: Recipe, options: RunOptions, *, server: str | None = None) -> str:
        """Queue a job; ``server`` pins it to one server of the pool (its address)."""
        job_id = uuid.uuid4().hex[:12]
        pinned = normalize_url(server) if server else ""
        self._soon_call(self._accept, job_id, recipe, options, pinned)
        return job_id

    def cancel(self, job_id: str) -> None:
        self._soon(self._cancel(job_id))

    def preload(self, model_id: str, options: RunOptions) -> None:
        """Nothing to do here: a ComfyUI server loads a checkpoint with its first job."""

    def request_curves(self, scheduler: str, model_id: str, steps: int) -> None:
        self._events.put(comfy_curves(scheduler, model_id, steps))

    def next_event(self, timeout: float | None = None) -> Event | None:
        event = next_from(self._events, timeout)
        if event is None:
            return None
        if isinstance(event, ImageMade) and self.journal is not None:
            prompt_id = event.image.run.get("prompt_id")
            if prompt_id:
                with contextlib.suppress(Exception):
                    self.journal.set_part(prompt_id, "delivered")
        return event

    def close(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if not self._stopped.is_set():
            with contextlib.suppress(RuntimeError):
                self._call(self._shutdown(), timeout=self.timing.cancel_grace_s + 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._thread = None
        if self.journal is not None:
            self.journal.close()

    # ---- more than the protocol -------------------------------------------------------------
    def wait_ready(self, timeout: float) -> bool:
        """True once some server answered with its models; used by ``connect``."""
        return bool(self._call(self._wait_any_online(timeout), timeout=timeout + 5))

    def servers(self) -> list[ServerState]:
        return [link.snapshot() for link in self.links]

    def where(self, model_id: str) -> list[str]:
        """The servers that have a checkpoint, for the model list."""
        return [link.name for link in self.links if link.caps and model_id in link.caps.checkpoints]

    def recovered_jobs(self) -> list[tuple[str, Recipe]]:
        """Jobs of an earlier session being followed again (their events come like any job's)."""
        return list(self._recovered)

    def lost_jobs(self) -> list[tuple[str, Recipe, str]]:
        """(job id, recipe, message) of jobs whose pictures a server lost: safe to run again."""
        return self._call(pool.lost_jobs(self))

    def rerun(self, job_id: str) -> str:
        """Run the lost pictures of a lost job again, as a new job; returns its id."""
        new_id = uuid.uuid4().hex[:12]
        self._soon(pool.rerun(self, job_id, new_id))
        return new_id

    # ---- the loop thread --------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        assert self._loop is not None
        self._loop.run_until_complete(self._open())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())

    def _call(self, coro, timeout: float | None = None):  # type: ignore[no-untyped-def]
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _soon(self, coro) -> None:  # type: ignore[no-untyped-def]
        if self._loop is not None and not self._stopped.is_set():
            asyncio.run_coroutine_threadsafe(coro, self._loop)
        else:
            coro.close()

    def _soon_call(self, function, *args) -> None:  # type: ignore[no-untyped-def]
        if self._loop is None or self._stopped.is_set():
            raise RuntimeError("the ComfyUI backend is not started (or already closed)")
        self._loop.call_soon_threadsafe(function, *args)

    def emit(self, event: Event) -> None:
        self._events.put(event)

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()
        for url in self.urls:
            client = ComfyClient(url, self._session, self._tokens.get(url), self.limits)
            link = ServerLink(url, client, self.limits, self.timing, self._on_server_status,
                              lambda link: pool.on_dropped_out(self, link))
            self.links.append(link)
            self._tasks.append(asyncio.create_task(link.run()))

    async def _wait_any_online(self, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if any(link.online for link in self.links):
                return True
            if all(link.refused for link in self.links):
                return False  # a wrong token stays wrong: say so now, not after the timeout
            await asyncio.sleep(0.02)
        return False

    def _on_server_status(self, link: ServerLink, state: str, text: str) -> None:
        self.emit(Status(state, text, placement=link.name))
        if state == "ready":
            self._rebuild_catalog()

    def _rebuild_catalog(self) -> None:
        names = sorted({c for link in self.links if link.caps for c in link.caps.checkpoints})
        if [m.id for m in self._catalog.models] != names:
            self._catalog = ModelCatalog([checkpoint_info(n) for n in names])
            self.emit(ModelsChanged(self._catalog))

    async def _refresh_models(self) -> None:
        for link in self.links:
            if link.online:
                with contextlib.suppress(ServerUnreachable, ServerRejected, ServerProtocolError):
                    await link.refresh()
        self._catalog = ModelCatalog()  # emit even when nothing changed: the caller asked
        self._rebuild_catalog()

    async def _shutdown(self) -> None:
        self._stopped.set()
        await asyncio.gather(*(self._cancel_job(job, grace=min(self.timing.cancel_grace_s, 2.0))
                               for job in list(self.jobs.values()) if not job.done))
        for link in self.links:
            await link.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # ---- jobs -------------------------------------------------------------------------------
    def _accept(self, job_id: str, recipe: Recipe, options: RunOptions, pinned: str) -> None:
        try:
            job = plan_job(job_id, recipe, options, self.links, pinned, self.emit, self.limits)
        except Refused as refused:
            self.emit(Failed(job_id, refused.message, refused.kind))
            return
        assert self.journal is not None
        self.journal.add_job(job_id, job.recipe.to_dict(), dataclasses.asdict(options), pinned,
                             [(p.prompt_id, p.index, p.graph) for p in job.parts])
        self.start_parts(job)

    def start_parts(self, job: Job) -> None:
        self.jobs[job.job_id] = job
        for part in job.parts:
            if not part.settled:
                part.task = asyncio.get_running_loop().create_task(self._drive(job, part))

    async def _drive(self, job: Job, part: Part) -> None:
        assert self.journal is not None
        while not (job.done or job.cancelling):
            link = part.server if part.watch is not None else await pool.place(self, job, part)
            if link is None:
                return
            part.server = link
            if part.watch is None:  # a fresh prompt (a recovered one is followed without a POST)
                part.watch = link.follow(part.prompt_id, part.graph, PartListener(job, part), confirmed=False)
                self.journal.set_part(part.prompt_id, "submitting", link.url)
                try:
                    await link.submit(part.watch, job.preview_method)
                    self.journal.set_part(part.prompt_id, "queued", link.url)
                except ServerRejected as exc:
                    part.watch.resolve(Outcome("cancelled"))
                    message = validation_message(exc.answer, link.name, self.limits) if exc.status == 400 else str(exc)
                    await self.fail(job, part, message, "server")
                    return
                except (ServerUnreachable, ServerProtocolError) as exc:
                    log.info("%s: submission of %s unconfirmed (%s); reconciling", link.name, part.prompt_id, exc)
            outcome = await part.watch.future
            watch, part.watch = part.watch, None
            if job.done or job.cancelling:
                return
            if outcome.kind == "success":
                if await self._deliver(job, part, link, outcome):
                    return
                continue
            if outcome.kind == "error":
                await self.fail(job, part, outcome.message, "server")
                return
            if outcome.kind == "interrupted":
                await self.fail(job, part, f"{link.name} stopped the job: it was interrupted there (by another "
                                           "client or on the server); safe to run again", "server")
                return
            if outcome.kind == "cancelled":
                return
            if not await pool.hand_over(self, job, part, link, outcome, confirmed=watch.confirmed):
                return

    async def _deliver(self, job: Job, part: Part, link: ServerLink, outcome: Outcome) -> bool:
        """Fetch the picture and emit it; False when the part must run again (its server went away)."""
        assert self.journal is not None
        ref = outcome.images[0]
        try:
            data = await pool.fetch_with_retry(link, ref)
            image = decode_result(data, self.limits)
        except ServerUnreachable as exc:
            return not await pool.hand_over(self, job, part, link, Outcome("dropped", message=str(exc)), True)
        except ServerRejected as exc:
            await self.fail(job, part, f"{link.name} named a picture it then did not send (HTTP {exc.status}); "
                                       "safe to run again", "server")
            return True
        except ServerProtocolError as exc:
            await self.fail(job, part, str(exc), "server")
            return True
        except FrameError as exc:
            await self.fail(job, part, f"{link.name}: {exc}", "server")
            return True
        if job.done or job.cancelling:
            return True
        job.ensure_started()
        if outcome.cached:
            job.note(f"picture {part.index + 1}: {link.name} answered from its cache (an identical prompt ran "
                     "there before)")
        if outcome.recovered:
            job.note(f"picture {part.index + 1}: found on {link.name} by its file name after the server "
                     "forgot the job")
        job.servers_used[link.url] = f"{link.stats.gpu} on {link.name}" if link.stats.gpu else link.name
        part.steps_done, part.state = part.steps, "delivered"
        self.journal.set_part(part.prompt_id, "fetched", link.url)
        run = {"backend": "comfyui", "server": link.url, "prompt_id": part.prompt_id, "cached": outcome.cached,
               "gpu": link.stats.gpu, "comfyui_version": link.stats.version}
        picture = GeneratedImage(image=image, recipe=job.recipe, index=part.index, model=job.model, run=run,
                                 extra_chunks={"prompt": json.dumps(part.graph)})
        self.emit(ImageMade(job.job_id, picture))
        self.settle(job)
        return True

    def settle(self, job: Job) -> None:
        """End the job once every part is settled: Finished, or Failed when pictures were lost."""
        if job.done or not all(p.settled for p in job.parts):
            return
        assert self.journal is not None
        job.done = True
        lost = [p for p in job.parts if p.state == "lost"]
        if lost:
            where = lost[0].server.name if lost[0].server else "the server"
            message = (f"{len(lost)} of {len(job.parts)} pictures were lost on {where} (it restarted or forgot the "
                       "job before making them); safe to run again")
            self.journal.set_job(job.job_id, "lost", message)
            self.emit(Failed(job.job_id, message, "server"))
        else:
            self.journal.set_job(job.job_id, "finished")
            self.emit(Finished(job.job_id, job.summary()))

    async def fail(self, job: Job, part: Part, message: str, kind: str) -> None:
        if job.done:
            return
        assert self.journal is not None
        job.done = True
        part.state = "failed"
        self.journal.set_part(part.prompt_id, "failed", message=message)
        self.journal.set_job(job.job_id, "failed", message)
        self.emit(Failed(job.job_id, message, kind))
        await self._stop_parts(job, except_part=part, grace=0.0)

    async def _cancel(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None and not job.done:
            await self._cancel_job(job, self.timing.cancel_grace_s)

    async def _cancel_job(self, job: Job, grace: float) -> None:
        if job.cancelling or job.done:
            return
        job.cancelling = True
        await self._stop_parts(job, None, grace)
        if not job.done:
            job.done = True
            assert self.journal is not None
            self.journal.set_job(job.job_id, "cancelled")
            self.emit(Cancelled(job.job_id))

    async def _stop_parts(self, job: Job, except_part: Part | None, grace: float) -> None:
        """Delete or interrupt the job's prompts on their servers, wait up to ``grace`` for them to stop."""
        assert self.journal is not None
        running = [p for p in job.parts if p is not except_part and not p.settled]
        watched = [p for p in running if p.watch is not None and p.server is not None and p.server.online]
        await asyncio.gather(*(p.server.cancel(p.prompt_id) for p in watched))  # type: ignore[union-attr]
        futures = [p.watch.future for p in watched if p.watch is not None]
        if futures and grace > 0:
            await asyncio.wait(futures, timeout=grace)
        for part in running:
            if part.watch is not None:
                part.watch.resolve(Outcome("cancelled"))
            if part.task is not None and part.task is not asyncio.current_task():
                part.task.cancel()
            part.state = "cancelled"
            self.journal.set_part(part.prompt_id, "cancelled")
        await asyncio.gather(*(p.task for p in running if p.task is not None and p.task is not asyncio.current_task()),
                             return_exceptions=True)

    def new_part_prompt(self, job: Job, part: Part) -> None:
        """Give ``part`` a fresh prompt id (handover): journaled before it is sent anywhere."""
        assert self.journal is not None
        part.prompt_id = new_prompt_id()
        part.steps_done = 0
        self.journal.add_part(part.prompt_id, job.job_id, part.index, part.graph)
