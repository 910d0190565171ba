"""ComfyUI's binary websocket frames, read with size limits.

Every binary frame starts with a big-endian u32 event type. Type 1 (``PREVIEW_IMAGE``) is
``[u32 format: 1 JPEG, 2 PNG][image bytes]``, sent after the step's ``progress`` message and tied to
no prompt. Type 4 (``PREVIEW_IMAGE_WITH_METADATA``, sent instead once the client announced
``supports_preview_metadata``) is ``[u32 n][n bytes of JSON: node_id, prompt_id, …, image_type][image
bytes]``, sent before the step's ``progress``. Other types (3: progress text) are ignored.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from desktop_app.backend.remote.comfyui.limits import DEFAULT_LIMITS, Limits

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_LEGACY_FORMATS = {1: "image/jpeg", 2: "image/png"}
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


class FrameError(ValueError):
    """A binary frame that breaks the format or a limit; the message says which."""


@dataclass(frozen=True)
class PreviewFrame:
    image_bytes: bytes
    mime: str
    prompt_id: str | None = None  # only type 4 says which prompt it belongs to
    node_id: str | None = None


def parse_frame(data: bytes, limits: Limits = DEFAULT_LIMITS) -> PreviewFrame | None:
    """The preview in one binary frame; None for frame types that carry no preview."""
    if len(data) > limits.ws_message_bytes:
        raise FrameError(f"a {len(data)}-byte frame is over the {limits.ws_message_bytes}-byte limit")
    if len(data) < 8:
        raise FrameError(f"a {len(data)}-byte binary frame is too short for its header")
    event_type, word = struct.unpack(">II", data[:8])
    if event_type == PREVIEW_IMAGE:
        if word not in _LEGACY_FORMATS:
            raise FrameError(f"preview format {word} is neither 1 (JPEG) nor 2 (PNG)")
        return PreviewFrame(bytes(data[8:]), _LEGACY_FORMATS[word])
    if event_type == PREVIEW_IMAGE_WITH_METADATA:
        if word > limits.preview_header_bytes or word > len(data) - 8:
            raise FrameError(f"a preview header of {word} bytes is over the limit or longer than its frame")
        try:
            meta = json.loads(bytes(data[8 : 8 + word]).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise FrameError(f"the preview header is not JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise FrameError("the preview header is not a JSON object")
        mime = meta.get("image_type", "image/jpeg")
        if mime not in _PIL_FORMATS:
            raise FrameError(f"preview image type {str(mime)[:40]!r} is not JPEG, PNG or WebP")
        prompt_id, node_id = meta.get("prompt_id"), meta.get("node_id")
        return PreviewFrame(bytes(data[8 + word :]), mime,
                            prompt_id if isinstance(prompt_id, str) else None,
                            node_id if isinstance(node_id, str) else None)
    return None


def open_image(data: bytes, formats: tuple[str, ...], max_pixels: int, what: str) -> Image.Image:
    """Decode ``data`` as one of ``formats`` after checking its header's size against ``max_pixels``.

    Only the named decoders are tried, so a server cannot steer bytes into any other of Pillow's
    parsers, and a picture whose header claims more pixels than allowed is never decoded.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
        width, height = image.size
        if width * height > max_pixels:
            raise FrameError(f"the {what} is {width}×{height}, over the limit of {max_pixels} pixels")
        image.load()
    except FrameError:
        raise
    except Image.DecompressionBombError:
        raise FrameError(f"the {what} claims more than {2 * Image.MAX_IMAGE_PIXELS} pixels, over the limit of "
                         f"{max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise FrameError(f"the {what} cannot be read as {'/'.join(formats)} ({exc})") from None
    return image


def decode_preview(frame: PreviewFrame, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """The preview as an (H, W, 3) uint8 array."""
    image = open_image(frame.image_bytes, (_PIL_FORMATS[frame.mime],), limits.preview_pixels, "preview")
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
