"""Rule 2 of the prompt encoding (``backend.local.prompt_encoding``): weighted tokens into chunks.

Torch-free, so the window's token counter and the encoder chunk a prompt the same way. Tokens fill
chunks of 75 (a CLIP text encoder's 77 positions less its begin and end tokens; a smaller encoder's
own length less 2). BREAK ends the current chunk (an empty one too); a chunk is closed when a token
arrives that no longer fits. At that moment, if the chunk's last comma is among its last 20 tokens
and the arriving token is not a comma, the tokens after that comma move to the new chunk, so a
phrase is not cut in two. A prompt ending in BREAK adds no empty chunk; an empty prompt is one
empty chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CHUNK = 75
COMMA_BACKTRACK = 20
CLIP_POSITIONS = 77


@dataclass(frozen=True)
class Chunk:
    tokens: tuple[int, ...]
    weights: tuple[float, ...]


def chunk_size(model_max_length: int | None) -> int:
    """Tokens per chunk for a text encoder of ``model_max_length`` positions (at most CLIP's 77)."""
    if not model_max_length or model_max_length > CLIP_POSITIONS:
        return CHUNK
    return model_max_length - 2


def chunk_tokens(segments: Sequence[Sequence[tuple[int, float]]], comma: int | None, size: int = CHUNK) -> list[Chunk]:
    """(token, weight) runs, one per BREAK-separated segment, into chunks of at most ``size``."""
    chunks: list[Chunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        chunks.append(Chunk(tuple(tokens), tuple(weights)))
        tokens, weights, last_comma = [], [], -1

    for number, segment in enumerate(segments):
        if number:
            close()
        for token, weight in segment:
            if len(tokens) == size:
                if token != comma and last_comma != -1 and size - last_comma <= COMMA_BACKTRACK:
                    keep = last_comma + 1
                    moved = tokens[keep:], weights[keep:]
                    tokens, weights = tokens[:keep], weights[:keep]
                    close()
                    tokens, weights = list(moved[0]), list(moved[1])
                else:
                    close()
            if token == comma:
                last_comma = len(tokens)
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        close()
    return chunks
