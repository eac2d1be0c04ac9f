"""Writing a repository: init, add, promote, refresh, and verify.

The served tree (docs/repository.md):

    DIR/index.json              the index, canonical JSON
    DIR/index.json.sig          its detached Ed25519 signature(s)
    DIR/keys/KEYID.pub          the public key(s), for reference only: clients pin theirs
    DIR/artifacts/SHA256/NAME.ko    the module (SHA256 is the module file's)
    DIR/artifacts/SHA256/NAME.json  its metadata document
    DIR/.kbuilder/              private: config.json (signing key path, validity), lock

Every write takes DIR/.kbuilder/lock, checks the current index against the
repository's own keys, writes new files, then publishes: the signature file
first (it signs the new index and the current one), then the index, each by
rename. A crash at any point leaves a signed, valid index: the old one until
the rename of index.json, the new one after. Files of an interrupted add
stay unreferenced until the same module is added again (`verify` lists them).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kbuilder.errors import InputError
from kbuilder.repository.check import embedded_problem, metadata_problems, parse_metadata
from kbuilder.repository.durable import crash_point, exclusive_lock, write_durable
from kbuilder.repository.errors import HashMismatch, PromotionRefused, Refusal, RepositoryError
from kbuilder.repository.index import (
    ARTIFACT_DIR,
    INDEX_FILE,
    KEYS_DIR,
    SIGNATURE_FILE,
    Artifact,
    FileRef,
    Index,
    format_duration,
    format_time,
    parse_index,
    utcnow,
)
from kbuilder.repository.keys import PublicKey, SigningKey, load_private, parse_public, signature_file, verify_signed

PRIVATE_DIR = ".kbuilder"
CONFIG_FILE = "config.json"
CONFIG_FORMAT = "kbuilder-repo-config/1"
LOCK_FILE = "lock"
DEFAULT_CHANNELS = ("dev", "prod")
DEFAULT_VALID_FOR = timedelta(days=30)


@dataclass(slots=True)
class RepoConfig:
    key: str | None
    valid_for: timedelta

    def to_json(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, "key": self.key, "valid_for": int(self.valid_for.total_seconds())}


class Repository:
    """A repository directory on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def private(self) -> Path:
        return self.root / PRIVATE_DIR

    def lock(self):  # type: ignore[no-untyped-def]
        return exclusive_lock(self.private / LOCK_FILE, f"repository {self.root}")

    def config(self) -> RepoConfig:
        path = self.private / CONFIG_FILE
        if not (self.root / INDEX_FILE).is_file():
            raise RepositoryError("not a repository (no index.json; create one with kbuild repo init)",
                                  path=str(self.root))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RepoConfig(None, DEFAULT_VALID_FOR)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RepositoryError(f"cannot read the repository configuration: {exc}", path=str(path)) from None
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise RepositoryError(f"not a {CONFIG_FORMAT} file", path=str(path))
        return RepoConfig(data.get("key"), timedelta(seconds=int(data.get("valid_for", 0)) or 30 * 86400))

    def published_keys(self) -> list[PublicKey]:
        keys = []
        for path in sorted((self.root / KEYS_DIR).glob("*.pub")):
            keys.append(parse_public(path.read_text(encoding="ascii"), where=str(path)))
        return keys

    def signing_key(self, key_path: str | None) -> SigningKey:
        path = key_path or self.config().key
        if not path:
            raise InputError(f"no signing key: give --key (the repository at {self.root} records none)")
        key = load_private(path)
        if key.public.keyid not in {k.keyid for k in self.published_keys()}:
            raise InputError(f"key {key.public.keyid} is not one of this repository's keys ({KEYS_DIR}/)", path=path)
        return key

    def current(self) -> tuple[bytes, Index]:
        """The current index, checked against the repository's own keys
        (an expired index is fine here: refresh renews it)."""
        raw = _read(self.root / INDEX_FILE)
        sig = _read(self.root / SIGNATURE_FILE)
        where = str(self.root / INDEX_FILE)
        try:
            verify_signed(raw, sig, self.published_keys(), where=where, sig_where=str(self.root / SIGNATURE_FILE))
        except Refusal as exc:
            raise RepositoryError(f"refusing to write over an index that does not verify ({exc}); "
                                  "run kbuild repo verify", path=None) from None
        return raw, parse_index(raw, where=where)

    def publish(self, key: SigningKey, new: Index, previous: bytes | None) -> None:
        blob = new.to_bytes()
        entries = [(key.public.keyid, key.sign(blob))]
        if previous is not None:
            entries.append((key.public.keyid, key.sign(previous)))
        write_durable(self.root / SIGNATURE_FILE, signature_file(entries))
        crash_point("after-signature")
        write_durable(self.root / INDEX_FILE, blob)
        crash_point("after-index")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RepositoryError("missing", path=str(path)) from None
    except OSError as exc:
        raise RepositoryError(f"cannot read: {exc.strerror}", path=str(path)) from None


