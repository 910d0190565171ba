"""``diffuse-studio gallery``: rebuild the index, search it, see what it holds, from a terminal.

Everything printed from the images (prompts, file names) goes through ``cli.output``, so a file
cannot send escape sequences to the terminal. An index that is busy or on a full disk is reported
on one line (exit status 1) and left as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop_app.cli import output
from desktop_app.core.arguments import whole
from desktop_app.core.paths import FolderError
from desktop_app.gallery.store import Query, open_default_store

MAX_LIMIT = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reindex", action="store_true", help="rebuild the gallery index from the image files")
    parser.add_argument("--folder", action="append", default=[], type=Path, metavar="PATH",
                        help="also index the images in this folder (remembered; may be given more than once)")
    parser.add_argument("--search", metavar="WORDS", help="list the images whose prompt, negative prompt or model match")
    parser.add_argument("--model", default="", help="with --search: only this model id")
    parser.add_argument("--limit", type=whole(1, MAX_LIMIT), default=20, help="with --search: at most this many (default 20)")


def _progress(done: int, total: int) -> None:
    print(f"\r  read {done}/{total} images", end="", file=sys.stderr, flush=True)
    if done == total:
        print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        store = open_default_store(getattr(args, "folder", []))
    except FolderError:
        raise  # the app's own folder: one line and status 2, like every command
    except OSError as exc:  # IndexUnavailable: busy, full, read-only
        output.error(exc.strerror or exc)
        return 1
    with store:
        try:
            return _run(store, args)
        except OSError as exc:  # IndexUnavailable: busy, full; the index was left as it was
            output.error(exc.strerror or exc)
            return 1


def _run(store, args: argparse.Namespace) -> int:
    if store.recovered:
        output.tell(f"note: {store.recovered}")
    if args.reindex:
        report = store.rebuild(_progress)
        action = "rebuilt"
    else:
        report = store.sync(_progress)
        action = "updated"
    output.say(f"index {action} in {report.seconds:.2f} s: {store.count()} images "
               f"({report.added} added, {report.updated} changed, {report.removed} gone) in "
               f"{', '.join(str(r) for r in store.roots) or 'no folders'}")
    for path in report.unreadable[:10]:
        output.tell(f"  no generation settings in {path}")
    if args.search is not None:
        for image_id, path in store.query(Query(text=args.search, model_id=args.model), limit=args.limit):
            record = store.record(image_id)
            prompt = record.prompt.replace("\n", " ") if record else ""
            output.say(path, record.seed if record else "", prompt[:80], sep="\t")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffuse-studio gallery")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
