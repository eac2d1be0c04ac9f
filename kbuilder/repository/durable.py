"""Writes that survive a crash at any instant, and the points where tests
make the process crash.

`write_durable` writes a temporary file next to the target, flushes it to
the disk, renames it over the target and flushes the directory: a reader
sees the old file or the new one, never a part, and after a power cut the
rename is not found without the data (kbuilder.util.files.atomic_write does
the rename but not the two fsyncs).

`crash_point(name)` ends the process at once, with no clean-up, when the
environment variable KBUILDER_CRASH_AT names that point. The repository's
writers call it between their steps (docs/repository.md lists the points).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kbuilder.repository.errors import RepositoryError

CRASH_ENV = "KBUILDER_CRASH_AT"
CRASH_EXIT = 75


def crash_point(name: str) -> None:
    """Die here, as a power cut or kill -9 would, if asked to."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_EXIT)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    fd = os.open(os.fspath(directory), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) or refuse at
    once when another process holds it."""
    lock = Path(path)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RepositoryError(f"cannot open the lock of {what}: {exc.strerror}", path=str(lock)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RepositoryError(f"{what} is busy: another kbuild process holds {lock}") from None
        yield
    finally:
        os.close(fd)
