"""Writing a repository: init, add, promote, refresh, verify, and crashes."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from repo_helpers import OTHER_BUILD_ID, Repo, kbuild, make_module

from kbuilder.errors import InputError
from kbuilder.repository import store
from kbuilder.repository.client import DirectorySource, fetch_index
from kbuilder.repository.durable import CRASH_ENV, CRASH_EXIT
from kbuilder.repository.errors import PromotionRefused, RepositoryError
from kbuilder.repository.index import parse_index, utcnow


def _index(repo: Repo):  # type: ignore[no-untyped-def]
    return parse_index((repo.root / "index.json").read_bytes())


def test_init_makes_a_valid_empty_repository(repo: Repo) -> None:
    index = _index(repo)
    assert index.version == 1 and index.channels == ["dev", "prod"] and index.artifacts == []
    assert (repo.root / "keys" / f"{repo.key.public.keyid}.pub").read_text().strip() == repo.key.public.text
    config = json.loads((repo.root / ".kbuilder/config.json").read_text())
    assert config["key"] == str(repo.key_path.resolve())
    report = store.verify(repo.root)
    assert report.problems == [] and report.key == repo.key.public
    # index.json is canonical JSON
    raw = (repo.root / "index.json").read_bytes()
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(RepositoryError, match="already a repository"):
        store.init(repo.root, str(repo.key_path))


def test_init_refuses_bad_channels(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(InputError, match="channels must be distinct"):
        store.init(tmp_path / "x", str(repo.key_path), channels=("dev", "dev"))
    with pytest.raises(InputError, match="channels must be distinct"):
        store.init(tmp_path / "y", str(repo.key_path), channels=("Dev Channel",))


def test_add_records_everything_a_client_needs(repo: Repo) -> None:
    ko, doc, full = repo.module("livepatch-demo-2", level=2)
    artifact = store.add(repo.root, ko, doc, channel="dev")
    index = _index(repo)
    assert index.version == 2
    [entry] = index.artifacts
    assert entry.to_json() == artifact.to_json()
    assert entry.module.sha256 == hashlib.sha256(ko.read_bytes()).hexdigest() == full["module"]["sha256"]
    assert entry.module.size == ko.stat().st_size
    assert entry.target == {"kernel_release": "6.1.0-test", "vmlinux_build_id": full["target"]["vmlinux_build_id"],
                            "arch": "x86_64"}
    assert (entry.kind, entry.level, entry.series, entry.max_severity, entry.channel) == \
        ("cumulative", 2, "demo", "HIGH", "dev")
    assert entry.module.path == f"artifacts/{entry.sha256}/livepatch-demo-2.ko"
    stored = repo.root / entry.metadata.path
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == entry.metadata.sha256
    assert json.loads(stored.read_text()) == full
    assert (repo.root / entry.module.path).read_bytes() == ko.read_bytes()
    assert store.verify(repo.root).problems == []


def test_add_without_json_reads_the_embedded_metadata(repo: Repo) -> None:
    ko, _, full = repo.module()
    artifact = store.add(repo.root, ko, channel="dev")
    assert artifact.module.sha256 == full["module"]["sha256"]


@pytest.mark.parametrize("case, message", [
    ("same-module", "already in the repository"),
    ("same-name-other-content", "already in the repository with other content"),
    ("unknown-channel", "unknown channel 'beta'"),
    ("not-livepatch", "not a livepatch module"),
    ("json-for-other-module", "does not describe"),
    ("no-build-id", "no target.vmlinux_build_id"),
    ("missing-dependency", "dependency missing: livepatch-demo-b requires livepatch_demo_a"),
])
def test_add_refusals(repo: Repo, case: str, message: str) -> None:
    repo.add("livepatch-demo-1")
    if case == "same-module":
        ko, doc, _ = repo.module("livepatch-demo-1")
        args: tuple = (ko, doc)
    elif case == "same-name-other-content":
        ko, doc, _ = repo.module("livepatch-demo-1", severity="LOW")
        args = (ko, doc)
    elif case == "not-livepatch":
        ko, doc, _ = make_module(repo.work / "np", "livepatch-demo-9", level=9, livepatch=False)
        args = (ko, doc)
    elif case == "json-for-other-module":
        ko, _, _ = repo.module("livepatch-demo-2", level=2)
        _, doc, _ = repo.module("livepatch-demo-3", level=3)
        args = (ko, doc)
    elif case == "no-build-id":
        ko, doc, _ = make_module(repo.work / "nb", "livepatch-demo-4", level=4, build_id="")
        args = (ko, doc)
    elif case == "missing-dependency":
        ko, doc, _ = repo.module("livepatch-demo-b", kind="incremental", position=2,
                                 requires=[("livepatch_demo_a", 1)], level=None)
        args = (ko, doc)
    else:
        ko, doc, _ = repo.module("livepatch-demo-2", level=2)
        args = (ko, doc)
    channel = "beta" if case == "unknown-channel" else "dev"
    with pytest.raises((InputError, RepositoryError), match=message) as info:
        store.add(repo.root, *args, channel=channel)
    assert "\n" not in str(info.value)
    assert _index(repo).version == 2             # nothing was published


def test_same_module_for_two_kernel_builds(repo: Repo) -> None:
    repo.add("livepatch-demo-1")
    repo.add("livepatch-demo-1", build_id=OTHER_BUILD_ID)
    assert [a.target["vmlinux_build_id"][:4] for a in _index(repo).artifacts] == ["1111", "8d3f"]


def test_promote_one_channel_at_a_time(tmp_path: Path) -> None:
    repo = Repo.__new__(Repo)
    repo.work = tmp_path
    from repo_helpers import keypair

    repo.key_path, repo.key = keypair(tmp_path)
    repo.root = tmp_path / "repo"
    store.init(repo.root, str(repo.key_path), channels=("dev", "test", "prod"))
    repo.add("livepatch-demo-1")
    with pytest.raises(PromotionRefused, match="would skip test: promote one channel at a time"):
        store.promote(repo.root, "livepatch-demo-1", source="dev", destination="prod")
    with pytest.raises(PromotionRefused, match="not more stable"):
        store.promote(repo.root, "livepatch-demo-1", source="test", destination="dev")
    with pytest.raises(PromotionRefused, match="no livepatch-demo-1 is in channel test"):
        store.promote(repo.root, "livepatch-demo-1", source="test", destination="prod")
    with pytest.raises(RepositoryError, match="no artifact 'livepatch-demo-7'"):
        store.promote(repo.root, "livepatch-demo-7", source="dev", destination="test")
    [moved] = store.promote(repo.root, "livepatch_demo_1", source="dev", destination="test")
    assert moved.channel == "test"
    store.promote(repo.root, moved.sha256[:10], source="test", destination="prod")
    [entry] = _index(repo).artifacts
    assert entry.channel == "prod" and [h["channel"] for h in entry.history] == ["dev", "test", "prod"]
    index = _index(repo)
    assert index.visible(entry, "dev") and index.visible(entry, "prod")


def test_promote_needs_dependencies_first(repo: Repo) -> None:
    repo.add("livepatch-inc-a", kind="incremental", position=1, level=None)
    repo.add("livepatch-inc-b", kind="incremental", position=2, level=None, requires=[("livepatch_inc_a", 1)])
    with pytest.raises(PromotionRefused, match="requires livepatch_inc_a, which is in dev: promote it to prod first"):
        store.promote(repo.root, "livepatch-inc-b", source="dev", destination="prod")
    store.promote(repo.root, "livepatch-inc-a", source="dev", destination="prod")
    store.promote(repo.root, "livepatch-inc-b", source="dev", destination="prod")


def test_promote_by_build_id(repo: Repo) -> None:
    repo.add("livepatch-demo-1")
    repo.add("livepatch-demo-1", build_id=OTHER_BUILD_ID)
    [moved] = store.promote(repo.root, "livepatch-demo-1", source="dev", destination="prod", build_id="1111")
    assert moved.target["vmlinux_build_id"] == OTHER_BUILD_ID
    assert sorted(a.channel for a in _index(repo).artifacts) == ["dev", "prod"]


def test_refresh_bumps_version_and_expiry(repo: Repo) -> None:
    before = _index(repo)
    later = utcnow() + timedelta(days=1)
    index = store.refresh(repo.root, valid_for=timedelta(days=2), now=later)
    assert index.version == before.version + 1 and index.expires_at == later + timedelta(days=2)
    # an expired index can be refreshed
    store.refresh(repo.root, valid_for=timedelta(seconds=1), now=utcnow() - timedelta(days=3))
    store.refresh(repo.root)
    assert store.verify(repo.root).problems == []


def test_writes_refuse_a_tampered_index(repo: Repo) -> None:
    raw = bytearray((repo.root / "index.json").read_bytes())
    raw[raw.index(b'"version":') + 10] = ord("7")
    (repo.root / "index.json").write_bytes(bytes(raw))
    with pytest.raises(RepositoryError, match="refusing to write over an index that does not verify"):
        repo.add()


def test_writes_need_a_key_of_the_repository(repo: Repo) -> None:
    from repo_helpers import keypair

    other, _ = keypair(repo.work, "other.key")
    with pytest.raises(InputError, match="is not one of this repository's keys"):
        store.refresh(repo.root, key_path=str(other))


def test_verify_reports_each_problem(repo: Repo) -> None:
    a = repo.add("livepatch-demo-1")
    b = repo.add("livepatch-demo-2", level=2)
    ko = repo.root / a.module.path
    blob = bytearray(ko.read_bytes())
    blob[100] ^= 1
    ko.write_bytes(bytes(blob))
    meta = repo.root / b.metadata.path
    meta.write_text(meta.read_text().replace('"HIGH"', '"LOW"', 1))
    (repo.root / "artifacts" / "stray").mkdir()
    (repo.root / "artifacts" / "stray" / "x.ko").write_bytes(b"x")
    report = store.verify(repo.root)
    assert len(report.problems) == 2
    assert report.problems[0].startswith("hash mismatch: file://") and "livepatch-demo-1.ko: sha256" in \
        report.problems[0]
    assert report.problems[1].startswith("hash mismatch:") and "livepatch-demo-2.json" in report.problems[1]
    assert any("in no index" in n for n in report.notes)


def test_verify_checks_metadata_against_the_index(repo: Repo) -> None:
    """A repository whose (correctly hashed and signed) metadata disagrees
    with the module's embedded copy is reported."""
    from kbuilder.repository.index import FileRef

    a = repo.add("livepatch-demo-1")
    raw, index = store.Repository(repo.root).current()
    meta = repo.root / a.metadata.path
    doc = json.loads(meta.read_text())
    doc["functions"][0]["new_size"] = 99
    blob = json.dumps(doc).encode()
    meta.write_bytes(blob)
    index.artifacts[0].metadata = FileRef(a.metadata.path, hashlib.sha256(blob).hexdigest(), len(blob))
    index.version += 1
    store.Repository(repo.root).publish(repo.key, index, raw)
    report = store.verify(repo.root)
    assert report.problems == [(f"metadata mismatch: file://{repo.root.resolve()}/{a.module.path}: the metadata "
                                "embedded in the module differs from the metadata file (functions)")]