def _next(index: Index, valid_for: timedelta, now: datetime) -> Index:
    return Index(index.repository, index.version + 1, format_time(now), format_time(now + valid_for),
                 list(index.channels), list(index.artifacts))


# ---------------------------------------------------------------------------
# init / refresh
# ---------------------------------------------------------------------------

def init(root: str | Path, key_path: str, *, channels: tuple[str, ...] = DEFAULT_CHANNELS,
         valid_for: timedelta = DEFAULT_VALID_FOR, now: datetime | None = None) -> Index:
    import re

    repo = Repository(root)
    if (repo.root / INDEX_FILE).exists() or (repo.private / CONFIG_FILE).exists():
        raise RepositoryError("already a repository", path=str(repo.root))
    if not channels or len(set(channels)) != len(channels) or \
            not all(re.match(r"^[a-z][a-z0-9_-]{0,31}$", c) for c in channels):
        raise InputError(f"channels must be distinct lower-case names, least stable first (got {','.join(channels)})")
    if valid_for <= timedelta(0):
        raise InputError("the index validity must be positive")
    key = load_private(key_path)
    now = now or utcnow()
    repo.root.mkdir(parents=True, exist_ok=True)
    with repo.lock():
        write_durable(repo.root / KEYS_DIR / f"{key.public.keyid}.pub", (key.public.text + "\n").encode("ascii"))
        write_durable(repo.private / CONFIG_FILE,
                      json.dumps(RepoConfig(str(Path(key_path).resolve()), valid_for).to_json(), indent=2)
                      .encode("utf-8") + b"\n", mode=0o600)
        index = Index(secrets.token_hex(8), 1, format_time(now), format_time(now + valid_for), list(channels))
        repo.publish(key, index, None)
    return index


def refresh(root: str | Path, *, key_path: str | None = None, valid_for: timedelta | None = None,
            now: datetime | None = None) -> Index:
    """Re-sign the same content with a new version and expiry."""
    repo = Repository(root)
    config = repo.config()
    key = repo.signing_key(key_path)
    with repo.lock():
        raw, index = repo.current()
        new = _next(index, valid_for or config.valid_for, now or utcnow())
        repo.publish(key, new, raw)
    return new


# ---------------------------------------------------------------------------
# add
# ---------------------------------------------------------------------------

def _module_metadata(ko: Path, json_path: Path | None) -> tuple[bytes, dict[str, Any]]:
    from kbuilder.metadata.model import load
    from kbuilder.repository.modsign import strip_signature

    try:
        blob = ko.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=str(ko)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(ko)) from None
    if not blob.startswith(b"\x7fELF"):
        raise InputError("not a kernel module (no ELF header)", path=str(ko))
    sha, size = hashlib.sha256(blob).hexdigest(), len(blob)
    if json_path is None:
        return blob, load(ko)
    doc = load(json_path)
    module = doc["module"]
    if module.get("sha256") != sha or module.get("size") != size:
        unsigned = strip_signature(blob)
        if module.get("sha256") == hashlib.sha256(unsigned).hexdigest() and module.get("size") == len(unsigned):
            module["sha256"], module["size"] = sha, size     # signed after the build wrote NAME.json
        else:
            raise InputError(f"does not describe {ko.name}: it names sha256 {module.get('sha256')}, the module "
                             f"has {sha}", path=str(json_path))
    problem = embedded_problem(blob, doc, where=str(ko))
    if problem:
        raise InputError(problem, path=str(ko))
    return blob, doc


def _check_livepatch(ko: Path, doc: dict[str, Any]) -> None:
    from kbuilder.kernel.vm import modinfo

    info = modinfo(ko)
    if info.get("livepatch") != "Y":
        raise InputError("not a livepatch module (.modinfo has no livepatch=Y)", path=str(ko))
    if info.get("name") and info["name"] != doc["module"]["name"]:
        raise InputError(f".modinfo names the module {info['name']!r}, its metadata {doc['module']['name']!r}",
                         path=str(ko))
    if not doc["target"].get("vmlinux_build_id"):
        raise InputError("the metadata has no target.vmlinux_build_id: no agent could match it to a kernel",
                         path=str(ko))


