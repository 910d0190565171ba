"""Opening the window: the composition root that makes the backend and the gallery library.

``diffuse-studio`` with no subcommand lands here. The window is given a backend (this machine's
engine today) and a ``Library`` over the gallery index; it never imports an implementation.
Settings changes that concern the backend (its model folders, its default device) come back to
``configure`` here. ``--screenshot`` and ``--quit-after-show`` are for the project's own scripts
and benchmarks.
"""

from __future__ import annotations

import argparse
import logging
import time

STARTED = time.perf_counter()
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from desktop_app.core.arguments import whole
    from desktop_app.core.recipe import MAX_BATCH, MAX_STEPS

    p.add_argument("--models-dir", action="append", default=[], metavar="PATH", help="an extra model folder for this run")
    p.add_argument("--theme", choices=["system", "light", "dark"], help="this run's theme (the setting is kept)")
    hidden = argparse.SUPPRESS
    p.add_argument("--screenshot", metavar="PATH", help=hidden)  # generate once, save a picture of the window, quit
    p.add_argument("--prompt", dest="window_prompt", default="a big yellow star in the top right corner", help=hidden)
    p.add_argument("--model", dest="window_model", default=None, help=hidden)
    p.add_argument("--steps", dest="window_steps", type=whole(1, MAX_STEPS), default=None, help=hidden)
    p.add_argument("--batch", dest="window_batch", type=whole(1, MAX_BATCH), default=None, help=hidden)
    p.add_argument("--tab", choices=["create", "gallery"], default="create", help=hidden)
    p.add_argument("--at-step", type=whole(0, MAX_STEPS), default=0, help=hidden)
    p.add_argument("--quit-after-show", action="store_true", help=hidden)  # print the start-up time and quit


def make_backend(settings):
    """This machine's engine, set up from the settings (torch is imported later, on its thread), and
    the ComfyUI servers listed in the settings beside it, in one queue (connecting in the background)."""
    from desktop_app.backend.local import LocalBackend
    from desktop_app.gui.window import run_options

    local = LocalBackend(settings.extra_model_dirs, defaults=run_options(settings), leave_a_core=True,
                         app_roots=settings.app_roots)
    if not settings.comfyui_servers:
        return local
    from desktop_app.backend.remote.comfyui import ComfyUIBackend
    from desktop_app.backend.remote.comfyui.client import normalize_url
    from desktop_app.backend.remote.comfyui.tokens import load_token
    from desktop_app.backend.router import BackendRouter

    urls = []
    for url in settings.comfyui_servers:
        try:
            urls.append(normalize_url(url))
        except ValueError as exc:  # a bad entry in the settings: skipped, and said in the log
            log.info("ignoring the server %r from the settings: %s", url, exc)
    if not urls:
        return local
    tokens = {u: t for u in urls if (t := load_token(u))}
    return BackendRouter({"local": local, "comfyui": ComfyUIBackend(urls, tokens)})


def make_library(settings):
    """The gallery library over the index; without an index (it cannot be opened) images are still saved."""
    from desktop_app.core.paths import FolderError
    from desktop_app.gallery.library import Library
    from desktop_app.gallery.store import open_default_store

    try:
        store = open_default_store([settings.output_path])
    except FolderError:
        raise  # the app's own folder cannot be made: said in a dialog before the window would open
    except Exception as exc:  # a busy or unusable index must not keep the window from opening
        log.error("the gallery index could not be opened: %s", exc, exc_info=True)
        store = None
    return Library(settings.output_path, store)


def configure(backend):
    """What the window calls with new settings: this computer's model folders and default device.
    (Servers added or removed in the settings are connected at the next start.)"""
    from desktop_app.gui.window import run_options

    local = getattr(backend, "backends", {}).get("local", backend)

    def apply(settings) -> None:
        local.defaults = run_options(settings)
        local.set_model_paths(settings.extra_model_dirs, settings.app_roots)

    return apply


def run_window(args: argparse.Namespace) -> int:
    """Open the window; a folder the app cannot make is said in a dialog (the launcher has no
    console) and gives exit status 2."""
    from desktop_app.core.paths import FolderError
    from desktop_app.core.settings import Settings
    from desktop_app.gui.main import run_gui, show_startup_error

    try:
        settings = Settings.load()
        for folder in args.models_dir:
            if folder not in settings.extra_model_dirs:
                settings.extra_model_dirs.append(folder)
        backend = make_backend(settings)
        library = make_library(settings)
    except FolderError as exc:
        log.error("the window cannot start: %s", exc.strerror)
        show_startup_error(exc.strerror)
        return 2
    screenshot = None
    if args.screenshot:
        screenshot = argparse.Namespace(screenshot=args.screenshot, prompt=args.window_prompt, model=args.window_model,
                                        steps=args.window_steps, batch=args.window_batch, tab=args.tab, at_step=args.at_step)
    try:
        return run_gui(settings, backend, library, configure_backend=configure(backend), theme_override=args.theme,
                       quit_after_show=args.quit_after_show, screenshot=screenshot, started=STARTED)
    finally:
        if library.store is not None:
            library.store.close()
