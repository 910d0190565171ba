"""A remote job while it runs: its pictures' parts, where each runs, and the job's events.

A job of batch N is N parts, one prompt each (picture k with seed + k). The job's progress is the
steps of all its parts together; its preview is the latest frame of any of them. Everything here
runs on the backend's loop thread; ``emit`` puts events on the queue ``next_event`` drains.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desktop_app.backend.remote.comfyui.capabilities import checkpoint_info
from desktop_app.backend.remote.comfyui.frames import FrameError, PreviewFrame, decode_preview
from desktop_app.backend.remote.comfyui.graph import build_graph, recipe_problems
from desktop_app.backend.remote.comfyui.limits import Limits
from desktop_app.core.events import Event, JobSummary, Progress, Started
from desktop_app.core.models import ModelInfo
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import MAX_SEED, Recipe

if TYPE_CHECKING:
    from desktop_app.backend.remote.comfyui.server import PromptWatch, ServerLink

PREVIEW_METHODS = {"latent": "latent2rgb", "vae": "taesd", "off": "none"}
FINAL_PART_STATES = ("delivered", "failed", "cancelled", "lost")


class Refused(Exception):
    """A job that cannot run anywhere in the pool; ``kind`` is a ``FAILURE_KINDS`` entry."""

    def __init__(self, message: str, kind: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.kind = kind


def new_prompt_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Part:
    index: int
    recipe: Recipe  # the picture's own recipe: batch 1, seed + index
    graph: dict[str, Any]
    prompt_id: str
    state: str = "planned"
    server: ServerLink | None = None
    watch: PromptWatch | None = None
    task: asyncio.Task[None] | None = None
    steps_done: int = 0
    avoid: set[str] = field(default_factory=set)  # servers that dropped out while holding this part

    @property
    def steps(self) -> int:
        return self.recipe.sampling.steps

    @property
    def settled(self) -> bool:
        return self.state in FINAL_PART_STATES


@dataclass
class Job:
    job_id: str
    recipe: Recipe  # resolved: seed and size set
    options: RunOptions
    model: ModelInfo
    parts: list[Part]
    pinned: str = ""
    emit: Callable[[Event], None] = lambda event: None
    limits: Limits = field(default_factory=Limits)
    recovered: bool = False
    started: bool = False
    cancelling: bool = False
    done: bool = False
    t0: float = field(default_factory=time.monotonic)
    first_step_at: float | None = None
    last_preview_at: float = 0.0
    notes: list[str] = field(default_factory=list)
    servers_used: dict[str, str] = field(default_factory=dict)  # url -> what ran it ("RTX 4090 on gpu-box")
    delivered_before: int = 0  # pictures handed over in an earlier session (a recovered job)

    @property
    def preview_method(self) -> str:
        return PREVIEW_METHODS.get(self.options.preview, "latent2rgb")

    def ensure_started(self) -> None:
        if not self.started and not self.done:
            self.started = True
            self.emit(Started(self.job_id))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def on_progress(self, part: Part, value: int, frame: PreviewFrame | None) -> None:
        if self.done or self.cancelling:
            return
        self.ensure_started()
        now = time.monotonic()
        if self.first_step_at is None:
            self.first_step_at = now
        part.steps_done = max(part.steps_done, min(value, part.steps))
        done = sum(p.steps if p.state == "delivered" else p.steps_done for p in self.parts)
        total = sum(p.steps for p in self.parts)
        elapsed = now - self.t0
        preview = None
        fps = self.options.preview_max_fps
        if frame is not None and self.options.preview != "off" and (fps <= 0 or now - self.last_preview_at >= 1 / fps):
            try:
                preview = decode_preview(frame, self.limits)
                self.last_preview_at = now
            except FrameError:
                preview = None
        rate = done / (now - self.first_step_at) if now > self.first_step_at else 0.0
        self.emit(Progress(self.job_id, done, total, elapsed, rate, preview))

    def summary(self) -> JobSummary:
        seed = self.recipe.output.seed or 0
        return JobSummary(recipe=self.recipe, seeds=tuple(seed + p.index for p in self.parts if p.state == "delivered"),
                          notes=tuple(self.notes), timings={"total": time.monotonic() - self.t0},
                          device=", ".join(sorted(set(self.servers_used.values()))), precision="")


class PartListener:
    """What a server tells about one part, passed on to its job."""

    def __init__(self, job: Job, part: Part):
        self.job, self.part = job, part

    def started(self) -> None:
        if not self.job.done and not self.job.cancelling:
            self.job.ensure_started()

    def progress(self, value: int, maximum: int, preview: PreviewFrame | None) -> None:
        self.job.on_progress(self.part, value, preview)


def resolve(recipe: Recipe, model: ModelInfo) -> Recipe:
    """Seed and size filled in, as the job will record them."""
    batch = recipe.output.batch_size if isinstance(recipe.output.batch_size, int) else 1
    seed = recipe.output.seed if recipe.output.seed is not None else random.randint(0, MAX_SEED - max(batch, 1) + 1)
    width, height = recipe.output.size_for(model)
    return recipe.with_(seed=seed, width=width, height=height)


def plan_job(job_id: str, recipe: Recipe, options: RunOptions, servers: list[ServerLink], pinned: str,
             emit: Callable[[Event], None], limits: Limits) -> Job:
    """The job with one part per picture, or ``Refused`` saying why no server in the pool can make it."""
    problems = options.problems()
    if problems:
        raise Refused("; ".join(str(p) for p in problems))
    known = [s for s in servers if s.caps is not None]
    if pinned and not any(s.url == pinned for s in servers):
        raise Refused(f"{pinned} is not in the list of ComfyUI servers")
    candidates = [s for s in known if not pinned or s.url == pinned]
    if not candidates:
        names = ", ".join(s.name for s in servers)
        raise Refused(f"no answer yet from {names}: check that the server runs and the address is right",
                      "server")
    having = [s for s in candidates if recipe.model.id in s.caps.checkpoints]  # type: ignore[union-attr]
    if not having:
        offered = sorted({c for s in candidates for c in s.caps.checkpoints})  # type: ignore[union-attr]
        where = candidates[0].name if len(candidates) == 1 else "any ComfyUI server in the list"
        raise Refused(f"{where} has no checkpoint {recipe.model.id!r}; choose one of: "
                      f"{', '.join(offered[:12]) or 'none (put a checkpoint in its models/checkpoints folder)'}",
                      "model")
    model = checkpoint_info(recipe.model.id)
    resolved = resolve(recipe, model)
    found = resolved.validate(model)
    if found:
        raise Refused("; ".join(str(p) for p in found))
    able = []
    reasons: list[str] = []
    for server in having:
        why = recipe_problems(resolved, server.caps, server.name)  # type: ignore[arg-type]
        (reasons.extend(why) if why else able.append(server))
    if not able:
        raise Refused("; ".join(dict.fromkeys(reasons)))
    parts = []
    for k in range(resolved.output.batch_size):
        picture = resolved.for_image(k)
        parts.append(Part(k, picture, build_graph(picture), new_prompt_id()))
    return Job(job_id, resolved, options, model, parts, pinned, emit, limits)
