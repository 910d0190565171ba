"""Several servers as one: where each picture goes, what happens when a server drops out or forgets
a job, and picking up the jobs of an earlier session from the journal.

Placement: a server that is online, has the checkpoint and can run the recipe, with the shortest
queue (its own queue length, or our prompts on it if more); a pinned job waits for its server. A
server offline for ``Timing.handover_after_s`` hands its unfinished pictures to the others (each
gets a fresh prompt id; a late answer from the old server is ignored). A prompt the server lost
(it restarted: its history is in memory only) goes to another server when there is one, and is
otherwise marked lost: the job fails with "safe to run again" and ``rerun`` offers it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from desktop_app.backend.remote.comfyui.capabilities import checkpoint_info
from desktop_app.backend.remote.comfyui.client import ServerUnreachable
from desktop_app.backend.remote.comfyui.graph import recipe_problems
from desktop_app.backend.remote.comfyui.jobs import Job, Part, PartListener, Refused, plan_job
from desktop_app.backend.remote.comfyui.results import ImageRef, Outcome
from desktop_app.backend.remote.comfyui.server import ServerLink
from desktop_app.core.events import Failed, Status
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from desktop_app.backend.remote.comfyui.backend import ComfyUIBackend

PLACE_POLL_S = 0.05


def can_run(link: ServerLink, part: Part) -> bool:
    return link.online and link.caps is not None and not recipe_problems(part.recipe, link.caps, link.name)


async def place(backend: ComfyUIBackend, job: Job, part: Part) -> ServerLink | None:
    """The server for ``part``, waiting while none is online; None when the job ends meanwhile."""
    said_waiting = False
    while not (job.done or job.cancelling):
        links = [link for link in backend.links if not job.pinned or link.url == job.pinned]
        able = [link for link in links if can_run(link, part)]
        preferred = [link for link in able if link.url not in part.avoid] or able
        if preferred:
            return min(preferred, key=lambda link: (link.load(), backend.links.index(link)))
        if not said_waiting:
            said_waiting = True
            names = ", ".join(link.name for link in links)
            backend.emit(Status("busy", f"waiting for {names} to come back to run picture {part.index + 1}"))
        await asyncio.sleep(PLACE_POLL_S)
    return None


def _others(backend: ComfyUIBackend, job: Job, part: Part, link: ServerLink) -> list[ServerLink]:
    if job.pinned:
        return []
    return [other for other in backend.links if other is not link and can_run(other, part)]


async def hand_over(backend: ComfyUIBackend, job: Job, part: Part, link: ServerLink, outcome: Outcome,
                    confirmed: bool) -> bool:
    """After a ``lost`` or ``dropped`` outcome: True to run the part again (elsewhere), False when lost."""
    assert backend.journal is not None
    if outcome.kind == "lost" and not confirmed:
        # the POST never reached the server: nothing ran, so sending it again (same prompt id) is safe
        backend.journal.set_part(part.prompt_id, "planned")
        return True
    if outcome.kind == "dropped":
        part.avoid.add(link.url)
    if outcome.kind == "dropped" or _others(backend, job, part, link):
        backend.journal.set_part(part.prompt_id, "handed_over", message=outcome.message)
        reason = "it dropped out" if outcome.kind == "dropped" else "it lost the job"
        job.note(f"picture {part.index + 1}: moved from {link.name} to another server ({reason})")
        backend.new_part_prompt(job, part)
        return True
    part.state = "lost"
    backend.journal.set_part(part.prompt_id, "lost", message=outcome.message)
    backend.settle(job)
    return False


def on_dropped_out(backend: ComfyUIBackend, link: ServerLink) -> None:
    """``link`` has been offline for the handover time: give its unfinished pictures to the others."""
    others = [other for other in backend.links if other is not link and other.online]
    if not others:
        backend.emit(Status("error", f"{link.name} has been unreachable for {link.timing.handover_after_s:g} s and "
                                     "no other server can take its jobs; still trying to reconnect"))
        return
    moved = 0
    for watch in list(link.watches.values()):
        job = getattr(watch.listener, "job", None)
        if isinstance(job, Job) and not job.pinned:
            watch.resolve(Outcome("dropped", message=f"{link.name} dropped out"))
            moved += 1
    if moved:
        backend.emit(Status("busy", f"{link.name} dropped out: {moved} picture(s) go to the other servers"))


async def fetch_with_retry(link: ServerLink, ref: ImageRef) -> bytes:
    """The picture's bytes; waits for a dropped connection to come back (up to the handover time)."""
    while True:
        try:
            return await link.client.view(ref.filename, ref.subfolder, ref.kind)
        except ServerUnreachable:
            if not await link.wait_online(link.timing.handover_after_s):
                raise


