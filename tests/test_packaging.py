"""Declared versions are versions that work: pyproject's floors, README and the tested set."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
REQUIREMENTS = [Requirement(text) for text in PROJECT["dependencies"]]
OPTIONAL = [
    Requirement(text) for group in PROJECT["optional-dependencies"].values() for text in group
]

KNOWN_MINIMUMS = {
    "python": Version("3.11"),  # datetime.UTC, enum.StrEnum
    "numpy": Version("2.0"),  # np.trapezoid
    "open-clip-torch": Version("3.3"),  # text_global_pool(eos_token_id=...), model identity
}
"""Below these the code cannot work, whatever else is tested."""


def floor(specifier: str) -> Version:
    found = re.search(r">=\s*([0-9][0-9.]*)", specifier)
    assert found, f"no >= floor in {specifier!r}"
    return Version(found.group(1))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_readme_states_the_python_floor_of_pyproject() -> None:
    python = floor(PROJECT["requires-python"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Python {python}+" in readme
    assert set(re.findall(r"Python (\d+\.\d+)\+", readme)) == {str(python)}
    assert sys.version_info[:2] >= (python.major, python.minor)


def test_no_floor_is_below_a_version_known_not_to_work() -> None:
    floors = {"python": floor(PROJECT["requires-python"])}
    floors |= {canonical(r.name): floor(str(r.specifier)) for r in REQUIREMENTS}
    for name, minimum in KNOWN_MINIMUMS.items():
        assert floors[name] >= minimum, f"{name} floor {floors[name]} < {minimum}"


def test_every_declared_dependency_has_a_floor() -> None:
    for requirement in REQUIREMENTS + OPTIONAL:
        floor(str(requirement.specifier))


@pytest.mark.parametrize("requirement", REQUIREMENTS + OPTIONAL, ids=str)
def test_the_tested_environment_meets_the_declared_versions(requirement: Requirement) -> None:
    try:
        installed = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        if requirement in OPTIONAL:
            pytest.skip(f"optional {requirement.name} is not installed")
        raise
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement.name} {installed} is installed but {requirement} is declared"
    )
