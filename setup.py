"""Package discovery for irisbench's folder mapping: ``benchmark/`` is ``irisbench`` and
``plugins/`` is ``irisbench.plugins`` (see pyproject.toml's ``package-dir``).

pyproject.toml's ``find`` directive cannot rename folders, so the subpackages are found here:
every folder with an ``__init__.py`` under either root ships, and a new one can never be left
out of the wheel again (tests/test_installed.py checks the wheel against the source tree).
"""

from setuptools import find_packages, setup


def mapped(folder: str, name: str) -> list[str]:
    return [name] + [f"{name}.{sub}" for sub in find_packages(folder)]


setup(packages=mapped("benchmark", "irisbench") + mapped("plugins", "irisbench.plugins"))
