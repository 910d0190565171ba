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
