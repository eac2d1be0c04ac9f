"""`kbuild repo serve`: a small read-only HTTP server for a repository
tree, on loopback only (for tests and for a local agent; anything else
belongs behind nginx or another real web server, docs/repository.md).

It answers GET and HEAD for the files of the format (index.json,
index.json.sig, keys/, artifacts/), refuses dot files and directory
listings, and tells caches that the index changes (`no-cache`) and that
artifacts, whose paths hold their hash, never do.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import posixpath
import urllib.parse
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from kbuilder.errors import InputError

MUTABLE = {"/index.json", "/index.json.sig"}


class RepoHandler(http.server.SimpleHTTPRequestHandler):
    server_version = "kbuilder-repo"
    sys_version = ""
    extensions_map: ClassVar[dict[str, str]] = {"": "application/octet-stream", ".json": "application/json", ".sig": "application/json",
                      ".pub": "text/plain", ".ko": "application/octet-stream"}

    def __init__(self, *args: Any, directory: str, quiet: bool = True, **kwargs: Any) -> None:
        self.quiet = quiet
        super().__init__(*args, directory=directory, **kwargs)

    def _allowed(self) -> bool:
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        parts = [p for p in path.split("/") if p]
        if not parts or any(p.startswith(".") for p in parts):
            return False
        if path in MUTABLE:
            return True
        return parts[0] in ("keys", "artifacts") and len(parts) >= 2 and \
            os.path.isfile(os.path.join(self.directory, *parts))

    def send_head(self):  # type: ignore[no-untyped-def]
        if not self._allowed():
            self.send_error(404, "Not Found")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path in MUTABLE:
            self.send_header("Cache-Control", "no-cache")
        elif path.startswith("/artifacts/"):
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
        super().end_headers()

    def do_POST(self) -> None:
        self.send_error(405, "Method Not Allowed")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def parse_bind(text: str) -> tuple[str, int]:
    """HOST:PORT (or [V6]:PORT) on a loopback address; PORT 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--bind {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"--bind {text!r}: HOST must be an IP address") from None
    if not address.is_loopback:
        raise InputError(f"--bind {text!r}: repo serve listens on loopback only (127.0.0.0/8 or ::1); serve other "
                         "addresses with nginx (docs/repository.md)")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    import socket as _socket

    address_family = _socket.AF_INET6


def make_server(root: str | Path, host: str, port: int, *, quiet: bool = True) -> http.server.ThreadingHTTPServer:
    root = Path(root)
    if not (root / "index.json").is_file():
        raise InputError("not a repository (no index.json)", path=str(root))
    handler = partial(RepoHandler, directory=str(root.resolve()), quiet=quiet)
    cls = _Server6 if ":" in host else _Server
    try:
        return cls((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
