"""Reading a repository: every check of fetch_index and download, on a
directory (the same code reads http:// and https://; see
tests/integration/test_repo_http.py)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from repo_helpers import Repo

from kbuilder.repository import store
from kbuilder.repository.client import DirectorySource, download, fetch_bytes, fetch_index, open_source
from kbuilder.repository.errors import (
    BadSignature,
    ExpiredIndex,
    HashMismatch,
    IndexRollback,
    MalformedIndex,
    RepositoryError,
    UnknownKey,
)
from kbuilder.repository.index import FileRef, Index, parse_index, utcnow
from kbuilder.repository.keys import generate


def _source(repo: Repo) -> DirectorySource:
    return DirectorySource(repo.root)


def test_a_good_index(repo: Repo) -> None:
    repo.add()
    verified = fetch_index(_source(repo), [generate().public, repo.key.public])
    assert verified.key == repo.key.public and verified.index.version == 2
    artifact = verified.index.artifacts[0]
    path = download(_source(repo), artifact.module, repo.work / "tmp")
    assert path.read_bytes() == (repo.root / artifact.module.path).read_bytes()
    assert fetch_bytes(_source(repo), artifact.metadata) == (repo.root / artifact.metadata.path).read_bytes()


def test_every_byte_of_the_index_is_covered(repo: Repo) -> None:
    repo.add()
    raw = (repo.root / "index.json").read_bytes()
    for offset in range(0, len(raw), max(1, len(raw) // 40)):
        changed = bytearray(raw)
        changed[offset] ^= 0x01
        (repo.root / "index.json").write_bytes(bytes(changed))
        with pytest.raises(BadSignature, match="does not match its signature by key"):
            fetch_index(_source(repo), [repo.key.public])
    (repo.root / "index.json").write_bytes(raw)
    fetch_index(_source(repo), [repo.key.public])


def test_every_byte_of_the_signature_is_covered(repo: Repo) -> None:
    sig = (repo.root / "index.json.sig").read_bytes()
    for offset in range(len(sig)):
        changed = bytearray(sig)
        changed[offset] ^= 0x01
        (repo.root / "index.json.sig").write_bytes(bytes(changed))
        with pytest.raises((BadSignature, UnknownKey)) as info:
            fetch_index(_source(repo), [repo.key.public])
        keyid = sig.index(b'"keyid":"') + 9
        if isinstance(info.value, UnknownKey):          # a flipped byte of the key id names another key
            assert keyid <= offset < keyid + 16
    (repo.root / "index.json.sig").unlink()
    with pytest.raises(BadSignature, match="the index has no readable signature"):
        fetch_index(_source(repo), [repo.key.public])


def test_unknown_key(repo: Repo) -> None:
    other = generate()
    with pytest.raises(UnknownKey, match=f"signed by key {repo.key.public.keyid}, which is not pinned "
                                         f"\\(pinned: {other.public.keyid}\\)"):
        fetch_index(_source(repo), [other.public])
    with pytest.raises(UnknownKey, match="no public key is pinned"):
        fetch_index(_source(repo), [])


def test_expired_index(repo: Repo) -> None:
    store.refresh(repo.root, valid_for=timedelta(hours=1), now=utcnow() - timedelta(hours=2))
    with pytest.raises(ExpiredIndex, match=r"^expired index: .*index.json: version 2 expired at .* the repository must "
                                           r"be re-signed"):
        fetch_index(_source(repo), [repo.key.public])


def test_index_rollback(repo: Repo) -> None:
    old = {name: (repo.root / name).read_bytes() for name in ("index.json", "index.json.sig")}
    repo.add()
    verified = fetch_index(_source(repo), [repo.key.public])
    seen = {verified.index.repository: verified.index.version}
    fetch_index(_source(repo), [repo.key.public], seen=seen)             # same version: fine
    for name, blob in old.items():
        (repo.root / name).write_bytes(blob)
    with pytest.raises(IndexRollback, match="version 1 is older than version 2 already seen"):
        fetch_index(_source(repo), [repo.key.public], seen=seen)
    # another repository (another id) has its own sequence
    fetch_index(_source(repo), [repo.key.public], seen={"0" * 16: 9})


def test_previous_index_still_verifies_during_a_publication(repo: Repo) -> None:
    """The signature file is written before the index: a reader that gets
    the old index and the new signature file still verifies."""
    old_index = (repo.root / "index.json").read_bytes()
    repo.add()
    (repo.root / "index.json").write_bytes(old_index)
    assert fetch_index(_source(repo), [repo.key.public]).index.version == 1


def test_download_refuses_wrong_bytes(repo: Repo) -> None:
    artifact = repo.add()
    ref = artifact.module
    source = _source(repo)
    bad = [FileRef(ref.path, ref.sha256, ref.size - 1), FileRef(ref.path, ref.sha256, ref.size + 1),
           FileRef(ref.path, "0" * 64, ref.size)]
    messages = ["larger than the", f"{ref.size} bytes, the index says {ref.size + 1}", "sha256 .* the index says 0000"]
    for wrong, message in zip(bad, messages):
        with pytest.raises(HashMismatch, match=message):
            download(source, wrong, repo.work / "tmp")
        with pytest.raises(HashMismatch):
            fetch_bytes(source, wrong)
    assert not list((repo.work / "tmp").iterdir())          # nothing partial is left


def test_malformed_but_signed_index(repo: Repo) -> None:
    _, index = store.Repository(repo.root).current()
    data = index.to_json()
    data["channels"] = []
    from kbuilder.metadata.model import canonical_json
    from kbuilder.repository.keys import signature_file

    blob = canonical_json(data)
    (repo.root / "index.json.sig").write_bytes(signature_file([(repo.key.public.keyid, repo.key.sign(blob))]))
    (repo.root / "index.json").write_bytes(blob)
    with pytest.raises(MalformedIndex, match="channels must be a non-empty list"):
        fetch_index(_source(repo), [repo.key.public])


@pytest.mark.parametrize("url, message", [
    ("http://192.0.2.1/repo", "plain http:// is only allowed on a loopback address"),
    ("http://example.com/repo", "plain http:// is only allowed on a loopback address"),
    ("ftp://example.com/repo", "a repository URL is https://"),
    ("file://host/srv/repo", "file:// URLs name no host"),
])
def test_url_rules(url: str, message: str) -> None:
    with pytest.raises(RepositoryError, match=message):
        open_source(url)


def test_loopback_and_file_urls(tmp_path: Path) -> None:
    assert open_source("http://127.0.0.1:8080/r").url == "http://127.0.0.1:8080/r"
    assert open_source("http://[::1]:8080/r").url == "http://[::1]:8080/r"
    assert open_source("http://localhost/r").url == "http://localhost/r"
    assert open_source(f"file://{tmp_path}").url == f"file://{tmp_path}"
    assert open_source(str(tmp_path)).url == f"file://{tmp_path}"


def test_index_model_channels(repo: Repo) -> None:
    repo.add()
    index: Index = parse_index((repo.root / "index.json").read_bytes())
    [a] = index.artifacts
    assert index.visible(a, "dev") and not index.visible(a, "prod")
    assert index.available_since(a, "prod") is None
    assert index.available_since(a, "dev") == a.since("dev")
    with pytest.raises(ValueError, match="unknown channel 'beta'"):
        index.rank("beta")
    shutil.rmtree(repo.root / "artifacts")