def test_kernel_signed_module_with_json_from_before_signing(repo: Repo) -> None:
    """sign-file appends a signature after kbuild build wrote NAME.json:
    the metadata's hash is of the unsigned module; add accepts it and
    records the signed file's hash."""
    import struct

    from kbuilder.repository.modsign import MAGIC

    ko, doc, full = repo.module()
    sig = b"\x30" * 40
    ko.write_bytes(ko.read_bytes() + sig + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, len(sig)) + MAGIC)
    artifact = store.add(repo.root, ko, doc, channel="dev")
    assert artifact.kernel_signature is True
    assert artifact.module.sha256 == hashlib.sha256(ko.read_bytes()).hexdigest() != full["module"]["sha256"]
    assert store.verify(repo.root).problems == []


# ---------------------------------------------------------------------------
# Crashes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("point, published", [("after-artifact", False), ("after-signature", False),
                                              ("after-index", True)])
def test_crash_during_add_leaves_a_valid_repository(repo: Repo, point: str, published: bool) -> None:
    repo.add("livepatch-demo-1")
    before = (repo.root / "index.json").read_bytes()
    ko, doc, _ = repo.module("livepatch-demo-2", level=2)
    proc = kbuild("repo", "add", str(repo.root), str(ko), str(doc), "--channel", "dev", env={CRASH_ENV: point},
                  check=False)
    assert proc.returncode == CRASH_EXIT, proc.stderr
    verified = fetch_index(DirectorySource(repo.root), [repo.key.public])
    names = [a.name for a in verified.index.artifacts]
    assert names == (["livepatch-demo-1", "livepatch-demo-2"] if published else ["livepatch-demo-1"])
    if not published:
        assert (repo.root / "index.json").read_bytes() == before
    report = store.verify(repo.root)
    assert report.problems == []
    assert not list(repo.root.rglob(".*.tmp"))
    # The next add works (and reuses the orphaned files when the same module comes again).
    if not published:
        store.add(repo.root, ko, doc, channel="dev")
    assert [a.name for a in store.verify(repo.root).index.artifacts] == ["livepatch-demo-1", "livepatch-demo-2"]
    assert store.verify(repo.root).notes == []


def test_concurrent_writer_is_refused(repo: Repo) -> None:
    from kbuilder.repository.durable import exclusive_lock

    with exclusive_lock(repo.root / ".kbuilder" / "lock", "x"), \
            pytest.raises(RepositoryError, match="busy: another kbuild process holds"):
        repo.add()
