"""How much a ComfyUI server may send before the client stops reading: a hostile or broken server
must not exhaust this machine's memory. Every number is a ceiling far above what a real server sends.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    ws_message_bytes: int = 16 * MIB  # one websocket message (a 512-px JPEG preview is ~40-80 KB)
    preview_header_bytes: int = 64 * KIB  # the JSON header of a type-4 preview frame
    preview_pixels: int = 2048 * 2048  # ComfyUI scales previews to 512 px by default
    json_bytes: int = 32 * MIB  # any HTTP JSON answer (/history, /object_info/<class>, /queue…)
    image_bytes: int = 256 * MIB  # one picture from /view
    image_pixels: int = 8192 * 8192  # 64 Mpx: past the largest size a recipe can ask for (SDXL ×4 = 4096²)
    images_per_prompt: int = 64  # a one-picture graph answers with one
    message_chars: int = 600  # a server's error text shown to the user is cut here


DEFAULT_LIMITS = Limits()