def add(root: str | Path, ko: str | Path, json_path: str | Path | None = None, *, channel: str,
        key_path: str | None = None, now: datetime | None = None) -> Artifact:
    from kbuilder.metadata.model import pretty_json
    from kbuilder.repository.modsign import signature_info

    repo = Repository(root)
    config = repo.config()
    key = repo.signing_key(key_path)
    ko = Path(ko)
    blob, doc = _module_metadata(ko, Path(json_path) if json_path else None)
    _check_livepatch(ko, doc)
    now = now or utcnow()
    with repo.lock():
        raw, index = repo.current()
        if channel not in index.channels:
            raise InputError(f"unknown channel {channel!r} (the repository has {', '.join(index.channels)})")
        sha = hashlib.sha256(blob).hexdigest()
        name = doc["module"]["file"].removesuffix(".ko")
        target = {k: doc["target"][k] for k in ("kernel_release", "vmlinux_build_id", "arch")}
        for other in index.artifacts:
            if other.sha256 == sha:
                raise RepositoryError(f"{ko.name} is already in the repository (as {other.name}, channel "
                                      f"{other.channel})")
            if other.target == target and (other.module_name == doc["module"]["name"] or other.name == name):
                raise RepositoryError(f"{other.label} is already in the repository with other content "
                                      f"({other.sha256[:12]}): published artifacts are never replaced; build "
                                      "the change as a new level")
            if other.target == target and other.mode.get("series") and other.mode == doc["mode"]:
                raise RepositoryError(f"{other.label} already holds {doc['mode']['kind']} "
                                      f"{other.level} of series {other.series}")
        for req in doc["mode"].get("requires", []):
            if not any(a.module_name == req["module"] and a.target == target for a in index.artifacts):
                raise RepositoryError(f"dependency missing: {name} requires {req['module']}, which the repository "
                                      "does not have for this kernel: add it first")
        folder = f"{ARTIFACT_DIR}/{sha}"
        meta_blob = pretty_json(doc).encode("utf-8")
        write_durable(repo.root / folder / f"{name}.ko", blob)
        write_durable(repo.root / folder / f"{name}.json", meta_blob)
        crash_point("after-artifact")
        artifact = Artifact(name, doc["module"]["name"], FileRef(f"{folder}/{name}.ko", sha, len(blob)),
                            signature_info(blob) is not None,
                            FileRef(f"{folder}/{name}.json", hashlib.sha256(meta_blob).hexdigest(), len(meta_blob)),
                            target, dict(doc["mode"]), bool(doc["module"]["replace"]), doc.get("max_severity"),
                            channel, [{"channel": channel, "since": format_time(now)}])
        new = _next(index, config.valid_for, now)
        new.artifacts.append(artifact)
        new.sort()
        repo.publish(key, new, raw)
    return artifact


# ---------------------------------------------------------------------------
# promote
# ---------------------------------------------------------------------------

def matches(artifact: Artifact, name: str) -> bool:
    wanted = name.removesuffix(".ko")
    if wanted in (artifact.name, artifact.module_name) or wanted.replace("-", "_") == artifact.module_name:
        return True
    return len(wanted) >= 8 and artifact.sha256.startswith(wanted.lower())


