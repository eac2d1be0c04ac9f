"""Where expensive things (kernel builds, the test kernel) are kept.

`KBUILDER_CACHE`, else `$XDG_CACHE_HOME/kbuilder`, else `~/.cache/kbuilder`.
Every entry is a directory named by a key that hashes all of its inputs and
is marked complete only after it was fully built, so a stale or half-built
entry is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

COMPLETE = ".complete"


def cache_root() -> Path:
    base = os.environ.get("KBUILDER_CACHE")
    if base:
        return Path(base).absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kbuilder"


def cache_key(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def is_complete(entry: Path) -> bool:
    return (entry / COMPLETE).is_file()


def mark_complete(entry: Path, info: dict[str, object] | None = None) -> None:
    tmp = entry / (COMPLETE + ".tmp")
    tmp.write_text(json.dumps(info or {}, sort_keys=True, indent=1))
    os.replace(tmp, entry / COMPLETE)


def read_complete(entry: Path) -> dict[str, object]:
    try:
        data = json.loads((entry / COMPLETE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
