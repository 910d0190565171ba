"""A CLIP-style BPE tokenizer whose vocabulary is the Shapes grammar.

The merges are learnt with the ``tokenizers`` library's BPE trainer, CLIP's way (lower case,
byte-level alphabet, ``</w>`` marking the end of a word), until every grammar word is a single
token. The result is written as ordinary CLIPTokenizer files (vocab.json, merges.txt,
tokenizer_config.json, special_tokens_map.json), so ``CLIPTokenizer.from_pretrained`` reads it
like any Stable Diffusion tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

from desktop_app.builtin.data import grammar_words

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MAX_LENGTH = 32


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from bytes to printable characters."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges, in order, that turn each word (with ``</w>``) into one token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=EOS, end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=100_000, min_frequency=1, special_tokens=[], end_of_word_suffix="</w>", show_progress=False
    )
    tokenizer.train_from_iterator(words, trainer=trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary layout: byte characters, the same with ``</w>``, merge results, specials."""
    base = list(bytes_to_unicode().values())
    tokens = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def write_tokenizer(folder: Path, words: list[str] | None = None) -> Path:
    """Write the tokenizer files into ``folder`` and return it."""
    words = words or grammar_words()
    merges = learn_merges(words)
    vocab = build_vocab(merges)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MAX_LENGTH,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return folder
