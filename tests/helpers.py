"""Plain helpers shared by test modules and conftest (importable: tests/ is on sys.path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def kbuild_script() -> Path:
    """The installed `kbuild` console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "kbuild"
    if candidate.is_file():
        return candidate
    found = shutil.which("kbuild")
    if found is None:
        pytest.fail("the kbuild console script is not installed (pip install -e .)", pytrace=False)
    return Path(found)
