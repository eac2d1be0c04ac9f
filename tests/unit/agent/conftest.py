"""Fixtures of the agent tests (helpers are in agent_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "repository"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_helpers import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Levels 1 and 2 of series demo in dev, level 1 promoted to prod."""
    w = World(tmp_path)
    w.add("livepatch-demo-1", level=1)
    w.add("livepatch-demo-2", level=2)
    w.promote("livepatch-demo-1")
    return w
