"""Ship ``resources/`` and ``models/`` inside the wheel as ``desktop_app/_data/{resources,models}``.

Everything else is in pyproject.toml. This file exists because pyproject's package discovery
cannot take in folders outside the package under another name; ``desktop_app.paths`` looks for
them there.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
DATA_ROOTS = {"desktop_app._data.resources": "resources", "desktop_app._data.models": "models"}


def data_packages() -> dict[str, str]:
    """Package name → folder for each data root and every folder below it that Python could import
    (listing those too keeps setuptools from warning that they "would be ignored"; their files come
    with the root's ``**/*`` package-data glob). A root git does not track yet is left out."""
    found = {}
    for package, root in DATA_ROOTS.items():
        if not (HERE / root).is_dir():
            continue
        found[package] = root
        for folder in sorted((HERE / root).rglob("*")):
            parts = folder.relative_to(HERE / root).parts
            if folder.is_dir() and all(part.isidentifier() for part in parts):
                found[".".join((package, *parts))] = folder.relative_to(HERE).as_posix()
    return found


DATA_PACKAGES = data_packages()

setup(
    packages=[*find_packages(include=["desktop_app", "desktop_app.*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
)
