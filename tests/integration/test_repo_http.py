"""A repository served over HTTP on 127.0.0.1, by `kbuild repo serve` and
by nginx (Debian package `nginx`; skipped, saying so, when it is not
installed): every refusal a client makes, and a crash in the middle of
`repo add` while the tree is being served."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "repository"))

from repo_helpers import kbuild, kbuild_argv, keypair, make_module

from kbuilder.repository import store
from kbuilder.repository.client import download, fetch_bytes, fetch_index, open_source
from kbuilder.repository.durable import CRASH_ENV, CRASH_EXIT
from kbuilder.repository.errors import (
    BadSignature,
    ExpiredIndex,
    HashMismatch,
    IndexRollback,
    UnknownKey,
)
from kbuilder.repository.index import utcnow
from kbuilder.repository.keys import generate

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/json json sig; application/octet-stream ko; text/plain pub; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        autoindex off;
        location ~ /\\. {{ deny all; }}
        location = /index.json {{ add_header Cache-Control "no-cache"; }}
        location = /index.json.sig {{ add_header Cache-Control "no-cache"; }}
        location /artifacts/ {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
    }}
}}
"""


def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)),
                                         None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[str], what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text() if log and log.exists() else (proc.stderr.read() if proc.stderr else "")
            raise AssertionError(f"{what} exited {proc.returncode}: {detail}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port}")


@dataclass
class Served:
    root: Path
    url: str
    key: object
    work: Path

    def source(self):  # type: ignore[no-untyped-def]
        return open_source(self.url)


@pytest.fixture(params=["repo-serve", "nginx"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    key_path, key = keypair(tmp_path)
    root = tmp_path / "repo"
    store.init(root, str(key_path))
    for level in (1, 2):
        ko, doc, _ = make_module(tmp_path / "build", f"livepatch-demo-{level}", level=level)
        store.add(root, ko, doc, channel="dev")
    if request.param == "repo-serve":
        proc = subprocess.Popen(kbuild_argv("repo", "serve", str(root), "--bind", "127.0.0.1:0"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0].rstrip("/")
    else:
        nginx = _nginx()
        if nginx is None:
            pytest.skip("nginx is not installed (Debian package nginx): the nginx half of the HTTP tests is skipped")
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        for attempt in range(3):
            port = _free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "", prefix=prefix,
                                              port=port, root=root))
            proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                _wait_for(port, proc, "nginx", prefix / "error.log")
                break
            except AssertionError:
                if attempt == 2:
                    raise
        url = f"http://127.0.0.1:{port}"
    try:
        yield Served(root, url, key, tmp_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _flip(path: Path, offset: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))


def test_a_good_repository_reads_whole(served: Served) -> None:
    source = served.source()
    verified = fetch_index(source, [served.key.public])  # type: ignore[attr-defined]
    assert verified.index.version == 3 and len(verified.index.artifacts) == 2
    for artifact in verified.index.artifacts:
        path = download(source, artifact.module, served.work / "dl")
        assert path.read_bytes() == (served.root / artifact.module.path).read_bytes()
        fetch_bytes(source, artifact.metadata)


def test_tampered_artifact_is_refused(served: Served) -> None:
    source = served.source()
    artifact = fetch_index(source, [served.key.public]).index.artifacts[0]  # type: ignore[attr-defined]
    for offset in (0, artifact.module.size // 2, artifact.module.size - 1):
        _flip(served.root / artifact.module.path, offset)
        with pytest.raises(HashMismatch, match=r"^hash mismatch: http://127\.0\.0\.1:\d+/artifacts/.*\.ko: sha256 "):
            download(source, artifact.module, served.work / "dl")
        _flip(served.root / artifact.module.path, offset)
    _flip(served.root / artifact.metadata.path, 10)
    with pytest.raises(HashMismatch, match=r"\.json: sha256 "):
        fetch_bytes(source, artifact.metadata)
    assert not list((served.work / "dl").iterdir())


def test_tampered_index_is_refused(served: Served) -> None:
    size = (served.root / "index.json").stat().st_size
    for offset in (0, size // 3, size - 2):
        _flip(served.root / "index.json", offset)
        with pytest.raises(BadSignature, match=r"^bad signature: http://127\.0\.0\.1:\d+/index\.json: does not match"):
            fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]
        _flip(served.root / "index.json", offset)


def test_tampered_signature_is_refused(served: Served) -> None:
    sig = served.root / "index.json.sig"
    blob = sig.read_bytes()
    value = blob.index(b'"sig":"') + 12
    # Another base64 letter: a flipped bit could leave the alphabet (e.g. '+'
    # -> '*'), which makes the file malformed rather than wrongly signed.
    sig.write_bytes(blob[:value] + (b"B" if blob[value:value + 1] == b"A" else b"A") + blob[value + 1:])
    with pytest.raises(BadSignature, match="does not match its signature"):
        fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]
    sig.write_bytes(blob)
    _flip(sig, 0)
    with pytest.raises(BadSignature, match="the signature file is malformed"):
        fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]


def test_replayed_older_index_is_refused(served: Served) -> None:
    old = {n: (served.root / n).read_bytes() for n in ("index.json", "index.json.sig")}
    store.promote(served.root, "livepatch-demo-1", source="dev", destination="prod")
    verified = fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]
    seen = {verified.index.repository: verified.index.version}
    for name, blob in old.items():
        (served.root / name).write_bytes(blob)
    with pytest.raises(IndexRollback, match=r"^index rollback: .*: version 3 is older than version 4 already seen"):
        fetch_index(served.source(), [served.key.public], seen=seen)  # type: ignore[attr-defined]


def test_expired_index_is_refused(served: Served) -> None:
    store.refresh(served.root, valid_for=timedelta(minutes=5), now=utcnow() - timedelta(hours=1))
    with pytest.raises(ExpiredIndex, match=r"^expired index: .*version 4 expired at "):
        fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]


def test_key_not_pinned_is_refused(served: Served) -> None:
    other = generate()
    with pytest.raises(UnknownKey, match=r"^unknown key: .*which is not pinned"):
        fetch_index(served.source(), [other.public])


def test_messages_differ(served: Served) -> None:
    labels = {cls.label for cls in (BadSignature, UnknownKey, ExpiredIndex, IndexRollback, HashMismatch)}
    assert len(labels) == 5


def test_crash_between_artifact_and_index_leaves_a_valid_repository(served: Served) -> None:
    before = fetch_index(served.source(), [served.key.public])  # type: ignore[attr-defined]
    ko, doc, _ = make_module(served.work / "build", "livepatch-demo-3", level=3)
    proc = kbuild("repo", "add", str(served.root), str(ko), str(doc), "--channel", "dev",
                  env={CRASH_ENV: "after-artifact"}, check=False)
    assert proc.returncode == CRASH_EXIT
    assert list(served.root.glob("artifacts/*/livepatch-demo-3.ko"))          # the artifact was written
    after = fetch_index(served.source(), [served.key.public], seen={before.index.repository: before.index.version})  # type: ignore[attr-defined]
    assert after.raw == before.raw
    for artifact in after.index.artifacts:
        download(served.source(), artifact.module, served.work / "dl")
    proc = kbuild("repo", "verify", str(served.root))
    assert proc.stdout.startswith("note: 2 file(s) under artifacts/ are in no index")
    assert "ok: index version 3" in proc.stdout
