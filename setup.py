"""Ship ``resources/`` and ``models/`` inside the wheel as ``desktop_app/_data/{resources,models}``.

Everything else is in pyproject.toml. This file exists because pyproject's package discovery
cannot take in folders outside the package under another name; ``desktop_app.paths`` looks for
them there.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = {"desktop_app._data.resources": "resources", "desktop_app._data.models": "models"}

setup(
    packages=[*find_packages(include=["desktop_app", "desktop_app.*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
)
