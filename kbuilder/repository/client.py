"""Reading a repository: from a directory, file://, http:// (loopback
only) or https://, verifying everything before it is used.

    source = open_source("https://patches.example/livepatch")
    verified = fetch_index(source, pinned_keys, seen={repository_id: 5})
    path = download(source, verified.index.artifacts[0].module, tmp_dir)

`fetch_index` checks, in this order: the signature file names a pinned key
(UnknownKey), the signature by that key matches the index bytes
(BadSignature), the index is well-formed (MalformedIndex), it has not
expired (ExpiredIndex), and its version is not lower than the last one this
client accepted (IndexRollback). `download` streams a file to disk and
checks its size and sha256 against the index (HashMismatch); it never keeps
more than the index announced.
"""

from __future__ import annotations

from collections.abc import Iterator

import contextlib
import hashlib
import ipaddress
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kbuilder.repository.errors import (
    BadSignature,
    ExpiredIndex,
    HashMismatch,
    IndexRollback,
    RepositoryError,
    UnknownKey,
)
from kbuilder.repository.index import (
    INDEX_FILE,
    MAX_INDEX_SIZE,
    SIGNATURE_FILE,
    FileRef,
    Index,
    format_time,
    parse_index,
    utcnow,
)
from kbuilder.repository.keys import MAX_SIGNATURE_FILE, PublicKey, verify_signed

CHUNK = 1 << 16
USER_AGENT = "kbuilder-agent/1"


class Source:
    """Where a repository's files are read from."""

    url: str

    def display(self, relpath: str) -> str:
        return self.url.rstrip("/") + "/" + relpath

    def open(self, relpath: str):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def get(self, relpath: str, limit: int) -> bytes:
        """The whole file, or RepositoryError if it is missing or larger than `limit`."""
        with self.open(relpath) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise RepositoryError(f"larger than {limit} bytes", path=self.display(relpath))
        return bytes(data)


class DirectorySource(Source):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = "file://" + str(self.root.resolve())

    def open(self, relpath: str):  # type: ignore[no-untyped-def]
        path = self.root / relpath
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise RepositoryError("not found", path=self.display(relpath)) from None
        except OSError as exc:
            raise RepositoryError(f"cannot read: {exc.strerror}", path=self.display(relpath)) from None


