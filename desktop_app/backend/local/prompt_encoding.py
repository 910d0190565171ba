"""Weighted prompts of any length, encoded in 75-token chunks the way AUTOMATIC1111 does by default.

The rules (A1111's "Original" emphasis, stated here and tested; its code is not used):

1. The prompt is parsed (``desktop_app.core.prompt_syntax``) into weighted fragments; each fragment is
   tokenized on its own, without BOS/EOS, and its tokens carry its weight.
2. Tokens fill chunks of 75. BREAK ends the current chunk (an empty one too); a chunk is closed when
   a token arrives that no longer fits. At that moment, if the chunk's last comma is among its last
   20 tokens and the arriving token is not a comma, the tokens after that comma move to the new
   chunk, so a phrase is not cut in two. A prompt ending in BREAK adds no empty chunk; an empty
   prompt is one empty chunk.
3. Each chunk is framed as BOS + its tokens + EOS + padding to 77 (pad: the tokenizer's own, ``!`` for
   SD 2.x and SDXL's second encoder), weights 1 on the frame.
4. Each chunk is encoded alone; when any weight differs from 1, its hidden states are multiplied by
   the weights and rescaled so their mean is the unweighted mean. Chunks are joined along the tokens.
5. Prompt and negative prompt get the same number of chunks: the shorter is padded with the
   encoding of an empty chunk.

SD 1.x / 2.x take the text encoder's last hidden state (after its final layer norm, as diffusers
does); SDXL takes each encoder's penultimate hidden state, joins their widths, and its pooled
embedding comes from the second encoder's first chunk. For a plain prompt of at most 75 tokens the
result is bit-identical to ``pipe.encode_prompt``: one chunk, no weighting, the same calls.
"""

from __future__ import annotations

from desktop_app.core.prompt_chunks import CHUNK, COMMA_BACKTRACK, Chunk, chunk_size, chunk_tokens  # noqa: F401
from desktop_app.core.prompt_syntax import ParsedPrompt, parse_prompt


def _comma_id(tokenizer) -> int | None:
    return tokenizer.get_vocab().get(",</w>")


def _fragment_ids(pipe, tokenizer, text: str) -> list[int]:
    if pipe is not None and hasattr(pipe, "maybe_convert_prompt"):  # textual-inversion vectors, expanded
        text = pipe.maybe_convert_prompt(text, tokenizer)
    return tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids


def prompt_chunks(tokenizer, prompt: str | ParsedPrompt, pipe=None) -> list[Chunk]:
    parsed = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    segments = [[(t, f.weight) for f in segment for t in _fragment_ids(pipe, tokenizer, f.text)]
                for segment in parsed.segments]
    return chunk_tokens(segments, _comma_id(tokenizer), chunk_size(tokenizer.model_max_length))


def count_tokens(tokenizer, text: str, pipe=None) -> tuple[int, int]:
    """(tokens, chunks) of a prompt, for the window's counter: "37/75", or "80/150" over two chunks.
    With ``pipe``, loaded embeddings count as the vectors they stand for."""
    chunks = prompt_chunks(tokenizer, text, pipe)
    return sum(len(c.tokens) for c in chunks), len(chunks)


def framed(tokenizer, chunk: Chunk) -> tuple[list[int], list[float]]:
    """Rule 3: BOS + tokens + EOS + the tokenizer's padding, 77 ids (a smaller encoder: its own
    length) and their weights."""
    pad = chunk_size(tokenizer.model_max_length) - len(chunk.tokens)
    ids = [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad
    return ids, [1.0, *chunk.weights, 1.0] + [1.0] * pad


def _pad(lists: list[list[Chunk]]) -> list[list[Chunk]]:
    longest = max(len(chunks) for chunks in lists)
    empty = Chunk((), ())
    return [chunks + [empty] * (longest - len(chunks)) for chunks in lists]


def _emphasis(hidden, weights: list[float]):
    """Rule 4: A1111's "Original" emphasis on one chunk's hidden states."""
    import torch

    if all(w == 1.0 for w in weights):
        return hidden
    original_mean = hidden.mean()
    scale = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device).reshape(1, -1, 1)
    weighted = hidden * scale
    return weighted * (original_mean / weighted.mean())


