"""ComfyUI server addresses as the user types them, made into the one form the app stores."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORT = 8188  # ComfyUI's own


def normalize_url(url: str) -> str:
    """``gpu-box`` → ``http://gpu-box:8188``; keeps https and a path prefix (a proxy's ``/comfy``).
    Raises ValueError saying what is wrong with the address."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: a ComfyUI address starts with http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    netloc = parts.netloc if port or parts.scheme == "https" else f"{parts.netloc}:{DEFAULT_PORT}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
