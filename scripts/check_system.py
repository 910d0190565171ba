"""Say which system packages a fresh machine still needs, before `make run` or `make test` fails on them.

    python3 scripts/check_system.py --before-venv   # Python's version and its venv module (system python)
    .venv/bin/python scripts/check_system.py         # + the libraries Qt's window needs (X11/xcb)
    .venv/bin/python scripts/check_system.py --offscreen   # + only those of Qt without a screen (tests)

Exits 1, after one line naming the Debian/Ubuntu packages to install, when something is missing.
The libraries are found the way the loader finds them (``ldd`` on Qt's own files), so the list is
exactly what is missing on this machine; elsewhere than Linux it checks Python alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import re
import subprocess
import sys
from pathlib import Path

# shared library → the Debian/Ubuntu package that has it (the ones a minimal install lacks)
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0", "libGLX.so.0": "libglx0", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6",
    "libxcb.so.1": "libxcb1", "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-util.so.1": "libxcb-util1",
    "libglib-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
}


def python_problems() -> list[str]:
    if sys.version_info < (3, 10):  # noqa: UP036 - this runs on the system python, which may be older
        return [f"Python 3.10 or newer is needed, this is {platform.python_version()} ({sys.executable})"]
    if importlib.util.find_spec("ensurepip") is None or importlib.util.find_spec("venv") is None:
        return ["python3-venv"]
    return []


def qt_files(offscreen: bool) -> list[Path]:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return []
    qt = Path(spec.origin).parent / "Qt"
    names = ["lib/libQt6Core.so.6", "lib/libQt6Gui.so.6", "lib/libQt6Widgets.so.6"]
    if not offscreen:
        names += ["lib/libQt6XcbQpa.so.6", "plugins/platforms/libqxcb.so"]
    return [qt / name for name in names if (qt / name).exists()]


def missing_libraries(files: list[Path]) -> list[str]:
    missing: list[str] = []
    for file in files:
        try:
            out = subprocess.run(["ldd", str(file)], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return []  # no ldd here: let Qt say it when it starts
        for name in re.findall(r"^\s*(\S+) => not found", out, flags=re.MULTILINE):
            if name not in missing:
                missing.append(name)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-venv", action="store_true", help="check Python alone (run with the system python)")
    parser.add_argument("--offscreen", action="store_true", help="check only what Qt needs without a screen")
    args = parser.parse_args()
    problems = python_problems()
    libraries: list[str] = []
    if not problems and not args.before_venv and sys.platform.startswith("linux"):
        libraries = missing_libraries(qt_files(args.offscreen))
        problems = [DEBIAN_PACKAGES[lib] for lib in libraries if lib in DEBIAN_PACKAGES]
    unknown = [lib for lib in libraries if lib not in DEBIAN_PACKAGES]
    for problem in problems:
        if " " in problem:
            print(f"make: {problem}.", file=sys.stderr)
    packages = [p for p in problems if " " not in p]
    if packages:
        print(f"make: this machine lacks system packages the app needs: {' '.join(packages)}.\n"
              f"      On Debian or Ubuntu:  sudo apt-get install -y {' '.join(packages)}\n"
              "      (other systems: the packages that provide the same libraries), then run make again.",
              file=sys.stderr)
    if unknown:
        print(f"make: Qt cannot find these libraries: {' '.join(unknown)}; install the packages that provide "
              "them (Debian/Ubuntu: apt-file search NAME tells which), then run make again.", file=sys.stderr)
    return 1 if problems or unknown else 0

if __name__ == "__main__":
    sys.exit(main())
