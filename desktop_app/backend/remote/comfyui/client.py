"""HTTP and websocket calls to one ComfyUI server (aiohttp), each answer read within ``Limits``.

Plain calls only: which calls to make, when, and what they mean for a job is ``server.py``'s
business. Redirects are never followed (a token must not travel to another host), answers are
parsed as JSON only (nothing a server sends can become code here), and every error is one of three
kinds with a one-line message naming the server: ``ServerUnreachable``, ``ServerRejected`` (the
server answered, and said no) and ``ServerProtocolError`` (it answered something else than ComfyUI
would).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from desktop_app.backend.remote.comfyui.limits import DEFAULT_LIMITS, Limits
from desktop_app.core.servers import normalize_url

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


class ServerUnreachable(ConnectionError):
    """No answer: refused, timed out, the connection broke."""


class ServerRejected(Exception):
    """The server answered with an error status; ``status`` and the parsed ``answer`` (may be None)."""

    def __init__(self, message: str, status: int, answer: Any = None):
        super().__init__(message)
        self.status = status
        self.answer = answer


class ServerProtocolError(Exception):
    """An answer that is not what ComfyUI sends (not JSON, over a size limit, wrong shape)."""


def display_name(url: str) -> str:
    parts = urlsplit(url)
    return f"ComfyUI at {parts.netloc}{parts.path}"


@dataclass(frozen=True)
class QueueState:
    running: tuple[str, ...]
    pending: tuple[str, ...]

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.running or prompt_id in self.pending

    def __len__(self) -> int:
        return len(self.running) + len(self.pending)


def _queue_ids(items: Any) -> tuple[str, ...]:
    # each item is [number, prompt_id, prompt, extra_data, outputs_to_execute, …]
    if not isinstance(items, list):
        return ()
    return tuple(item[1] for item in items if isinstance(item, list) and len(item) > 1 and isinstance(item[1], str))


class ComfyClient:
    def __init__(self, url: str, session: aiohttp.ClientSession, token: str | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        self.url = normalize_url(url)
        self.name = display_name(self.url)
        self.session = session
        self.limits = limits
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    # ---- plumbing ---------------------------------------------------------------------------
    async def _read_limited(self, response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        declared = response.content_length
        if declared is not None and declared > limit:
            raise ServerProtocolError(f"{self.name} sent {what} of {declared} bytes, over the {limit}-byte limit")
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body.extend(chunk)
            if len(body) > limit:
                raise ServerProtocolError(f"{self.name} sent {what} of more than {limit} bytes; stopped reading")
        return bytes(body)

    def _parse_json(self, body: bytes, what: str) -> Any:
        try:
            return json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ServerProtocolError(f"{self.name} answered {what} with something that is not JSON") from None

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      limit: int | None = None, raw: bool = False) -> Any:
        """One call; returns the parsed JSON (or the raw bytes with ``raw``). Raises the three errors."""
        limit = limit if limit is not None else self.limits.json_bytes
        what = f"{method} {path}"
        try:
            async with self.session.request(method, self.url + path, json=body, params=params,
                                            headers=self._headers, allow_redirects=False,
                                            timeout=REQUEST_TIMEOUT) as response:
                data = await self._read_limited(response, limit, what)
                if response.status in (401, 403):
                    raise ServerRejected(f"{self.name} refused the request (HTTP {response.status}): "
                                         "check the access token in Settings", response.status)
                if response.status >= 300:
                    answer = None
                    if not raw:
                        try:
                            answer = self._parse_json(data, what)
                        except ServerProtocolError:
                            answer = None
                    raise ServerRejected(f"{self.name} answered {what} with HTTP {response.status}",
                                         response.status, answer)
                return data if raw else self._parse_json(data, what)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, OSError) as exc:
            raise ServerUnreachable(f"{self.name} is not reachable ({type(exc).__name__}: {exc}); "
                                    "check that it runs and the address is right") from None

    # ---- the calls --------------------------------------------------------------------------
    async def object_info(self, class_name: str) -> Any:
        return await self.request("GET", f"/object_info/{class_name}")

    async def system_stats(self) -> dict[str, Any]:
        answer = await self.request("GET", "/system_stats")
        return answer if isinstance(answer, dict) else {}

    async def queue(self) -> QueueState:
        answer = await self.request("GET", "/queue")
        if not isinstance(answer, dict):
            raise ServerProtocolError(f"{self.name}: /queue is not a JSON object")
        return QueueState(_queue_ids(answer.get("queue_running")), _queue_ids(answer.get("queue_pending")))

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it runs, waits or is unknown to the server."""
        answer = await self.request("GET", f"/history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def submit(self, graph: dict[str, Any], prompt_id: str, client_id: str, preview_method: str) -> Any:
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id,
                "extra_data": {"preview_method": preview_method}}
        return await self.request("POST", "/prompt", body)

    async def view(self, filename: str, subfolder: str, kind: str) -> bytes:
        # the server's names only ever travel back to it as query values: never a path on this machine
        return await self.request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": kind},
                                  limit=self.limits.image_bytes, raw=True)

    async def interrupt(self, prompt_id: str) -> None:
        await self.request("POST", "/interrupt", {"prompt_id": prompt_id})

    async def delete_queued(self, prompt_ids: list[str]) -> None:
        await self.request("POST", "/queue", {"delete": prompt_ids})

    async def open_websocket(self, client_id: str) -> aiohttp.ClientWebSocketResponse:
        """``/ws?clientId=`` with the ``feature_flags`` handshake sent (type-4 previews from then on)."""
        try:
            ws = await self.session.ws_connect(self.url + "/ws", params={"clientId": client_id},
                                               headers=self._headers, max_msg_size=self.limits.ws_message_bytes,
                                               heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5),
                                               autoping=True)
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            return ws
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise ServerRejected(f"{self.name} refused the connection (HTTP {exc.status}): "
                                     "check the access token in Settings", exc.status) from None
            raise ServerUnreachable(f"{self.name} did not open a websocket (HTTP {exc.status})") from None
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as exc:
            raise ServerUnreachable(f"{self.name} is not reachable ({type(exc).__name__}: {exc}); "
                                    "check that it runs and the address is right") from None
