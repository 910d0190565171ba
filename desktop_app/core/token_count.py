"""The prompt's token count for the window: "37/75", or "80/150" when it runs over two chunks.

Counted as the encoder will split it (``core.prompt_syntax`` for emphasis, BREAK and tags,
``core.prompt_chunks`` for the chunks), with the model's own tokenizer files read by the
``tokenizers`` library: torch-free and fast enough to run on every key press. A model folder's
``tokenizer/tokenizer.json`` is used as it is; plain CLIP files (``vocab.json`` + ``merges.txt``:
a folder's own, or the CLIP tokenizer the app ships for single-file checkpoints) are read with
CLIP's rules: NFC, runs of white space as one space, lower case, words split into letters, single
digits and other symbols, then byte-level BPE with ``</w>`` ending each word.

An embedding's name counts as the tokens of its text (the encoder counts the vectors it stands for,
which only the loaded model knows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from desktop_app.core import paths
from desktop_app.core.models import ModelInfo
from desktop_app.core.prompt_chunks import CLIP_POSITIONS, chunk_size, chunk_tokens
from desktop_app.core.prompt_syntax import parse_prompt

CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    chunks: int
    chunk_size: int

    @property
    def capacity(self) -> int:
        return self.chunks * self.chunk_size

    def label(self) -> str:
        """ "37/75"; over more than one chunk "80/150" (the encoder takes it all, chunk by chunk)."""
        return f"{self.tokens}/{self.capacity}"


@dataclass(frozen=True)
class _Counter:
    tokenizer: object  # a tokenizers.Tokenizer
    size: int
    comma: int | None


def _tokenizer_folder(model: ModelInfo | None) -> Path:
    if model is not None and Path(model.path).is_dir():
        folder = Path(model.path) / ("tokenizer" if (Path(model.path) / "tokenizer").is_dir() else "tokenizer_2")
        if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
            return folder
    return paths.resource_path("tokenizers", "clip")


def _clip_bpe(folder: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
                                     fuse_unk=False, unk_token="<|endoftext|>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@lru_cache(maxsize=8)
def _counter(folder: Path) -> _Counter:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json")) if (folder / "tokenizer.json").is_file() \
        else _clip_bpe(folder)
    tokenizer.no_padding()  # a tokenizer.json may pad every text to the encoder's length
    tokenizer.no_truncation()
    length = CLIP_POSITIONS
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            length = int(json.loads(config.read_text(encoding="utf-8")).get("model_max_length", CLIP_POSITIONS))
        except (OSError, ValueError, TypeError):
            pass
    return _Counter(tokenizer, chunk_size(length), tokenizer.token_to_id(",</w>"))


def count_prompt_tokens(text: str, model: ModelInfo | None = None) -> TokenCount:
    """How many tokens ``text`` takes on ``model`` (None: a Stable Diffusion CLIP tokenizer) and in how
    many chunks. Never raises for any text; a model without readable tokenizer files counts with CLIP's."""
    try:
        counter = _counter(_tokenizer_folder(model))
    except Exception:  # a damaged tokenizer file (the library raises its own kinds): CLIP's counts are close
        counter = _counter(paths.resource_path("tokenizers", "clip"))
    parsed = parse_prompt(text)
    segments = []
    for segment in parsed.segments:
        ids: list[tuple[int, float]] = []
        for fragment in segment:
            encoded = counter.tokenizer.encode(fragment.text, add_special_tokens=False)
            ids.extend((token, fragment.weight) for token in encoded.ids)
        segments.append(ids)
    chunks = chunk_tokens(segments, counter.comma, counter.size)
    return TokenCount(sum(len(c.tokens) for c in chunks), len(chunks), counter.size)
