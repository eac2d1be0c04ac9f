"""Fixtures of the repository tests (helpers are in repo_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)
