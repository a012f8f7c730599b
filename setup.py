"""The one packaging step pyproject.toml cannot express: install weights/ as a package.

The shipped weights live in the repository's top-level ``weights/`` folder, where
people look for them; a wheel installs that folder as ``modelzoo._shipped``
(``modelzoo.weights.shipped_dir`` finds either). Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["modelzoo", "modelzoo.*"]), "modelzoo._shipped"],
    package_dir={"modelzoo._shipped": "weights"},
)