def _run(text_encoder, tokenizer, chunk: Chunk, layer: int | None, final_norm: bool):
    """(hidden states after emphasis, pooled/first output) of one chunk. ``layer`` None: the output
    after the final layer norm (SD); else ``hidden_states[layer]``, normed when ``final_norm``."""
    import torch

    ids, weights = framed(tokenizer, chunk)
    ids = torch.tensor([ids], device=text_encoder.device)
    if layer is None:
        output = text_encoder(ids)
        hidden = output[0]
    else:
        output = text_encoder(ids, output_hidden_states=True)
        hidden = output.hidden_states[layer]
        if final_norm:
            model = getattr(text_encoder, "text_model", text_encoder)
            hidden = model.final_layer_norm(hidden)
    return _emphasis(hidden, weights), output[0]


def _repeat(embeds, num_images: int):
    batch, seq, _ = embeds.shape
    return embeds.repeat(1, num_images, 1).view(batch * num_images, seq, -1)


def encode_sd(pipe, prompt: str, negative: str | None, device, num_images: int = 1, do_cfg: bool = True,
              clip_skip: int | None = None):
    """(prompt_embeds, negative_embeds or None) for SD 1.x / 2.x, shaped as ``pipe.encode_prompt``
    returns them ([num_images, 77·chunks, width]). ``clip_skip`` as diffusers counts it (1: the
    layer before the last, then the final layer norm)."""
    import torch

    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    texts = [prompt] + ([negative or ""] if do_cfg else [])
    chunk_lists = _pad([prompt_chunks(tokenizer, t, pipe) for t in texts])
    layer = None if clip_skip is None else -(clip_skip + 1)
    with torch.no_grad():
        encoded = [torch.cat([_run(encoder, tokenizer, c, layer, True)[0] for c in chunks], dim=1)
                   for chunks in chunk_lists]
    dtype = encoder.dtype
    encoded = [_repeat(e.to(dtype=dtype, device=device), num_images) for e in encoded]
    return encoded[0], (encoded[1] if do_cfg else None)


def _sdxl_encoders(pipe) -> list[tuple]:
    pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
    return [(t, e) for t, e in pairs if t is not None and e is not None]


def _encode_xl(pipe, text: str | None, chunk_count: int | None, layer: int):
    """(hidden states of all chunks with the widths joined, pooled embedding of the first chunk)."""
    import torch

    parts, pooled = [], None
    for tokenizer, encoder in _sdxl_encoders(pipe):
        chunks = prompt_chunks(tokenizer, text or "", pipe)
        chunks += [Chunk((), ())] * (chunk_count - len(chunks))
        outputs = [_run(encoder, tokenizer, c, layer, False) for c in chunks]
        if pooled is None and outputs[0][1].ndim == 2:  # the encoder with a projection: the second
            pooled = outputs[0][1]
        parts.append(torch.cat([hidden for hidden, _ in outputs], dim=1))
    return torch.cat(parts, dim=-1), pooled


def encode_sdxl(pipe, prompt: str, negative: str | None, device, num_images: int = 1, do_cfg: bool = True,
                clip_skip: int | None = None):
    """(prompt_embeds, negative_embeds, pooled, negative_pooled) for SDXL (and its refiner), shaped as
    ``pipe.encode_prompt`` returns them. As diffusers: with ``force_zeros_for_empty_prompt`` a
    negative of None is zeros (A1111 zeros an empty one: pass ``negative or None`` for that)."""
    import torch

    zero_negative = negative is None and getattr(pipe.config, "force_zeros_for_empty_prompt", False)
    texts = [prompt] + ([negative] if do_cfg and not zero_negative else [])
    counts = [len(prompt_chunks(t, s or "", pipe)) for s in texts for t, _ in _sdxl_encoders(pipe)]
    layer = -2 if clip_skip is None else -(clip_skip + 2)
    with torch.no_grad():
        embeds, pooled = _encode_xl(pipe, prompt, max(counts), layer)
        if do_cfg and zero_negative:
            negative_embeds, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        elif do_cfg:
            negative_embeds, negative_pooled = _encode_xl(pipe, negative, max(counts), layer)
    dtype = (pipe.text_encoder_2 or pipe.unet).dtype

    def finish(hidden, pool):
        return _repeat(hidden.to(dtype=dtype, device=device), num_images), pool.repeat(1, num_images).view(
            pool.shape[0] * num_images, -1)

    embeds, pooled = finish(embeds, pooled)
    if not do_cfg:
        return embeds, None, pooled, None
    negative_embeds, negative_pooled = finish(negative_embeds, negative_pooled)
    return embeds, negative_embeds, pooled, negative_pooled
