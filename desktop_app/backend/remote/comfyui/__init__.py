"""ComfyUI servers behind the backend protocol.

``connect(url, token)`` gives a started ``ComfyUIBackend`` for one server, ``connect_pool`` for
several; both raise ``ConnectionError`` with one line naming the server and what to do.
"""

from __future__ import annotations

import time

from desktop_app.backend.remote.comfyui.backend import ComfyUIBackend
from desktop_app.backend.remote.comfyui.client import display_name, normalize_url
from desktop_app.backend.remote.comfyui.limits import DEFAULT_LIMITS, Limits
from desktop_app.backend.remote.comfyui.server import DEFAULT_TIMING, ServerState, Timing
from desktop_app.backend.remote.comfyui.tokens import load_token

__all__ = ["DEFAULT_LIMITS", "ComfyUIBackend", "Limits", "ServerState", "Timing", "connect", "connect_pool"]


def connect_pool(urls: list[str], tokens: dict[str, str] | None = None, *, timeout: float = 15.0,
                 timing: Timing = DEFAULT_TIMING, limits: Limits = DEFAULT_LIMITS) -> ComfyUIBackend:
    """A started backend over ``urls`` once at least one answers; tokens not given come from the keyring."""
    try:
        normalized = [normalize_url(u) for u in urls]
    except ValueError as exc:
        raise ConnectionError(str(exc)) from None
    given = {normalize_url(u): t for u, t in (tokens or {}).items()}
    found = {u: given.get(u) or load_token(u) for u in normalized}
    backend = ComfyUIBackend(normalized, {u: t for u, t in found.items() if t}, timing=timing, limits=limits)
    backend.start()
    if not _ready_or_refused(backend, timeout):
        errors = [s.error for s in backend.servers() if s.error]
        backend.close()
        names = ", ".join(display_name(u) for u in normalized)
        reason = errors[0] if errors else f"no answer in {timeout:g} s"
        if "token" in reason:
            raise ConnectionError(reason)
        raise ConnectionError(f"cannot connect to {names}: {reason.split(' (')[0]}; check that it runs "
                              "(e.g. python main.py --listen) and that the address and port are right")
    return backend


def _ready_or_refused(backend: ComfyUIBackend, timeout: float) -> bool:
    """True once a server answered; False at once when every server refused its first attempt (a
    connection refused, a bad token: waiting would not help), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backend.wait_ready(min(0.2, max(deadline - time.monotonic(), 0.01))):
            return True
        if all(state.error for state in backend.servers()):
            return False
    return False


def connect(url: str, token: str | None = None, *, timeout: float = 15.0, timing: Timing = DEFAULT_TIMING,
            limits: Limits = DEFAULT_LIMITS) -> ComfyUIBackend:
    return connect_pool([url], {url: token} if token else None, timeout=timeout, timing=timing, limits=limits)
