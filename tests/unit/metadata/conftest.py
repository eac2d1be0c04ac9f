"""Fixtures of the metadata tests (helpers are in metadata_helpers.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from metadata_helpers import write_series


@pytest.fixture
def series_file(tmp_path: Path) -> Path:
    return write_series(tmp_path)


@pytest.fixture(scope="session")
def module_object(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A fresh copy of a small relocatable object (compiled once)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    work = tmp_path_factory.mktemp("module")
    (work / "m.c").write_text("int kb_value = 3;\nint kb_fn(int x) { return x + kb_value; }\n")
    subprocess.run([gcc, "-c", "-O2", "-fno-pic", "-o", str(work / "m.o"), str(work / "m.c")], check=True)
    counter = iter(range(1_000_000))

    def fresh() -> Path:
        copy = work / f"copy-{next(counter)}.ko"
        shutil.copyfile(work / "m.o", copy)
        return copy

    return fresh
