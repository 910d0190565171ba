"""What a ComfyUI server says about a finished prompt, as facts for a job: its outcome (from a
history entry or a websocket message), the pictures it names, and one-line messages for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from desktop_app.backend.remote.comfyui.frames import open_image
from desktop_app.backend.remote.comfyui.graph import SAVE_NODE
from desktop_app.backend.remote.comfyui.limits import DEFAULT_LIMITS, Limits

OUTCOME_KINDS = ("success", "error", "interrupted", "lost", "dropped", "cancelled")
_MAX_NAME = 1024


@dataclass(frozen=True)
class ImageRef:
    """A picture as the server names it: only ever sent back to the same server's ``/view``."""

    filename: str
    subfolder: str = ""
    kind: str = "output"


@dataclass(frozen=True)
class Outcome:
    kind: str  # one of OUTCOME_KINDS
    images: tuple[ImageRef, ...] = ()
    message: str = ""
    cached: bool = False  # the server answered from its cache: the file is the one an identical prompt made
    recovered: bool = False  # found by its file name after the server had forgotten the prompt


def _name(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= _MAX_NAME and "\x00" not in value:
        return value
    return None


def image_refs(outputs: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[ImageRef, ...]:
    """The pictures of the SaveImage node in a history ``outputs`` (or an ``executed`` output)."""
    node = outputs.get(SAVE_NODE) if isinstance(outputs, dict) else None
    images = node.get("images") if isinstance(node, dict) else None
    if not isinstance(images, list):
        return ()
    refs = []
    for item in images[: limits.images_per_prompt]:
        if not isinstance(item, dict):
            continue
        filename, subfolder, kind = _name(item.get("filename")), _name(item.get("subfolder", "")), \
            _name(item.get("type", "output"))
        if filename and subfolder is not None and kind:
            refs.append(ImageRef(filename, subfolder, kind))
    return tuple(refs)


def _messages(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    status = entry.get("status")
    messages = status.get("messages") if isinstance(status, dict) else None
    found = []
    for item in messages if isinstance(messages, list) else []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict):
            found.append((item[0], item[1]))
    return found


def was_cached(cached_nodes: Any) -> bool:
    return isinstance(cached_nodes, list) and SAVE_NODE in cached_nodes


def outcome_from_history(entry: dict[str, Any], server: str, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    messages = _messages(entry)
    status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    cached = any(kind == "execution_cached" and was_cached(data.get("nodes")) for kind, data in messages)
    for kind, data in messages:
        if kind == "execution_interrupted":
            return Outcome("interrupted", message=f"{server} stopped the job (interrupted)")
        if kind == "execution_error":
            return Outcome("error", message=execution_error_message(data, server, limits))
    refs = image_refs(entry.get("outputs"), limits)
    if status.get("status_str") == "success" or status.get("completed") is True:
        if not refs:
            return Outcome("error", message=f"{server} finished the job but named no picture")
        return Outcome("success", refs, cached=cached)
    return Outcome("error", message=f"{server} ended the job without a picture "
                                    f"(status {str(status.get('status_str'))[:40]!r})")


def _cut(text: str, limits: Limits) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limits.message_chars else line[: limits.message_chars - 1] + "…"


def execution_error_message(data: dict[str, Any], server: str, limits: Limits = DEFAULT_LIMITS) -> str:
    node_type = data.get("node_type") or "a node"
    node_id = data.get("node_id")
    where = f"{node_type} (node {node_id})" if node_id is not None else str(node_type)
    exception = data.get("exception_message") or data.get("exception_type") or "no reason given"
    return _cut(f"{server}: {where} failed: {exception}", limits)


def validation_message(answer: Any, server: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """HTTP 400 from ``/prompt``: the first failing node and input, e.g. ``ckpt_name: 'x' not in [...]``."""
    if not isinstance(answer, dict):
        return _cut(f"{server} refused the job", limits)
    node_errors = answer.get("node_errors")
    if isinstance(node_errors, dict):
        for node_id, info in node_errors.items():
            errors = info.get("errors") if isinstance(info, dict) else None
            if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
                continue
            first = errors[0]
            extra = first.get("extra_info") if isinstance(first.get("extra_info"), dict) else {}
            what = first.get("details") or first.get("message") or "invalid"
            input_name = extra.get("input_name")
            where = f"{info.get('class_type', 'node')} (node {node_id})"
            where += f", input {input_name}" if input_name and input_name not in str(what) else ""
            return _cut(f"{server} refused the job: {where}: {first.get('message', '')}: {what}", limits)
    error = answer.get("error")
    text = error.get("message") if isinstance(error, dict) else error
    return _cut(f"{server} refused the job: {text or 'no reason given'}", limits)


def decode_result(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Image.Image:
    """A finished picture as a clean RGB image: the server's PNG text chunks are not carried along."""
    image = open_image(data, ("PNG", "JPEG", "WEBP"), limits.image_pixels, "picture")
    clean = image.convert("RGB")
    clean.info = {}
    return clean