class HttpSource(Source):
    def __init__(self, url: str, *, timeout: float = 30, ca_file: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = None
        if url.startswith("https://") and ca_file:
            import ssl

            self.context = ssl.create_default_context(cafile=ca_file)

    def open(self, relpath: str):  # type: ignore[no-untyped-def]
        where = self.display(relpath)
        request = urllib.request.Request(where, headers={"User-Agent": USER_AGENT, "Cache-Control": "no-cache"})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as exc:
            raise RepositoryError(f"HTTP {exc.code} {exc.reason}", path=where) from None
        except urllib.error.URLError as exc:
            raise RepositoryError(f"cannot connect: {exc.reason}", path=where) from None
        except (OSError, ValueError) as exc:
            raise RepositoryError(f"cannot fetch: {exc}", path=where) from None


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_source(url: str, *, timeout: float = 30, ca_file: str | None = None) -> Source:
    """A Source for `url`: https://, http:// on a loopback address only,
    file:///ABSOLUTE/PATH, or a plain directory path."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise RepositoryError(f"file:// URLs name no host (file:///path), not {parsed.netloc!r}", path=url)
        return DirectorySource(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "https":
        return HttpSource(url, timeout=timeout, ca_file=ca_file)
    if parsed.scheme == "http":
        if not is_loopback_host(parsed.hostname or ""):
            raise RepositoryError("plain http:// is only allowed on a loopback address (127.0.0.0/8, ::1, "
                                  "localhost); use https://", path=url)
        return HttpSource(url, timeout=timeout)
    if parsed.scheme == "" and url:
        return DirectorySource(url)
    raise RepositoryError("a repository URL is https://, http:// on loopback, or file:///path", path=url)


# ---------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VerifiedIndex:
    index: Index
    raw: bytes
    key: PublicKey
    url: str


def verify_index_bytes(raw: bytes, sig: bytes, pinned: list[PublicKey], *, where: str, sig_where: str,
                       seen: Mapping[str, int] | None = None, now: datetime | None = None) -> tuple[Index, PublicKey]:
    key = verify_signed(raw, sig, pinned, where=where, sig_where=sig_where)
    index = parse_index(raw, where=where)
    now = now or utcnow()
    if now >= index.expires_at:
        raise ExpiredIndex(f"version {index.version} expired at {index.expires} (now {format_time(now)}); the "
                           "repository must be re-signed (kbuild repo refresh)", path=where)
    last = (seen or {}).get(index.repository)
    if last is not None and index.version < last:
        raise IndexRollback(f"version {index.version} is older than version {last} already seen "
                            "(an old index is being replayed)", path=where)
    return index, key


def fetch_index(source: Source, pinned: list[PublicKey], *, seen: Mapping[str, int] | None = None,
                now: datetime | None = None) -> VerifiedIndex:
    """The verified index of `source`. `seen` maps a repository id to the
    highest index version this client accepted from it before."""
    if not pinned:
        raise UnknownKey("no public key is pinned: nothing can be verified", path=source.display(INDEX_FILE))
    where, sig_where = source.display(INDEX_FILE), source.display(SIGNATURE_FILE)
    raw = source.get(INDEX_FILE, MAX_INDEX_SIZE)
    for attempt in (1, 2):
        try:
            sig = source.get(SIGNATURE_FILE, MAX_SIGNATURE_FILE)
        except RepositoryError as exc:
            raise BadSignature(f"the index has no readable signature ({exc})", path=where) from None
        try:
            index, key = verify_index_bytes(raw, sig, pinned, where=where, sig_where=sig_where,
                                            seen=seen, now=now)
            return VerifiedIndex(index, raw, key, source.url)
        except (BadSignature, UnknownKey):
            # A publication may have happened between the two reads: read
            # the pair once more; the same bytes fail the same way.
            again = source.get(INDEX_FILE, MAX_INDEX_SIZE)
            if attempt == 2 or again == raw:
                raise
            raw = again
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------

def download(source: Source, ref: FileRef, directory: str | Path) -> Path:
    """Stream `ref` into a new temporary file in `directory`, checking its
    size and sha256; the caller renames or removes it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _checked_chunks(source, ref):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def fetch_bytes(source: Source, ref: FileRef) -> bytes:
    """A small file (a metadata document) in memory, checked like `download`."""
    where = source.display(ref.path)
    with source.open(ref.path) as fh:
        data = bytes(fh.read(ref.size + 1))
    if len(data) != ref.size:
        raise HashMismatch(f"{len(data)} bytes, the index says {ref.size}", path=where)
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise HashMismatch(f"sha256 {digest}, the index says {ref.sha256}", path=where)
    return data


def check_file(source: Source, ref: FileRef) -> None:
    """Stream `ref` and check its size and sha256 without keeping it."""
    for _ in _checked_chunks(source, ref):
        pass


def _checked_chunks(source: Source, ref: FileRef) -> Iterator[bytes]:
    """The file's chunks, refusing it (HashMismatch) as soon as it is larger
    than the index says, and at the end if its size or sha256 differ."""
    where = source.display(ref.path)
    digest = hashlib.sha256()
    size = 0
    with source.open(ref.path) as fh:
        while True:
            chunk = fh.read(min(CHUNK, ref.size + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > ref.size:
                raise HashMismatch(f"larger than the {ref.size} bytes the index says", path=where)
            digest.update(chunk)
            yield chunk
    if size != ref.size:
        raise HashMismatch(f"{size} bytes, the index says {ref.size}", path=where)
    if digest.hexdigest() != ref.sha256:
        raise HashMismatch(f"sha256 {digest.hexdigest()}, the index says {ref.sha256}", path=where)