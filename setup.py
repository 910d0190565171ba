"""Ship ``resources/`` and ``models/`` inside the wheel as ``desktop_app/_data/{resources,models}``.

Everything else is in pyproject.toml. This file exists because pyproject's package discovery
cannot take in folders outside the package under another name; ``desktop_app.paths`` looks for
them there.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# A folder git does not track yet (models/ before a model is committed) is simply left out.
DATA_PACKAGES = {
    package: folder
    for package, folder in {
        "desktop_app._data.resources": "resources",
        "desktop_app._data.models": "models",
    }.items()
    if (HERE / folder).is_dir()
}

setup(
    packages=[*find_packages(include=["desktop_app", "desktop_app.*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
)
