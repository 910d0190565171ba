"""``diffuse-studio``: parse the command line, then open the window or run a subcommand.

With no subcommand the window opens. Nothing heavy is imported before it is needed: the window
appears before torch is loaded.
"""

from __future__ import annotations

import argparse
import sys

from desktop_app import __version__


def build_parser() -> argparse.ArgumentParser:
    from desktop_app.cli import commands, gallery, servers, window

    # allow_abbrev=False: the top level must not read a subcommand's option (bench --mode) as an
    # abbreviation of its own (--models-dir)
    parser = argparse.ArgumentParser(prog="diffuse-studio", description="Make images with latent diffusion models on your own machine.",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("--install-desktop-entry", action="store_true", help="add Diffuse Studio to the desktop menu (Linux)")
    parser.add_argument("--uninstall-desktop-entry", action="store_true", help="remove it from the desktop menu (Linux)")
    window.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_generate_arguments(sub.add_parser("generate", help="make images without the window"))
    commands.add_models_arguments(sub.add_parser("models", help="list the models, LoRAs, VAEs and embeddings found"))
    sub.add_parser("schedulers", help="list the schedulers")
    bench = sub.add_parser("bench", help="measure speed against plain diffusers")
    from desktop_app.benchmarks import cli as bench_cli

    bench_cli.add_arguments(bench)
    gallery.add_arguments(sub.add_parser("gallery", help="manage the image index"))
    servers.add_arguments(sub.add_parser("servers", help="the ComfyUI servers the window joins to its queue"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; Ctrl+C anywhere exits with 130 and a folder the app cannot make with 2,
    each with one line, never a traceback."""
    from desktop_app.cli.logs import setup_logging
    from desktop_app.cli.output import error, tell
    from desktop_app.core.paths import FolderError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        setup_logging(args.verbose)
        return _dispatch(args)
    except KeyboardInterrupt:
        tell("interrupted", start="\n")
        return 130
    except FolderError as exc:
        error(exc.strerror)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        from desktop_app.cli import desktop_entry

        return desktop_entry.run(install=args.install_desktop_entry)
    if args.command is None:
        from desktop_app.cli.window import run_window

        return run_window(args)
    if args.command == "bench":
        from desktop_app.benchmarks import cli as bench_cli

        return bench_cli.run(args)
    if args.command == "gallery":
        from desktop_app.cli import gallery

        return gallery.run(args)
    if args.command == "servers":
        from desktop_app.cli import servers

        return servers.run(args)
    from desktop_app.cli import commands

    handlers = {"generate": commands.run_generate, "models": commands.run_models, "schedulers": commands.run_schedulers}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
