"""Settings hidden in the lowest bit of each pixel ("stealth" metadata; A1111's stealth_pnginfo, NovelAI).

The format, as those tools write it (implemented here from its rules):

- Bits are read column by column (x outer, y inner), from the lowest bit of the alpha channel (one
  bit a pixel) or of red, green and blue in that order (three bits a pixel).
- The first 15 bytes are the signature: ``stealth_pnginfo`` / ``stealth_pngcomp`` in the alpha
  channel, ``stealth_rgbinfo`` / ``stealth_rgbcomp`` in the colours. Bytes are most significant
  bit first.
- Then the payload's length in bits, 32-bit big-endian, then the payload: UTF-8 text, gzip-
  compressed for the ``…comp`` signatures. A1111 hides its ``parameters`` text; NovelAI a JSON
  object of its PNG chunks (``Description``, ``Comment``…).

Only lossless pixels keep these bits, so JPEG is never searched. Finding the signature means
decoding every pixel, so ``read_metadata`` looks here only when the text chunks gave nothing.
A payload is at most ``MAX_PAYLOAD_BYTES`` before and after decompression: a length claiming
more than the image holds is cut and reported, one claiming more than the limit is refused.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass, field

from PIL import Image

log = logging.getLogger(__name__)

SIGNATURES = {
    "stealth_pnginfo": ("alpha", False),
    "stealth_pngcomp": ("alpha", True),
    "stealth_rgbinfo": ("rgb", False),
    "stealth_rgbcomp": ("rgb", True),
}
SIGNATURE_BITS = 15 * 8
HEADER_BITS = SIGNATURE_BITS + 32
MAX_PAYLOAD_BYTES = 1 << 20  # a settings text is a few KiB; this is generous and still harmless
MAX_PIXELS = 40_000_000  # bigger images are not searched (decoding them all costs too much)
LOSSLESS_FORMATS = (None, "PNG", "WEBP", "TIFF", "BMP")
_LOW_BIT = bytes.maketrans(bytes(range(256)), bytes(48 + (b & 1) for b in range(256)))  # byte -> "0"/"1"


@dataclass
class HiddenText:
    signature: str
    where: str  # for the user: "the alpha channel's lowest bits (stealth_pngcomp)"
    text: str | None = None  # None: found, but could not be read (see errors)
    errors: list[str] = field(default_factory=list)


def read_hidden_text(image: Image.Image) -> HiddenText | None:
    """The hidden text of an image, or None when it has no stealth signature. Never raises."""
    if image.format not in LOSSLESS_FORMATS or image.width * image.height > MAX_PIXELS or not image.width:
        return None
    try:
        channels = ["alpha", "rgb"] if "A" in image.getbands() else ["rgb"]
        for channel in channels:
            header = _bits(image, channel, HEADER_BITS)
            if len(header) < HEADER_BITS:
                continue
            signature = _to_bytes(header[:SIGNATURE_BITS]).decode("latin-1")
            if SIGNATURES.get(signature, (None,))[0] == channel:
                return _payload(image, channel, signature, int(header[SIGNATURE_BITS:], 2))
    except (OSError, ValueError, MemoryError, Image.DecompressionBombError) as exc:
        log.debug("searching for hidden metadata failed", exc_info=True)
        return HiddenText("", "", None, [f"the pixels could not be read to look for hidden settings ({exc})"])
    return None


def _bits(image: Image.Image, channel: str, count: int) -> str:
    """The first ``count`` low bits in the tools' order, as a "0101…" string (fewer in a small image)."""
    per_pixel = 1 if channel == "alpha" else 3
    columns = min(image.width, -(-count // (image.height * per_pixel)))
    part = image.crop((0, 0, columns, image.height))
    part = part.getchannel("A") if channel == "alpha" else part.convert("RGB")
    raw = part.transpose(Image.Transpose.TRANSPOSE).tobytes()  # column-major now
    return raw[:count].translate(_LOW_BIT).decode("ascii")


def _to_bytes(bits: str) -> bytes:
    bits = bits[: len(bits) // 8 * 8]
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _payload(image: Image.Image, channel: str, signature: str, length: int) -> HiddenText:
    compressed = SIGNATURES[signature][1]
    where = (
        f"the {'alpha channel' if channel == 'alpha' else 'red, green and blue'}'s lowest bits ({signature})"
    )
    found = HiddenText(signature, where)
    per_pixel = 1 if channel == "alpha" else 3
    room = image.width * image.height * per_pixel - HEADER_BITS
    if length > MAX_PAYLOAD_BYTES * 8:
        found.errors.append(
            f"the hidden settings claim {length // 8:,} bytes, more than any settings text "
            f"({MAX_PAYLOAD_BYTES:,} bytes at most); they were not read"
        )
        return found
    if length > room:
        found.errors.append(
            f"the hidden settings claim {length // 8:,} bytes, but the image holds only "
            f"{max(room, 0) // 8:,}; what is there was read"
        )
        length = room
    data = _to_bytes(_bits(image, channel, HEADER_BITS + length)[HEADER_BITS:])
    if compressed:
        data = _gunzip(data, found)
        if data is None:
            return found
    try:
        found.text = data.decode("utf-8")
    except UnicodeDecodeError:
        found.text = data.decode("utf-8", errors="replace")
        found.errors.append(
            "the hidden settings are not all UTF-8 text; the bytes that are not were replaced by �"
        )
    return found


def _gunzip(data: bytes, found: HiddenText) -> bytes | None:
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
    try:
        out = inflater.decompress(data, MAX_PAYLOAD_BYTES + 1)
    except zlib.error as exc:
        found.errors.append(f"the hidden settings could not be decompressed ({exc})")
        return None
    if len(out) > MAX_PAYLOAD_BYTES:
        found.errors.append(
            f"the hidden settings decompress to more than {MAX_PAYLOAD_BYTES:,} bytes; they were not read"
        )
        return None
    if not inflater.eof:
        found.errors.append("the hidden settings are cut short; what could be decompressed was read")
    return out


def as_chunks(text: str) -> dict[str, str]:
    """The hidden text as the chunks it stands for: NovelAI hides a JSON object of chunks, A1111 its text."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and ("Comment" in data or data.get("Software") == "NovelAI"):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return {"parameters": text}
