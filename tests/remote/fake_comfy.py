"""A fake ComfyUI server on 127.0.0.1 for the tests: real HTTP and websockets (aiohttp), one job at a
time from a queue like ComfyUI's, per-node caching, and every message taken from the recordings
(``recording.py``) in the recorded order:

    POST /prompt → status ×2 → execution_start → execution_cached → per node not cached:
    progress_state, executing [KSampler: per step progress_state, progress + preview frame] →
    executed (SaveImage) → execution_success → status → executing(node null)

Legacy servers send a type-1 frame after each ``progress``; once the client sent the
``feature_flags`` handshake the frame is type 4 and comes before it. No previews unless the prompt's
``extra_data.preview_method`` names one. History is in memory only (``restart`` forgets it), files
in "output" survive a restart. Knobs make it break the ways a real server breaks.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, PngImagePlugin

from .recording import recording

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_sde", "dpmpp_2m",
            "dpmpp_2m_sde", "ddpm", "lcm", "ipndm", "deis", "ddim", "uni_pc"]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal"]
NODE_ORDER = ["1", "4", "3", "2", "5", "6", "7"]  # the order the recorded server ran a fresh graph in


def picture_for(seed: int, width: int, height: int) -> Image.Image:
    """What the fake 'generates': a colour from the seed, so a test can tell pictures apart."""
    return Image.new("RGB", (width, height), (seed % 251, (seed * 7) % 253, (seed * 13) % 255))


def png_bytes(image: Image.Image, prompt: dict[str, Any] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))  # as ComfyUI's SaveImage does
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def signature(graph: dict[str, Any], node_id: str) -> str:
    node = graph[node_id]
    inputs = {k: (signature(graph, v[0]), v[1]) if isinstance(v, list) else v for k, v in node["inputs"].items()}
    return json.dumps([node["class_type"], inputs], sort_keys=True)


@dataclass
class Item:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    extra: dict[str, Any]
    client_id: str


@dataclass
class FakeComfy:
    checkpoints: tuple[str, ...] = ("sd15-random.safetensors", "mini-sd15-taesd.safetensors")
    step_delay: float = 0.005
    token: str | None = None
    port: int = 0
    supports_metadata: bool = True  # False: an older server that ignores the feature_flags handshake
    # the ways it breaks
    fail_node: str | None = None  # execution_error at this node (the recorded message)
    hostile_name: tuple[str, str] | None = None  # (subfolder, filename) it reports for every picture
    oversized_frame: int = 0  # send one binary frame this big at step 1
    bomb_preview: bool = False  # a preview whose header claims 60000×60000 pixels at step 1
    big_picture: int = 0  # pad every PNG it serves to this many bytes
    bomb_picture: bool = False  # every picture's PNG header claims 100000×100000 pixels
    pause_at_step: int | None = None  # stop before this step until resume()
    # what happened, for assertions
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    outputs: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # survives restarts

    def __post_init__(self) -> None:
        self.rec = recording()
        self.paused = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-comfyui")
        self._runner: web.AppRunner | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.metadata_clients: set[str] = set()
        self.queue: list[Item] = []
        self.running: Item | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.cache: dict[str, str] = {}  # node id -> signature of its cached output
        self.cached_ui: dict[str, Any] = {}  # SaveImage signature -> its ui output
        self.number = 0
        self.interrupt_flag = False
        self._wake: asyncio.Event | None = None
        self._resume: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    # ---- life -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeComfy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Gone for good (the process died): the port closes, nothing answers."""
        if self._thread.is_alive():
            self._call(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def restart(self, down_for: float = 0.0) -> None:
        """A server restart: every socket closes, the queue, history and caches are forgotten."""
        self._call(self._stop())
        time.sleep(down_for)
        self._reset_state()
        self._call(self._start())

    def drop_connections(self) -> None:
        """Close every websocket (a network blip); the job keeps running."""
        self._call(self._drop())

    def resume(self) -> None:
        self.pause_at_step = None
        self._loop.call_soon_threadsafe(lambda: self._resume.set() if self._resume else None)

    def _call(self, coro) -> Any:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_get("/queue", self._get_queue)
        app.router.add_post("/queue", self._post_queue)
        app.router.add_post("/interrupt", self._post_interrupt)
        app.router.add_get("/history/{prompt_id}", self._get_history)
        app.router.add_get("/view", self._view)
        app.router.add_get("/object_info/{cls}", self._object_info)
        app.router.add_get("/system_stats", self._system_stats)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._wake, self._resume = asyncio.Event(), asyncio.Event()
        self._worker = asyncio.create_task(self._work())

    async def _stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self._drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _drop(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        self.sockets.clear()

    # ---- HTTP -------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        body = await request.json() if request.method == "POST" and request.body_exists else None
        self.requests.append((request.method, request.path, dict(request.query), body))
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="401: Unauthorized")
        return await handler(request)

    async def _object_info(self, request: web.Request) -> web.Response:
        cls = request.match_info["cls"]
        combos = {"CheckpointLoaderSimple": {"ckpt_name": list(self.checkpoints)},
                  "KSampler": {"sampler_name": SAMPLERS, "scheduler": SCHEDULERS},
                  "LoraLoader": {"lora_name": []}, "VAELoader": {"vae_name": ["taesd"]}}.get(cls)
        if combos is None:
            return web.json_response({})
        required = {name: [choices, {"tooltip": f"The {name}."}] for name, choices in combos.items()}
        return web.json_response({cls: {"input": {"required": required}, "input_order": {"required": list(required)},
                                        "output": [], "name": cls, "display_name": cls, "output_node": False}})

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"os": "posix", "ram_total": 2**34, "ram_free": 2**33,
                                             "comfyui_version": "0.3.64", "python_version": "3.11",
                                             "pytorch_version": "2.8.0", "embedded_python": False, "argv": []},
                                  "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 2**34,
                                               "vram_free": 2**33, "torch_vram_total": 2**34,
                                               "torch_vram_free": 2**33}]})

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        graph = body["prompt"]
        for node_id, node in graph.items():
            checks = {"CheckpointLoaderSimple": {"ckpt_name": list(self.checkpoints)},
                      "KSampler": {"sampler_name": SAMPLERS, "scheduler": SCHEDULERS}}.get(node["class_type"], {})
            for name, choices in checks.items():
                if node["inputs"][name] not in choices:
                    answer = self.rec.validation_answer(name, node["inputs"][name], choices, node_id, node["class_type"])
                    return web.json_response(answer, status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.number += 1
        extra = dict(body.get("extra_data", {}))
        extra["client_id"] = body.get("client_id", "")
        self.queue.append(Item(self.number, prompt_id, graph, extra, extra["client_id"]))
        await self._broadcast(self.rec.status(len(self.queue) + (1 if self.running else 0)))
        assert self._wake is not None
        self._wake.set()
        return web.json_response({"prompt_id": prompt_id, "number": self.number, "node_errors": {}})

    def _queue_item(self, item: Item) -> list[Any]:
        return [item.number, item.prompt_id, item.graph, item.extra, [NODE_ORDER[-1]]]

    async def _get_queue(self, request: web.Request) -> web.Response:
        return web.json_response({"queue_running": [self._queue_item(self.running)] if self.running else [],
                                  "queue_pending": [self._queue_item(i) for i in self.queue]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        doomed = set(body.get("delete", []))
        self.queue = [i for i in self.queue if i.prompt_id not in doomed]
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.body_exists else {}
        wanted = (body or {}).get("prompt_id")
        if self.running is not None and (wanted is None or wanted == self.running.prompt_id):
            self.interrupt_flag = True
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        key = (request.query.get("type", "output"), request.query.get("subfolder", ""), request.query.get("filename", ""))
        data = self.outputs.get(key)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    # ---- websocket --------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata_clients.discard(sid)
        await ws.send_json(self.rec.greeting(sid))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                if (data.get("type") == "feature_flags" and data["data"].get("supports_preview_metadata")
                        and self.supports_metadata):
                    self.metadata_clients.add(sid)
                    await ws.send_json(self.rec.feature_flags())
        if self.sockets.get(sid) is ws:
            del self.sockets[sid]
        return ws

    async def _send(self, sid: str, message: dict[str, Any] | bytes) -> None:
        ws = self.sockets.get(sid)
        if ws is None or ws.closed:
            return  # ComfyUI drops messages for a client that is not connected
        try:
            await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_json(message))
        except (ConnectionError, RuntimeError):
            pass

    async def _broadcast(self, message: dict[str, Any]) -> None:
        for sid in list(self.sockets):
            await self._send(sid, message)

    # ---- execution --------------------------------------------------------------------------
    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            self.running = self.queue.pop(0)
            self.interrupt_flag = False
            await self._execute(self.running)
            self.running = None
            await self._send_status_done()

    async def _send_status_done(self) -> None:
        await self._broadcast(self.rec.status(len(self.queue)))

    def _progress_state(self, pid: str, states: dict[str, str]) -> dict[str, Any]:
        nodes = {n: {"value": 1.0 if s == "finished" else 0.0, "max": 1.0, "state": s, "node_id": n, "prompt_id": pid,
                     "display_node_id": n, "parent_node_id": None, "real_node_id": n} for n, s in states.items()}
        return {"type": "progress_state", "data": {"prompt_id": pid, "nodes": nodes}}

    async def _execute(self, item: Item) -> None:
        rec, pid, sid, graph = self.rec, item.prompt_id, item.client_id, item.graph
        messages: list[list[Any]] = []

        async def say(message: dict[str, Any], keep: bool = True) -> None:
            if keep and message["type"] in ("execution_start", "execution_cached", "execution_success",
                                            "execution_error", "execution_interrupted"):
                messages.append([message["type"], message["data"]])
            await self._send(sid, message)

        signatures = {n: signature(graph, n) for n in graph}
        cached = [n for n in NODE_ORDER if self.cache.get(n) == signatures[n]]
        await say(rec.message(rec.legacy, "execution_start", pid))
        cached_message = rec.message(rec.legacy, "execution_cached", pid)
        cached_message["data"]["nodes"] = cached
        await say(cached_message)
        states = {n: "finished" for n in cached}
        ui_output: dict[str, Any] | None = None
        for node_id in NODE_ORDER:
            if node_id in cached:
                if node_id == NODE_ORDER[-1]:
                    ui_output = self.cached_ui.get(signatures[node_id])
                    await say({"type": "executed", "data": {"node": node_id, "display_node": node_id,
                                                            "output": ui_output, "prompt_id": pid}})
                continue
            states[node_id] = "running"
            await say(self._progress_state(pid, states))
            await say({"type": "executing", "data": {"node": node_id, "display_node": node_id, "prompt_id": pid}})
            if node_id == self.fail_node:
                await self._fail(item, node_id, messages)
                return
            if graph[node_id]["class_type"] == "KSampler":
                if not await self._sample(item, states):
                    await self._interrupted(item, node_id, cached, messages)
                    return
            if graph[node_id]["class_type"] == "SaveImage":
                ui_output = self._save(item)
                self.cached_ui[signatures[node_id]] = ui_output
                await say({"type": "executed", "data": {"node": node_id, "display_node": node_id,
                                                        "output": ui_output, "prompt_id": pid}})
            states[node_id] = "finished"
            self.cache[node_id] = signatures[node_id]
            await say(self._progress_state(pid, states))
        await say(rec.message(rec.legacy, "execution_success", pid))
        entry = rec.history_entry(rec.legacy, pid)
        entry["prompt"] = self._queue_item(item)
        entry["outputs"] = {NODE_ORDER[-1]: ui_output}
        entry["status"]["messages"] = messages
        self.history[pid] = entry
        await self._send_status_done()
        await say({"type": "executing", "data": {"node": None, "prompt_id": pid}})

    async def _sample(self, item: Item, states: dict[str, str]) -> bool:
        """The KSampler's steps with their previews; False when interrupted."""
        rec, pid, sid = self.rec, item.prompt_id, item.client_id
        steps = int(item.graph["5"]["inputs"]["steps"])
        previews = item.extra.get("preview_method", "none") not in ("none", None)
        metadata = sid in self.metadata_clients
        frames = rec.metadata_frames(pid) if metadata else rec.legacy_frames()
        progress = rec.message(rec.legacy, "progress", pid)
        for step in range(1, steps + 1):
            if self.pause_at_step == step:
                self.paused.set()
                assert self._resume is not None
                self._resume.clear()
                await self._resume.wait()
            await asyncio.sleep(self.step_delay)
            if self.interrupt_flag:
                return False
            await self._send(sid, self._progress_state(pid, states))
            frame = frames[(step - 1) % len(frames)]
            if step == 1 and self.oversized_frame:
                frame = struct.pack(">II", 1, 1) + b"\xff" * self.oversized_frame
            if step == 1 and self.bomb_preview:
                frame = frame[:8] + bomb_jpeg(frame[8:]) if not metadata else frame
            message = copy.deepcopy(progress)
            message["data"].update({"value": step, "max": steps})
            if previews and metadata:
                await self._send(sid, frame)
            await self._send(sid, message)
            if previews and not metadata:
                await self._send(sid, frame)
        return True

    def _save(self, item: Item) -> dict[str, Any]:
        inputs = item.graph["4"]["inputs"]
        prefix = item.graph["7"]["inputs"]["filename_prefix"]
        subfolder, _, stem = prefix.rpartition("/")
        counter = 1 + sum(1 for (_t, s, f) in self.outputs if s == subfolder and f.startswith(stem + "_"))
        filename = f"{stem}_{counter:05}_.png"
        data = png_bytes(picture_for(int(item.graph["5"]["inputs"]["seed"]), inputs["width"], inputs["height"]),
                         item.graph)
        if self.bomb_picture:
            data = bomb_png(data)
        if self.big_picture:
            data = data + b"\x00" * max(0, self.big_picture - len(data))
        if self.hostile_name is not None:
            subfolder, filename = self.hostile_name
        self.outputs[("output", subfolder, filename)] = data
        return {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}]}

    async def _fail(self, item: Item, node_id: str, messages: list[list[Any]]) -> None:
        rec, pid = self.rec, item.prompt_id
        error = rec.message(rec.error, "execution_error", pid)
        error["data"].update({"node_id": node_id, "node_type": item.graph[node_id]["class_type"]})
        messages.append(["execution_error", error["data"]])
        await self._send(item.client_id, error)
        entry = rec.history_entry(rec.error, pid)
        entry["prompt"] = self._queue_item(item)
        entry["status"]["messages"] = messages
        self.history[pid] = entry
        await self._send_status_done()
        await self._send(item.client_id, {"type": "executing", "data": {"node": None, "prompt_id": pid}})

    async def _interrupted(self, item: Item, node_id: str, cached: list[str], messages: list[list[Any]]) -> None:
        rec, pid = self.rec, item.prompt_id
        message = rec.message(rec.interrupted, "execution_interrupted", pid)
        message["data"]["executed"] = [n for n in NODE_ORDER[: NODE_ORDER.index(node_id)] if n not in cached]
        messages.append(["execution_interrupted", message["data"]])
        await self._send(item.client_id, message)
        entry = rec.history_entry(rec.interrupted, pid)
        entry["prompt"] = self._queue_item(item)
        entry["status"]["messages"] = messages
        self.history[pid] = entry
        await self._send_status_done()
        await self._send(item.client_id, {"type": "executing", "data": {"node": None, "prompt_id": pid}})


def bomb_jpeg(jpeg: bytes) -> bytes:
    """The same JPEG with its frame header claiming 60000×60000 pixels."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", 60000, 60000) + jpeg[at + 9 :]


def bomb_png(png: bytes) -> bytes:
    """The same PNG with its IHDR (CRC fixed) claiming 100000×100000 pixels."""
    import zlib

    start = 8  # after the signature: [length][b"IHDR"][13 bytes][crc]
    body = b"IHDR" + struct.pack(">II", 100000, 100000) + png[start + 16 : start + 21]
    return png[:start] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + png[start + 25 :]
