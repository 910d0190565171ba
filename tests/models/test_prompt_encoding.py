"""Weighted, chunked prompt encoding: bit-identical to diffusers for plain prompts, A1111's chunk and
emphasis rules otherwise, on tiny SD 1.x, SD 2.x, SDXL and refiner pipelines."""

from __future__ import annotations

import pytest
import torch

from desktop_app.backend.local import prompt_encoding as pe
from desktop_app.backend.local.prompt_encoding import Chunk, chunk_tokens

COMMA = 267
PLAIN = "a photo of a red circle, highly detailed"


# ---- chunking rules, on token ids ------------------------------------------------------------------------


def run(n: int, start: int = 1000, weight: float = 1.0) -> list[tuple[int, float]]:
    return [(start + k, weight) for k in range(n)]


def lengths(chunks: list[Chunk]) -> list[int]:
    return [len(c.tokens) for c in chunks]


def test_chunks_of_75():
    assert lengths(chunk_tokens([run(0)], COMMA)) == [0]
    assert lengths(chunk_tokens([run(75)], COMMA)) == [75]
    assert lengths(chunk_tokens([run(76)], COMMA)) == [75, 1]
    assert lengths(chunk_tokens([run(200)], COMMA)) == [75, 75, 50]


def test_break_ends_a_chunk_but_a_trailing_break_adds_none():
    assert lengths(chunk_tokens([run(3), run(2)], COMMA)) == [3, 2]
    assert lengths(chunk_tokens([run(0), run(2)], COMMA)) == [0, 2]
    assert lengths(chunk_tokens([run(3), run(0)], COMMA)) == [3]
    assert lengths(chunk_tokens([run(3), run(0), run(2)], COMMA)) == [3, 0, 2]
    assert lengths(chunk_tokens([run(75), run(2)], COMMA)) == [75, 2]


def test_a_full_chunk_moves_back_to_a_comma_among_its_last_20_tokens():
    tokens = run(60) + [(COMMA, 1.0)] + run(30, 2000)  # comma at index 60: 75 - 60 = 15 ≤ 20
    chunks = chunk_tokens([tokens], COMMA)
    assert lengths(chunks) == [61, 30]
    assert chunks[0].tokens[-1] == COMMA and chunks[1].tokens[0] == 2000


def test_no_move_when_the_comma_is_further_back_or_the_next_token_is_a_comma():
    far = run(50) + [(COMMA, 1.0)] + run(40, 2000)  # comma at 50: 25 > 20
    assert lengths(chunk_tokens([far], COMMA)) == [75, 16]
    edge = run(55) + [(COMMA, 1.0)] + run(30, 2000)  # comma at 55: exactly 20 back
    assert lengths(chunk_tokens([edge], COMMA)) == [56, 30]
    comma_next = run(70) + [(COMMA, 1.0)] + run(4, 2000) + [(COMMA, 1.0)] + run(3, 3000)
    assert lengths(chunk_tokens([comma_next], COMMA)) == [75, 4]


def test_weights_travel_with_their_tokens():
    chunks = chunk_tokens([run(74, weight=1.0) + run(3, 5000, weight=1.5)], COMMA)
    assert chunks[0].weights[-1] == 1.5 and chunks[1].weights == (1.5, 1.5)


def test_token_counter(models):
    tokenizer = models.pipeline("tiny-sd").tokenizer
    assert pe.count_tokens(tokenizer, "a photo of a cat") == (5, 1)
    assert pe.count_tokens(tokenizer, "(a photo:1.2) of [a] cat <lora:x:0.5>") == (5, 1)
    assert pe.count_tokens(tokenizer, "cat " * 80) == (80, 2)
    assert pe.count_tokens(tokenizer, "a BREAK cat") == (2, 2)
    assert pe.count_tokens(tokenizer, "") == (0, 1)


def test_framing_pads_with_the_tokenizers_pad(models):
    sd1 = models.pipeline("tiny-sd").tokenizer
    sd2 = models.pipeline("tiny-sd2").tokenizer
    chunk = Chunk((320, 2368), (1.0, 1.3))
    ids, weights = pe.framed(sd1, chunk)
    assert ids[:4] == [49406, 320, 2368, 49407] and set(ids[4:]) == {49407} and len(ids) == 77
    assert weights[:4] == [1.0, 1.0, 1.3, 1.0] and len(weights) == 77
    assert pe.framed(sd2, chunk)[0][4:] == [0] * 73


# ---- bit identity with diffusers ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["tiny-sd", "tiny-sd2"])
@pytest.mark.parametrize("negative", [None, "", "blurry, low quality"])
def test_sd_plain_prompts_are_bit_identical_to_encode_prompt(models, arch, negative):
    pipe = models.pipeline(arch)
    expected = pipe.encode_prompt(PLAIN, "cpu", 2, True, negative_prompt=negative)
    got = pe.encode_sd(pipe, PLAIN, negative, "cpu", num_images=2, do_cfg=True)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    alone = pe.encode_sd(pipe, PLAIN, negative, "cpu", num_images=1, do_cfg=False)
    assert alone[1] is None and torch.equal(alone[0], expected[0][:1])


