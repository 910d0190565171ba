"""The shipped CLIP tokenizer: 49,408 ids in CLIP's order, the reference ids, both pad tokens, and
the check that catches the tokenizers diffusers and transformers make silently from missing files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from desktop_app.backend.local import checkpoints as ck
from desktop_app.core import paths
from desktop_app.core.models import ModelLoadError

FOLDER = paths.resource_path("tokenizers", "clip")


def script():
    location = Path(__file__).resolve().parents[2] / "scripts" / "make_clip_tokenizer.py"
    spec = importlib.util.spec_from_file_location("make_clip_tokenizer", location)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_have_clips_layout_and_the_licence():
    vocab = json.loads((FOLDER / "vocab.json").read_text(encoding="utf-8"))
    merges = (FOLDER / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == 49408 and sorted(vocab.values()) == list(range(49408))
    assert (vocab["!"], vocab["a"], vocab["a</w>"], vocab["<|startoftext|>"], vocab["<|endoftext|>"]) == (
        0, 64, 320, 49406, 49407)
    assert merges[0] == "#version: 0.2" and len(merges) == 1 + 48894
    licence = (FOLDER / "LICENSE").read_text(encoding="utf-8")
    assert "open-clip-torch 3.3.0" in licence and "Permission is hereby granted" in licence


def test_the_script_builds_the_vocabulary_by_its_stated_rule():
    module = script()
    symbols = module.byte_symbols()
    assert len(set(symbols)) == 256 and symbols[0] == "!" and symbols[-1] == chr(256 + 67)
    merges = (FOLDER / "merges.txt").read_text(encoding="utf-8")
    vocab, kept = module.build(merges)
    assert vocab == json.loads((FOLDER / "vocab.json").read_text(encoding="utf-8")) and len(kept) == 48894


@pytest.mark.parametrize("pad, pad_id", [(ck.PAD_EOS, 49407), (ck.PAD_BANG, 0)])
def test_shipped_tokenizer_passes_the_reference_check(pad, pad_id, tmp_path):
    tokenizer = ck.shipped_tokenizer(pad)
    ck.check_tokenizer(tokenizer, tmp_path / "m.safetensors")
    assert tokenizer.pad_token_id == pad_id and tokenizer.model_max_length == 77


def test_a_silently_broken_tokenizer_is_caught(tmp_path):
    from transformers import CLIPTokenizer

    broken = CLIPTokenizer(vocab_file=str(FOLDER / "vocab.json"), merges_file=str(FOLDER / "merges.txt"))
    with pytest.raises(ModelLoadError) as caught:
        ck.check_tokenizer(broken, tmp_path / "m.safetensors")
    assert str(caught.value) == (f"{tmp_path / 'm.safetensors'}: loaded with a tokenizer of {len(broken)} entries "
                                 "instead of 49408; the tokenizer files are missing or damaged")
