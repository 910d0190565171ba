"""``diffuse-studio servers``: the ComfyUI servers the window joins to its queue, and their tokens.

The addresses live in the settings file (``comfyui_servers``), the tokens of servers behind a
proxy in the system keyring, never in a file. The window reads both when it starts.
"""

from __future__ import annotations

import argparse

from desktop_app.cli import output


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="servers_action", metavar="ACTION")
    actions.add_parser("list", help="the servers the window connects to (the default)")
    add = actions.add_parser("add", help="add a server (or change its token)")
    add.add_argument("url", help="its address: gpu-box, 192.168.1.20:8188, https://host/comfy")
    add.add_argument("--token", default=None, help="a bearer token for a server behind a proxy, kept in the system keyring")
    remove = actions.add_parser("remove", help="remove a server and its token")
    remove.add_argument("url")


def run(args: argparse.Namespace) -> int:
    from desktop_app.backend.remote.comfyui.tokens import (
        TokenStoreUnavailable,
        delete_token,
        load_token,
        save_token,
    )
    from desktop_app.cli.commands import load_settings
    from desktop_app.core.servers import normalize_url

    settings = load_settings()
    action = args.servers_action or "list"
    if action == "list":
        if not settings.comfyui_servers:
            output.say("No ComfyUI servers. Add one: diffuse-studio servers add gpu-box:8188")
        for url in settings.comfyui_servers:
            output.say(f"{url}{'  (token in the keyring)' if load_token(url) else ''}")
        return 0
    try:
        url = normalize_url(args.url)
    except ValueError as exc:
        output.error(exc)
        return 2
    if action == "add":
        if url not in settings.comfyui_servers:
            settings.comfyui_servers.append(url)
        if args.token:
            try:
                save_token(url, args.token)
            except TokenStoreUnavailable as exc:
                output.error(f"{url} was not added: its token cannot be kept, because {exc}. Without a keyring, "
                             "give the token with each command: generate --server URL --token TOKEN")
                return 2
    else:
        if url not in settings.comfyui_servers:
            output.error(f"{url} is not in the list; diffuse-studio servers list shows the ones there are")
            return 2
        settings.comfyui_servers.remove(url)
        try:
            delete_token(url)
        except TokenStoreUnavailable:
            pass  # no keyring: there is no token to remove
    try:
        settings.save()
    except OSError as exc:
        output.error(f"the settings could not be saved ({exc.strerror or exc}); nothing was changed")
        return 1
    output.say(f"{'added' if action == 'add' else 'removed'} {url}; the window connects to its servers when it starts")
    return 0
