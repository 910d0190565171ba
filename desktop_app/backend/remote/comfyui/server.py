"""One ComfyUI server as the backend sees it: a websocket kept open (reconnecting with backoff), its
capabilities and state, and the prompts followed on it until each has an ``Outcome``.

Runs on the backend's asyncio loop. A prompt's outcome comes from the websocket when it is open
(``execution_success`` → its history entry, ``execution_error``, ``execution_interrupted``) and
otherwise from reconciliation: ``/queue`` first (still waiting or running: keep following), then
``/history/{id}`` (finished while we were away), then the file its graph names (finished, but the
server restarted and forgot it), else it is lost. Queue before history, because a prompt moves from
the queue into the history in one step on the server: asked the other way round, one finishing
between the two calls would look lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from desktop_app.backend.remote.comfyui.capabilities import CLASSES, ServerCapabilities, capabilities_from
from desktop_app.backend.remote.comfyui.client import (
    ComfyClient,
    ServerProtocolError,
    ServerRejected,
    ServerUnreachable,
)
from desktop_app.backend.remote.comfyui.frames import FrameError, PreviewFrame, parse_frame
from desktop_app.backend.remote.comfyui.graph import expected_file
from desktop_app.backend.remote.comfyui.limits import Limits
from desktop_app.backend.remote.comfyui.results import (
    ImageRef,
    Outcome,
    execution_error_message,
    outcome_from_history,
    was_cached,
)

log = logging.getLogger(__name__)
CallErrors = (ServerUnreachable, ServerRejected, ServerProtocolError)


@dataclass(frozen=True)
class Timing:
    poll_s: float = 2.0  # /queue for the queue length, and prompts this connection gets no messages for
    stats_s: float = 30.0  # /system_stats
    safety_s: float = 15.0  # reconcile every followed prompt, in case a message went missing
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    handover_after_s: float = 30.0  # offline this long: its unfinished prompts go to other servers
    cancel_grace_s: float = 5.0  # how long a cancelled prompt may take to stop before we stop waiting


DEFAULT_TIMING = Timing()


class PromptListener(Protocol):
    def started(self) -> None: ...
    def progress(self, value: int, maximum: int, preview: PreviewFrame | None) -> None: ...


@dataclass
class PromptWatch:
    prompt_id: str
    listener: PromptListener
    graph: dict[str, Any]
    future: asyncio.Future[Outcome]
    confirmed: bool = False  # the server accepted the POST (else: sent, answer unknown)
    posting: bool = False  # the POST is on its way: too early to ask the queue about it
    cached: bool = False
    finishing: bool = False
    stash: PreviewFrame | None = None

    def resolve(self, outcome: Outcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)


@dataclass(frozen=True)
class ServerState:
    """A snapshot for Settings and the status bar."""

    url: str
    name: str
    online: bool
    gpu: str = ""
    vram_total: int = 0
    vram_free: int = 0
    queue_length: int = 0
    checkpoints: tuple[str, ...] = ()
    error: str = ""
    version: str = ""


@dataclass
class _Stats:
    gpu: str = ""
    vram_total: int = 0
    vram_free: int = 0
    version: str = ""


def read_stats(answer: dict[str, Any]) -> _Stats:
    devices = answer.get("devices")
    device = devices[0] if isinstance(devices, list) and devices and isinstance(devices[0], dict) else {}
    system = answer.get("system") if isinstance(answer.get("system"), dict) else {}

    def whole(value: Any) -> int:
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return _Stats(str(device.get("name", ""))[:120], whole(device.get("vram_total")), whole(device.get("vram_free")),
                  str(system.get("comfyui_version", ""))[:40])


@dataclass
class _Held:
    watch: PromptWatch
    value: int
    maximum: int


@dataclass
class ServerLink:
    url: str
    client: ComfyClient
    limits: Limits
    timing: Timing
    on_status: Callable[[ServerLink, str, str], None]  # (link, state, text)
    on_dropped_out: Callable[[ServerLink], None]
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    online: bool = False
    caps: ServerCapabilities | None = None
    stats: _Stats = field(default_factory=_Stats)
    queue_remaining: int = 0
    error: str = ""
    offline_since: float | None = None
    dropped_out: bool = False
    refused: bool = False  # the server (or its proxy) turned our token down: retrying will not help
    watches: dict[str, PromptWatch] = field(default_factory=dict)
    _current: str | None = None  # the prompt executing now, for legacy frames that name none
    _held: _Held | None = None
    _closing: bool = False
    _ever_connected: bool = False
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.client.name

    def snapshot(self) -> ServerState:
        return ServerState(self.url, self.name, self.online, self.stats.gpu, self.stats.vram_total, self.stats.vram_free,
                           self.queue_remaining, self.caps.checkpoints if self.caps else (), self.error,
                           self.stats.version)

    def load(self) -> int:
        """How busy it is for placing work: the longer of its queue and our prompts on it."""
        ours = sum(1 for w in self.watches.values() if not w.future.done())
        return max(self.queue_remaining, ours)

    # ---- connection -------------------------------------------------------------------------
    async def refresh(self) -> None:
        answers = {}
        for class_name in CLASSES:
            answers[class_name] = await self.client.object_info(class_name)
        self.caps = capabilities_from(answers)
        await self.refresh_stats()

    async def refresh_stats(self) -> None:
        self.stats = read_stats(await self.client.system_stats())
        self.queue_remaining = len(await self.client.queue())

    async def run(self) -> None:
        """Keep the websocket open until ``close``; reconnect with backoff and reconcile after each."""
        delay = self.timing.backoff_initial_s
        while not self._closing:
            try:
                ws = await self.client.open_websocket(self.client_id)
            except CallErrors as exc:
                self._went_offline(str(exc))
                self.refused = isinstance(exc, ServerRejected) and exc.status in (401, 403)
                wait = delay * random.uniform(0.9, 1.1)
                what = "connection lost" if self._ever_connected else "not reachable"
                self.on_status(self, "error", f"{self.name}: {what}; trying again in {wait:.1f} s")
                await self._sleep_offline(wait)
                delay = min(delay * 2, self.timing.backoff_max_s)
                continue
            opened = time.monotonic()
            try:
                await self._connected_session(ws)
            finally:
                await ws.close()
            if self._closing:
                break
            self._went_offline(self.error or "the connection closed")
            if time.monotonic() - opened > 10 * self.timing.backoff_initial_s:
                delay = self.timing.backoff_initial_s  # it held for a while: start the backoff afresh
            self.on_status(self, "error", f"{self.name}: connection lost; reconnecting in {delay:.1f} s")
            await self._sleep_offline(delay)
            delay = min(delay * 2, self.timing.backoff_max_s)

    async def _sleep_offline(self, wait: float) -> None:
        if not self.dropped_out and self.offline_since is not None:
            left = self.offline_since + self.timing.handover_after_s - time.monotonic()
            if left <= 0:
                self.dropped_out = True
                self.on_dropped_out(self)
            else:
                wait = min(wait, left + 0.01)
        await asyncio.sleep(wait)

    def _went_offline(self, reason: str) -> None:
        if self.online or self.offline_since is None:
            self.offline_since = time.monotonic()
        self.online = False
        self._connected.clear()
        self.error = reason
        self._flush_held()

    async def _connected_session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            await self.refresh()
        except CallErrors as exc:
            self.error = str(exc)
            return
        was_back = self._ever_connected
        self.online, self.error, self.offline_since, self.dropped_out, self.refused = True, "", None, False, False
        self._ever_connected = True
        self._connected.set()
        gpu = f" ({self.stats.gpu})" if self.stats.gpu else ""
        self.on_status(self, "ready", f"{self.name}: {'reconnected' if was_back else 'connected'}{gpu}")
        poller = asyncio.create_task(self._poll())
        try:
            await self.reconcile_all()
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self._on_binary(message.data)
                elif message.type == aiohttp.WSMsgType.ERROR:
                    log.info("%s: websocket error (%s); reconnecting", self.name, ws.exception() or f"close code {ws.close_code}")
                    break
        except CallErrors as exc:
            self.error = str(exc)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
            self.error = (f"{self.name} sent a websocket message over the {self.limits.ws_message_bytes}-byte "
                          "limit; the connection was closed")
            self.on_status(self, "error", self.error)

    async def _poll(self) -> None:
        last_stats = last_safety = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.poll_s)
            try:
                queue = await self.client.queue()
                self.queue_remaining = len(queue)
                now = time.monotonic()
                if now - last_stats >= self.timing.stats_s:
                    last_stats = now
                    self.stats = read_stats(await self.client.system_stats())
                safety = now - last_safety >= self.timing.safety_s
                if safety:
                    last_safety = now
                for watch in list(self.watches.values()):
                    if watch.future.done():
                        continue
                    # a prompt gone from the queue without a message on our socket (made by an earlier
                    # session under another client id, or a message we missed): ask the history
                    if safety or watch.prompt_id not in queue:
                        await self.reconcile(watch)
            except CallErrors as exc:
                log.info("%s: poll failed: %s", self.name, exc)

    async def wait_online(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        self._closing = True

    # ---- prompts ----------------------------------------------------------------------------
    def follow(self, prompt_id: str, graph: dict[str, Any], listener: PromptListener,
               confirmed: bool) -> PromptWatch:
        watch = PromptWatch(prompt_id, listener, graph, asyncio.get_running_loop().create_future(), confirmed)
        self.watches[prompt_id] = watch
        watch.future.add_done_callback(lambda _f: self.watches.pop(prompt_id, None))
        return watch

    async def submit(self, watch: PromptWatch, preview_method: str) -> None:
        """POST the prompt. ``ServerRejected`` with status 400 is a validation error (``answer`` has
        ``node_errors``); ``ServerUnreachable`` leaves it unknown whether the server got it."""
        watch.posting = True
        try:
            await self.client.submit(watch.graph, watch.prompt_id, self.client_id, preview_method)
        finally:
            watch.posting = False
        watch.confirmed = True

    async def reconcile_all(self) -> None:
        for watch in list(self.watches.values()):
            if not watch.future.done():
                await self.reconcile(watch)

    async def reconcile(self, watch: PromptWatch) -> None:
        if watch.posting:
            return
        queue = await self.client.queue()
        if watch.prompt_id in queue:
            return
        entry = await self.client.history(watch.prompt_id)
        if entry is not None:
            watch.resolve(outcome_from_history(entry, self.name, self.limits))
            return
        subfolder, filename = expected_file(watch.graph)
        try:
            await self.client.view(filename, subfolder, "output")
        except ServerRejected:
            watch.resolve(Outcome("lost", message=f"{self.name} no longer knows this job (it restarted or "
                                                  "its history was cleared); safe to run again"))
            return
        watch.resolve(Outcome("success", (ImageRef(filename, subfolder, "output"),), recovered=True))

    async def cancel(self, prompt_id: str) -> None:
        """Drop it from the queue if it waits; stop it at the next step if it runs."""
        with contextlib.suppress(*CallErrors):
            await self.client.delete_queued([prompt_id])
        with contextlib.suppress(*CallErrors):
            await self.client.interrupt(prompt_id)

    # ---- websocket messages -----------------------------------------------------------------
    def _flush_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.watch.listener.progress(held.value, held.maximum, None)

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            log.warning("%s sent a text message that is not JSON", self.name)
            return
        if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
            return
        kind, data = message.get("type"), message["data"]
        if kind == "progress":
            self._flush_held()
            self._on_progress(data)
            return
        self._flush_held()
        if kind == "status":
            info = data.get("status", {}).get("exec_info", {}) if isinstance(data.get("status"), dict) else {}
            remaining = info.get("queue_remaining") if isinstance(info, dict) else None
            if isinstance(remaining, int):
                self.queue_remaining = remaining
            return
        watch = self.watches.get(data.get("prompt_id"))  # type: ignore[arg-type]
        if kind == "executing":
            self._current = data.get("prompt_id") if data.get("node") is not None else None
            if data.get("node") is None and watch is not None:
                self._finish(watch)
        if watch is None or watch.future.done():
            return
        if kind == "execution_start":
            self._current = watch.prompt_id
            watch.listener.started()
        elif kind == "execution_cached":
            watch.cached = was_cached(data.get("nodes"))
        elif kind == "execution_success":
            self._finish(watch)
        elif kind == "execution_error":
            watch.resolve(Outcome("error", message=execution_error_message(data, self.name, self.limits)))
        elif kind == "execution_interrupted":
            watch.resolve(Outcome("interrupted", message=f"{self.name} stopped the job (interrupted)"))

    def _on_progress(self, data: dict[str, Any]) -> None:
        watch = self.watches.get(data.get("prompt_id") or self._current)  # type: ignore[arg-type]
        value, maximum = data.get("value"), data.get("max")
        if watch is None or watch.future.done() or not isinstance(value, int) or not isinstance(maximum, int):
            return
        if watch.stash is not None:  # a type-4 preview comes before its step's progress
            frame, watch.stash = watch.stash, None
            watch.listener.progress(value, maximum, frame)
        else:  # a legacy (type 1) preview comes after it: hold the step until the next message
            self._held = _Held(watch, value, maximum)

    def _on_binary(self, data: bytes) -> None:
        try:
            frame = parse_frame(data, self.limits)
        except FrameError as exc:
            log.warning("%s: dropped a preview frame: %s", self.name, exc)
            self._flush_held()
            return
        if frame is None:
            return
        if frame.prompt_id is None and self._held is not None:
            held, self._held = self._held, None
            held.watch.listener.progress(held.value, held.maximum, frame)
            return
        watch = self.watches.get(frame.prompt_id or self._current)  # type: ignore[arg-type]
        if watch is not None and not watch.future.done():
            watch.stash = frame

    def _finish(self, watch: PromptWatch) -> None:
        if watch.finishing or watch.future.done():
            return
        watch.finishing = True
        asyncio.get_running_loop().create_task(self._fetch_history(watch))

    async def _fetch_history(self, watch: PromptWatch) -> None:
        try:
            entry = await self.client.history(watch.prompt_id)
        except CallErrors as exc:
            log.info("%s: history of %s not fetched (%s); reconciling later", self.name, watch.prompt_id, exc)
            watch.finishing = False
            return
        watch.finishing = False
        if entry is not None:
            outcome = outcome_from_history(entry, self.name, self.limits)
            if watch.cached and not outcome.cached:
                outcome = Outcome(outcome.kind, outcome.images, outcome.message, True, outcome.recovered)
            watch.resolve(outcome)