@pytest.mark.parametrize("arch", ["tiny-sdxl-mixed", "tiny-sdxl-refiner"])
@pytest.mark.parametrize("negative", [None, "", "blurry, low quality"])
def test_sdxl_plain_prompts_are_bit_identical_to_encode_prompt(models, arch, negative):
    pipe = models.pipeline(arch)
    expected = pipe.encode_prompt(PLAIN, device="cpu", num_images_per_prompt=2, do_classifier_free_guidance=True,
                                  negative_prompt=negative)
    got = pe.encode_sdxl(pipe, PLAIN, negative, "cpu", num_images=2, do_cfg=True)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape and torch.equal(a, b)


def test_sdxl_widths_join_and_zero_negative(models):
    pipe = models.pipeline("tiny-sdxl-mixed")
    embeds, negative, pooled, negative_pooled = pe.encode_sdxl(pipe, PLAIN, None, "cpu")
    assert embeds.shape == (1, 77, 32 + 64) and pooled.shape == (1, 64)
    assert not negative.any() and not negative_pooled.any()


def test_clip_skip_takes_an_earlier_layer_and_its_final_norm(models):
    """diffusers 0.42.1's own clip_skip fails on transformers 5 (CLIPTextModel lost ``text_model``),
    so the reference is computed here."""
    pipe = models.pipeline("tiny-sd")
    skipped = pe.encode_sd(pipe, PLAIN, None, "cpu", do_cfg=False, clip_skip=1)[0]
    ids = pipe.tokenizer(PLAIN, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.equal(skipped, expected)


# ---- weights, chunks, padding -----------------------------------------------------------------------------


def _plain_chunk(pipe, text: str):
    return pe.encode_sd(pipe, text, None, "cpu", do_cfg=False)[0]


@pytest.mark.parametrize("arch", ["tiny-sd", "tiny-sd2"])
def test_emphasis_multiplies_and_restores_the_mean(models, arch):
    pipe = models.pipeline(arch)
    z = _plain_chunk(pipe, "a red cat")
    weights = torch.ones(77)
    weights[2] = 1.5  # BOS, "a", "red", "cat", EOS…
    weights[3] = 1 / 1.1
    expected = z * weights[None, :, None]
    expected = expected * (z.mean() / expected.mean())
    got = pe.encode_sd(pipe, "a (red:1.5) [cat]", None, "cpu", do_cfg=False)[0]
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    assert torch.allclose(got.mean(), z.mean(), atol=1e-6)


def test_sdxl_emphasis_is_applied_per_encoder(models):
    pipe = models.pipeline("tiny-sdxl-mixed")
    z, _, pooled, _ = pe.encode_sdxl(pipe, "a red cat", None, "cpu", do_cfg=False)
    got, _, got_pooled, _ = pe.encode_sdxl(pipe, "a (red:1.5) cat", None, "cpu", do_cfg=False)
    weights = torch.ones(77)
    weights[2] = 1.5
    for part in (slice(0, 32), slice(32, 96)):
        expected = z[..., part] * weights[None, :, None]
        expected = expected * (z[..., part].mean() / expected.mean())
        assert torch.allclose(got[..., part], expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(got_pooled, pooled)  # the pooled embedding is not weighted


def test_long_prompts_are_chunked_and_the_negative_padded(models):
    pipe = models.pipeline("tiny-sd")
    long = ", ".join(["red circle"] * 40)  # 119 tokens
    prompt_embeds, negative = pe.encode_sd(pipe, long, "blurry", "cpu")
    assert prompt_embeds.shape == negative.shape == (1, 154, 32)
    empty = _plain_chunk(pipe, "")
    assert torch.equal(negative[:, 77:], empty)
    assert torch.equal(negative[:, :77], _plain_chunk(pipe, "blurry"))
    short, long_negative = pe.encode_sd(pipe, "blurry", long, "cpu")
    assert short.shape == long_negative.shape == (1, 154, 32) and torch.equal(short[:, 77:], empty)


def test_break_starts_a_new_chunk(models):
    pipe = models.pipeline("tiny-sd")
    got = _plain_chunk(pipe, "a red cat BREAK a blue dog")
    assert got.shape == (1, 154, 32)
    assert torch.equal(got[:, :77], _plain_chunk(pipe, "a red cat"))
    assert torch.equal(got[:, 77:], _plain_chunk(pipe, "a blue dog"))


def test_sdxl_long_prompt_pooled_from_the_first_chunk(models):
    pipe = models.pipeline("tiny-sdxl-mixed")
    embeds, negative, pooled, negative_pooled = pe.encode_sdxl(pipe, "a red cat BREAK a blue dog", "", "cpu")
    assert embeds.shape == negative.shape == (1, 154, 96)
    first = pe.encode_sdxl(pipe, "a red cat", "", "cpu")
    assert torch.equal(pooled, first[2]) and torch.equal(embeds[:, :77], first[0])
    assert torch.equal(negative[:, 77:], first[1])  # the empty negative, repeated
