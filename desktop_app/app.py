"""Entry point: parse the command line, then open the window or run a subcommand.

With no subcommand the GUI starts. Nothing heavy is imported before it is needed: the window
appears before torch is loaded.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys

from desktop_app import __version__


def setup_logging(verbose: bool = False) -> None:
    from desktop_app import paths

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        handler = logging.handlers.RotatingFileHandler(paths.log_dir() / "diffuse-studio.log", maxBytes=2_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root.addHandler(handler)


def build_parser() -> argparse.ArgumentParser:
    from desktop_app import cli

    parser = argparse.ArgumentParser(prog="diffuse-studio", description="Make images with latent diffusion models on your own machine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("--install-desktop-entry", action="store_true", help="add Diffuse Studio to the desktop menu (Linux)")
    parser.add_argument("--uninstall-desktop-entry", action="store_true", help="remove it from the desktop menu (Linux)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gen = sub.add_parser("generate", help="make images without the window")
    cli.add_generate_arguments(gen)
    sub.add_parser("models", help="list the models found")
    sub.add_parser("schedulers", help="list the schedulers")
    bench = sub.add_parser("bench", help="measure speed against plain diffusers")
    from desktop_app import bench as bench_module

    bench_module.add_arguments(bench)
    gallery = sub.add_parser("gallery", help="manage the image index")
    try:
        from desktop_app.gallery import cli as gallery_cli

        gallery_cli.add_arguments(gallery)
    except ImportError:  # pragma: no cover - the gallery CLI is optional during development
        pass
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        from desktop_app import desktop_entry

        return desktop_entry.run(install=args.install_desktop_entry)
    if args.command is None:
        from desktop_app.gui.main import run_gui

        return run_gui()
    from desktop_app import cli

    handlers = {
        "generate": cli.run_generate,
        "models": cli.run_models,
        "schedulers": cli.run_schedulers,
    }
    if args.command in handlers:
        return handlers[args.command](args)
    if args.command == "bench":
        from desktop_app import bench as bench_module

        return bench_module.run(args)
    if args.command == "gallery":
        from desktop_app.gallery import cli as gallery_cli

        return gallery_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
