"""Two builds of one module name take turns on its work directory."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from kbuilder.build import workspace


def test_workspace_is_fresh_and_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KBUILDER_CACHE", str(tmp_path))
    stale = tmp_path / "work" / "p" / "left-over.o"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier build")
    with workspace("p") as work:
        assert work == tmp_path / "work" / "p" and work.is_dir() and not stale.exists()
        with open(tmp_path / "work" / "p.lock", "w") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)   # what a second build would wait on
    with open(tmp_path / "work" / "p.lock", "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)       # released afterwards