async def recover_jobs(backend: ComfyUIBackend) -> list[tuple[str, Recipe]]:
    """Follow again every job an earlier session left unfinished; returns (job id, recipe) of each."""
    assert backend.journal is not None
    recovered = []
    for entry in backend.journal.jobs("active"):
        try:
            recipe = Recipe.from_dict(entry.recipe)
            options = RunOptions(**entry.options)
        except (RecipeError, TypeError):
            backend.journal.set_job(entry.job_id, "failed", "the journal entry cannot be read")
            continue
        job = Job(entry.job_id, recipe, options, checkpoint_info(recipe.model.id), [], entry.pinned, backend.emit,
                  backend.limits, recovered=True)
        for row in entry.parts:
            if row.state == "handed_over":
                continue
            part = Part(row.index, recipe.for_image(row.index), row.graph, row.prompt_id)
            job.parts.append(part)
            if row.state in ("delivered", "failed", "cancelled", "lost"):
                part.state = row.state
                continue
            link = next((link for link in backend.links if link.url == row.server), None)
            if row.state == "planned" or link is None:
                why = ("it was never sent before the app closed" if row.state == "planned"
                       else f"it ran on {row.server}, which is no longer in the server list")
                part.state = "lost"
                backend.journal.set_part(row.prompt_id, "lost", message=why)
                continue
            part.server = link
            part.watch = link.follow(row.prompt_id, row.graph, PartListener(job, part),
                                     confirmed=row.state != "submitting")
        job.delivered_before = sum(1 for p in job.parts if p.state == "delivered")
        recovered.append((job.job_id, recipe))
        job.ensure_started()
        backend.start_parts(job)
        backend.settle(job)
    if recovered:
        backend.emit(Status("busy", f"following {len(recovered)} job(s) from the last session again"))
    return recovered


async def lost_jobs(backend: ComfyUIBackend) -> list[tuple[str, Recipe, str]]:
    assert backend.journal is not None
    return [(e.job_id, Recipe.from_dict(e.recipe), e.message) for e in backend.journal.jobs("lost")]


async def rerun(backend: ComfyUIBackend, old_job_id: str, new_job_id: str) -> None:
    assert backend.journal is not None
    entry = backend.journal.job(old_job_id)
    if entry is None or entry.state != "lost":
        backend.emit(Failed(new_job_id, f"job {old_job_id} has no lost pictures to run again", "invalid"))
        return
    recipe, options = Recipe.from_dict(entry.recipe), RunOptions(**entry.options)
    lost = {p.index for p in entry.parts if p.state == "lost"}
    try:
        job = plan_job(new_job_id, recipe, options, backend.links, entry.pinned, backend.emit, backend.limits)
    except Refused as refused:
        backend.emit(Failed(new_job_id, refused.message, refused.kind))
        return
    job.parts = [p for p in job.parts if p.index in lost]
    backend.journal.add_job(new_job_id, job.recipe.to_dict(), dataclasses.asdict(options), entry.pinned,
                            [(p.prompt_id, p.index, p.graph) for p in job.parts])
    backend.journal.forget(old_job_id)
    backend.start_parts(job)
