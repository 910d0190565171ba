"""Counting a prompt's tokens as the model's text encoder will see them, while the user types.

The count comes from the model folder's own tokenizer files, read with the ``tokenizers`` library
(Rust, torch-free, microseconds per prompt): the window may not import transformers, and asking
the backend would put every keystroke in the queue behind a running job. A folder with a
``tokenizer.json`` is read as it is; one with CLIP's ``vocab.json`` + ``merges.txt`` (what
Stable Diffusion folders carry) gets CLIP's text pipeline: NFC, whitespace squeezed, lower case,
CLIP's word split, byte-level BPE with ``</w>`` ending each word. Where a model has no tokenizer
here (a server's model, a single checkpoint file), there is no count rather than a wrong one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core.models import ModelInfo

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 77  # CLIP's context: 75 tokens and the begin/end tokens
SPECIAL_TOKENS = 2
# CLIP's word split: contractions, runs of letters, single digits, runs of anything else
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass(frozen=True)
class TokenCount:
    used: int
    limit: int

    @property
    def over(self) -> bool:
        return self.used > self.limit


class PromptTokenizer:
    """The tokens of a prompt for one model folder."""

    def __init__(self, tokenizer, limit: int):
        self._tokenizer = tokenizer
        self.limit = limit

    def count(self, text: str) -> TokenCount:
        used = len(self._tokenizer.encode(text, add_special_tokens=False).ids) if text.strip() else 0
        return TokenCount(used, self.limit)


def load_prompt_tokenizer(model_folder: Path) -> PromptTokenizer | None:
    """The tokenizer in ``model_folder/tokenizer``; None when there is none this can read."""
    folder = Path(model_folder) / "tokenizer"
    if not folder.is_dir():
        return None
    try:
        from tokenizers import Tokenizer

        if (folder / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            tokenizer = _clip_tokenizer(folder)
        else:
            return None
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return PromptTokenizer(tokenizer, _max_length(folder) - SPECIAL_TOKENS)
    except Exception as exc:  # an odd tokenizer folder costs the counter, never the window
        log.info("no token count for %s: %s", folder, exc)
        return None


def _max_length(folder: Path) -> int:
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        length = int(config.get("model_max_length", DEFAULT_MAX_LENGTH))
    except (OSError, ValueError, TypeError):
        return DEFAULT_MAX_LENGTH
    return length if 2 < length <= 4096 else DEFAULT_MAX_LENGTH  # "no limit" is written as 1e30


def _clip_tokenizer(folder: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    unknown = "<|endoftext|>"
    bpe = models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token=unknown,
                               continuing_subword_prefix="", end_of_word_suffix="</w>", fuse_unk=False)
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


class TokenCounter:
    """Token counts by model, each model's tokenizer read once, when its count is first asked for."""

    def __init__(self) -> None:
        self._tokenizers: dict[Path, PromptTokenizer | None] = {}

    def count(self, info: ModelInfo | None, text: str) -> TokenCount | None:
        if info is None:
            return None
        path = Path(info.path)
        if path not in self._tokenizers:
            self._tokenizers[path] = load_prompt_tokenizer(path) if path.is_dir() else None
        tokenizer = self._tokenizers[path]
        return tokenizer.count(text) if tokenizer is not None else None
