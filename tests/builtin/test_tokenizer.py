"""The grammar tokenizer: ordinary CLIPTokenizer files, one token per grammar word."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer

from desktop_app.builtin.data import grammar_words
from desktop_app.builtin.tokenizer import MAX_LENGTH, write_tokenizer
from desktop_app.builtin.train import default_out


def _check_round_trip(tokenizer: CLIPTokenizer) -> None:
    for word in grammar_words():
        ids = tokenizer(word, add_special_tokens=False).input_ids
        assert len(ids) == 1, f"{word!r} is {len(ids)} tokens"
        assert tokenizer.decode(ids).strip() == word
    sentence = "a small blue star in the top right corner on a white background"
    ids = tokenizer(sentence, padding="max_length", max_length=MAX_LENGTH).input_ids
    assert len(ids) == MAX_LENGTH
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == sentence


def test_written_tokenizer_round_trips_every_grammar_word(tmp_path):
    folder = write_tokenizer(tmp_path / "tokenizer")
    _check_round_trip(CLIPTokenizer.from_pretrained(str(folder)))


def test_shipped_tokenizer_round_trips_every_grammar_word():
    folder = default_out() / "tokenizer"
    if not folder.exists():
        pytest.skip("models/shapes has not been trained yet")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    assert tokenizer.model_max_length == MAX_LENGTH
    _check_round_trip(tokenizer)


def test_caption_ids_are_exactly_what_the_shipped_tokenizer_gives():
    """The training loop's fast path (one id per grammar word) against the real tokenizer call,
    on 3000 captions of every kind, the empty caption, and words outside the grammar."""
    import numpy as np

    from desktop_app.builtin.data import ShapesDataset, caption
    from desktop_app.builtin.train import CaptionIds

    tokenizer = CLIPTokenizer.from_pretrained(str(default_out() / "tokenizer"))
    to_ids = CaptionIds(tokenizer)
    rng = np.random.default_rng(5)
    data = ShapesDataset(3)
    texts = ["" if k % 10 == 0 else caption(data.scene(k), rng) for k in range(3000)]

    def real(batch):
        return tokenizer(batch, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                         return_tensors="pt").input_ids

    fast = to_ids(texts)
    assert fast.dtype == real(texts).dtype and fast.equal(real(texts))
    odd = ["a red circle, on the LEFT", "a turquoise blob"]  # punctuation, capitals, unknown words
    assert to_ids(odd).equal(real(odd))
