"""A gzip'd cpio (newc) initramfs, written in pure Python.

Why not the cpio binary: the format is a 110-byte ASCII header per entry, so
writing it here is shorter than driving cpio through a staging directory, it
needs no root for the /dev/console device node, and the result is
reproducible: every entry gets mtime 0, uid/gid 0 and an inode number from
its sorted position, and gzip gets mtime 0, so the same inputs always give
the same bytes (a cache key can be a hash of them, and two runs can be
compared byte for byte).

The image holds busybox-static (its applets are linked at boot by
`busybox --install -s`), an `/init` script, and whatever files the caller adds
(modules, a test script).
"""

from __future__ import annotations

import gzip
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kbuilder.errors import InputError

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member. `path` is absolute inside the image; `mode`
    includes the file type bits (stat.S_IFREG | 0o755, ...); `data` is the
    content of a file or the target of a symlink; `rdev` is (major, minor)
    for a device node."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | mode, data)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, mode: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | mode, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, mode: int, nlink: int, size: int, rdev: tuple[int, int], namesize: int) -> bytes:
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], namesize, 0)
    return _MAGIC + b"".join(b"%08X" % v for v in fields)


def cpio_newc(entries: Iterable[Entry]) -> bytes:
    """The uncompressed archive: entries sorted by path (so parents come
    before their children), every missing parent directory added."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        norm = str(PurePosixPath("/") / entry.path)
        if norm == "/":
            continue
        if norm in by_path and by_path[norm] != entry:
            raise InputError(f"initramfs: two different entries for {norm}")
        by_path[norm] = entry
        for parent in PurePosixPath(norm).parents:
            if str(parent) != "/" and str(parent) not in by_path:
                by_path[str(parent)] = directory(str(parent))
    out = bytearray()
    for ino, norm in enumerate(sorted(by_path, key=lambda p: PurePosixPath(p).parts), start=1):
        entry = by_path[norm]
        name = norm.lstrip("/").encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        head = _header(ino, entry.mode, nlink, len(entry.data), entry.rdev, len(name))
        out += head + name + _pad4(len(head) + len(name))
        out += entry.data + _pad4(len(entry.data))
    name = _TRAILER.encode() + b"\0"
    head = _header(0, 0, 1, 0, (0, 0), len(name))
    out += head + name + _pad4(len(head) + len(name))
    return bytes(out)


def base_entries(init: str, busybox: Path = BUSYBOX) -> list[Entry]:
    """busybox, the directories /init needs, /dev/console and /init itself."""
    try:
        busybox_bytes = Path(busybox).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read busybox (Debian package busybox-static): {exc.strerror}",
                         path=str(busybox)) from None
    entries = [directory(d) for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/dev", "/tmp",
                                      "/root", "/etc")]
    entries += [
        file("/bin/busybox", busybox_bytes, 0o755),
        symlink("/bin/sh", "busybox"),
        char_device("/dev/console", 5, 1),
        file("/init", init.encode(), 0o755),
    ]
    return entries


def build_initramfs(init: str, files: Mapping[str, bytes | Path] | None = None, *,
                    executables: Iterable[str] = (), busybox: Path = BUSYBOX) -> bytes:
    """The gzip'd image: busybox, `init` as /init, and `files` (image path ->
    content or host file to read; paths in `executables` get mode 0755)."""
    exec_set = {str(PurePosixPath("/") / p) for p in executables}
    entries = base_entries(init, busybox)
    for path, content in sorted((files or {}).items()):
        norm = str(PurePosixPath("/") / path)
        data = content if isinstance(content, bytes) else _read(content)
        entries.append(file(norm, data, 0o755 if norm in exec_set else 0o644))
    return gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0)


def write_initramfs(output: Path, init: str, files: Mapping[str, bytes | Path] | None = None, *,
                    executables: Iterable[str] = (), busybox: Path = BUSYBOX) -> Path:
    data = build_initramfs(init, files, executables=executables, busybox=busybox)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, output)
    return output


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