def promote(root: str | Path, name: str, *, source: str, destination: str, key_path: str | None = None,
            build_id: str | None = None, now: datetime | None = None) -> list[Artifact]:
    """Move the artifacts called `name` (file stem, kernel name or sha256
    prefix; only those for kernels whose build id starts with `build_id`
    when given) from channel `source` to `destination`, the next channel."""
    repo = Repository(root)
    config = repo.config()
    key = repo.signing_key(key_path)
    now = now or utcnow()
    with repo.lock():
        raw, index = repo.current()
        for channel in (source, destination):
            if channel not in index.channels:
                raise InputError(f"unknown channel {channel!r} (the repository has {', '.join(index.channels)})")
        low, high = index.rank(source), index.rank(destination)
        if high <= low:
            raise PromotionRefused(f"{destination} is not more stable than {source} (channels, least stable first: "
                                   f"{', '.join(index.channels)})")
        if high != low + 1:
            skipped = ", ".join(index.channels[low + 1:high])
            raise PromotionRefused(f"{source} -> {destination} would skip {skipped}: promote one channel at a time")
        found = [a for a in index.artifacts if matches(a, name)
                 and (build_id is None or a.target.get("vmlinux_build_id", "").startswith(build_id.lower()))]
        if not found:
            raise RepositoryError(f"no artifact {name!r} in the repository"
                                  + (f" for build id {build_id}" if build_id else ""))
        chosen = [a for a in found if a.channel == source]
        if not chosen:
            where = ", ".join(sorted({f"{a.name} in {a.channel}" for a in found}))
            raise PromotionRefused(f"no {name} is in channel {source} ({where})")
        for artifact in chosen:
            for req in artifact.mode.get("requires", []):
                deps = [a for a in index.artifacts if a.module_name == req["module"] and a.target == artifact.target]
                if not any(index.rank(a.channel) >= high for a in deps):
                    now_in = ", ".join(sorted({a.channel for a in deps})) or "nowhere"
                    raise PromotionRefused(f"{artifact.name} requires {req['module']}, which is in {now_in}: "
                                           f"promote it to {destination} first")
        new = _next(index, config.valid_for, now)
        for artifact in chosen:
            artifact.channel = destination
            artifact.history.append({"channel": destination, "since": format_time(now)})
        repo.publish(key, new, raw)
    return chosen


# ---------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class VerifyReport:
    index: Index
    key: PublicKey
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_files: int = 0


def verify(root: str | Path, *, pinned: list[PublicKey] | None = None, now: datetime | None = None) -> VerifyReport:
    """Check the signature (against `pinned`, default the repository's own
    keys/), the expiry, and every artifact's files: hash, size, metadata
    agreeing with the index and with the copy embedded in the module, the
    module-signature flag. Signature and expiry failures raise; artifact
    problems are collected in the report, one line each."""
    from kbuilder.repository.client import DirectorySource, check_file, fetch_bytes, fetch_index
    from kbuilder.repository.modsign import signature_info

    repo = Repository(root)
    if not (repo.root / INDEX_FILE).is_file():
        raise RepositoryError("not a repository (no index.json)", path=str(repo.root))
    source = DirectorySource(repo.root)
    keys = pinned if pinned is not None else repo.published_keys()
    verified = fetch_index(source, keys, now=now)
    report = VerifyReport(verified.index, verified.key)
    referenced: set[str] = set()
    for artifact in verified.index.artifacts:
        referenced.update((artifact.module.path, artifact.metadata.path))
        try:
            check_file(source, artifact.module)
            meta_blob = fetch_bytes(source, artifact.metadata)
            report.checked_files += 2
        except (HashMismatch, RepositoryError) as exc:
            report.problems.append(str(exc))
            continue
        where = source.display(artifact.metadata.path)
        try:
            doc = parse_metadata(meta_blob, where=where)
        except InputError as exc:
            report.problems.append(f"metadata mismatch: {exc}")
            continue
        for problem in metadata_problems(artifact, doc):
            report.problems.append(f"metadata mismatch: {where}: {problem}")
        blob = (repo.root / artifact.module.path).read_bytes()
        problem = embedded_problem(blob, doc, where=source.display(artifact.module.path))
        if problem:
            report.problems.append(f"metadata mismatch: {source.display(artifact.module.path)}: {problem}")
        if (signature_info(blob) is not None) != artifact.kernel_signature:
            report.problems.append(f"metadata mismatch: {source.display(artifact.module.path)}: kernel_signature "
                                   f"is {str(artifact.kernel_signature).lower()} in the index")
    folder = repo.root / ARTIFACT_DIR
    if folder.is_dir():
        stray = sorted(str(p.relative_to(repo.root)) for p in folder.rglob("*")
                       if p.is_file() and str(p.relative_to(repo.root)) not in referenced)
        if stray:
            report.notes.append(f"{len(stray)} file(s) under {ARTIFACT_DIR}/ are in no index (left by an "
                                f"interrupted add, harmless): {', '.join(stray[:3])}" + (" ..." if len(stray) > 3 else ""))
    remaining = verified.index.expires_at - (now or utcnow())
    if remaining < timedelta(days=3):
        report.notes.append(f"the index expires in {format_duration(remaining)}: run kbuild repo refresh")
    return report
