"""The repository index (format `kbuilder-repo-index/1`, docs/repository.md).

`index.json` is canonical JSON (sorted keys, no whitespace, UTF-8) of:

    {"format": "kbuilder-repo-index/1",
     "repository": "<random id fixed at init>",
     "version": 7,                          # +1 on every write
     "generated": "2026-05-01T12:00:00Z",
     "expires": "2026-05-31T12:00:00Z",
     "channels": ["dev", "prod"],           # least to most stable
     "artifacts": [ARTIFACT, ...]}

and each ARTIFACT says what a client needs to choose and check a module
without downloading it (see `Artifact`). Times are UTC, to the second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kbuilder.metadata.cvss import SEVERITIES
from kbuilder.repository.errors import MalformedIndex

INDEX_FORMAT = "kbuilder-repo-index/1"
INDEX_FILE = "index.json"
SIGNATURE_FILE = "index.json.sig"
ARTIFACT_DIR = "artifacts"
KEYS_DIR = "keys"
MAX_INDEX_SIZE = 16 * 1024 * 1024

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]*$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_PATH = re.compile(r"^artifacts/[0-9a-f]{64}/[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; naive ones are taken as UTC. ValueError otherwise."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def parse_duration(text: str | int) -> timedelta:
    """`90`, `90s`, `15m`, `12h`, `2d`, `1w`. ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int):
        return timedelta(seconds=text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 90s, 15m, 12h, 2d, 1w)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FileRef:
    """A file of the tree: its path (relative to the root), sha256, size."""

    path: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(slots=True)
class Artifact:
    """One module and its metadata document.

    `name` is the file stem (livepatch-demo-2), `module_name` the kernel's
    name (livepatch_demo_2). `target`, `mode`, `replace` and `max_severity`
    are copied from the metadata. `channel` is the most stable channel it
    has reached and `history` when it entered each one."""

    name: str
    module_name: str
    module: FileRef
    kernel_signature: bool
    metadata: FileRef
    target: dict[str, str]
    mode: dict[str, Any]
    replace: bool
    max_severity: str | None
    channel: str
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return self.module.sha256

    @property
    def kind(self) -> str:
        return str(self.mode.get("kind"))

    @property
    def series(self) -> str | None:
        value = self.mode.get("series")
        return value if isinstance(value, str) else None

    @property
    def level(self) -> int | None:
        """The cumulative level, or the incremental position."""
        value = self.mode.get("level" if self.kind == "cumulative" else "position")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def label(self) -> str:
        where = f"{self.target.get('kernel_release')} build {self.target.get('vmlinux_build_id', '')[:12]}"
        return f"{self.name} ({where})"

    def since(self, channel: str) -> datetime | None:
        for entry in self.history:
            if entry["channel"] == channel:
                return parse_time(entry["since"])
        return None

    def to_json(self) -> dict[str, Any]:
        module = self.module.to_json()
        module["kernel_signature"] = self.kernel_signature
        return {"name": self.name, "module_name": self.module_name, "module": module,
                "metadata": self.metadata.to_json(), "target": dict(self.target), "mode": dict(self.mode),
                "replace": self.replace, "max_severity": self.max_severity, "channel": self.channel,
                "history": [dict(h) for h in self.history]}


@dataclass(slots=True)
class Index:
    repository: str
    version: int
    generated: str
    expires: str
    channels: list[str]
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def expires_at(self) -> datetime:
        return parse_time(self.expires)

    def rank(self, channel: str) -> int:
        """0 for the least stable channel."""
        try:
            return self.channels.index(channel)
        except ValueError:
            raise ValueError(f"unknown channel {channel!r} (the repository has {', '.join(self.channels)})") \
                from None

    def visible(self, artifact: Artifact, channel: str) -> bool:
        """An artifact is in `channel` once it reached that channel or a more stable one."""
        return self.rank(artifact.channel) >= self.rank(channel)

    def available_since(self, artifact: Artifact, channel: str) -> datetime | None:
        """When the artifact entered `channel` or, if added above it, the
        first channel above it that it entered."""
        floor = self.rank(channel)
        times = [parse_time(h["since"]) for h in artifact.history
                 if h["channel"] in self.channels and self.rank(h["channel"]) >= floor]
        return min(times) if times else None

    def sort(self) -> None:
        self.artifacts.sort(key=lambda a: (a.target.get("kernel_release", ""), a.target.get("vmlinux_build_id", ""),
                                           a.target.get("arch", ""), a.series or "", a.kind, a.level or 0, a.name,
                                           a.sha256))

    def to_json(self) -> dict[str, Any]:
        return {"format": INDEX_FORMAT, "repository": self.repository, "version": self.version,
                "generated": self.generated, "expires": self.expires, "channels": list(self.channels),
                "artifacts": [a.to_json() for a in self.artifacts]}

    def to_bytes(self) -> bytes:
        from kbuilder.metadata.model import canonical_json

        return canonical_json(self.to_json())


# ---------------------------------------------------------------------------
# Parsing (the bytes were verified against a signature before this)
# ---------------------------------------------------------------------------

class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, why: str) -> MalformedIndex:
        return MalformedIndex(f"{at} {why}", path=self.where)

    def obj(self, value: Any, at: str, keys: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if not isinstance(value, dict):
            raise self.fail(at, "is not an object")
        missing = keys - set(value)
        if missing:
            raise self.fail(at, "lacks " + ", ".join(sorted(missing)))
        extra = set(value) - keys - optional
        if extra:
            raise self.fail(at, "has unknown members " + ", ".join(sorted(extra)))
        return value

    def str_(self, value: Any, at: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self.fail(at, f"is not a valid value ({value!r})")
        return value

    def int_(self, value: Any, at: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(at, f"is not an integer of at least {minimum} ({value!r})")
        return value

    def time(self, value: Any, at: str) -> str:
        text = self.str_(value, at)
        try:
            parse_time(text)
        except ValueError:
            raise self.fail(at, f"is not an ISO 8601 time ({text!r})") from None
        return text

    def ref(self, value: Any, at: str, extra: set[str] = frozenset()) -> FileRef:  # type: ignore[assignment]
        data = self.obj(value, at, {"path", "sha256", "size"}, extra)
        return FileRef(self.str_(data["path"], f"{at}.path", _PATH),
                       self.str_(data["sha256"], f"{at}.sha256", _HEX64),
                       self.int_(data["size"], f"{at}.size", 1))


def parse_index(blob: bytes, *, where: str = INDEX_FILE) -> Index:
    import json

    check = _Checker(where)
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedIndex(f"not JSON: {exc}", path=where) from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise MalformedIndex(f"format is {found!r}, expected {INDEX_FORMAT!r}", path=where)
    check.obj(data, "the index", {"format", "repository", "version", "generated", "expires", "channels",
                                  "artifacts"})
    channels = data["channels"]
    if not isinstance(channels, list) or not channels or len(set(map(str, channels))) != len(channels):
        raise check.fail("channels", "must be a non-empty list of distinct names")
    for n, name in enumerate(channels):
        check.str_(name, f"channels[{n}]", _CHANNEL)
    if not isinstance(data["artifacts"], list):
        raise check.fail("artifacts", "is not a list")
    index = Index(check.str_(data["repository"], "repository", re.compile(r"^[0-9a-f]{8,64}$")),
                  check.int_(data["version"], "version", 1), check.time(data["generated"], "generated"),
                  check.time(data["expires"], "expires"), list(channels))
    for n, raw in enumerate(data["artifacts"]):
        index.artifacts.append(_artifact(check, raw, f"artifacts[{n}]", channels))
    return index


def _artifact(check: _Checker, raw: Any, at: str, channels: list[str]) -> Artifact:
    data = check.obj(raw, at, {"name", "module_name", "module", "metadata", "target", "mode", "replace",
                               "max_severity", "channel", "history"})
    module = check.ref(data["module"], f"{at}.module", {"kernel_signature"})
    signed = data["module"].get("kernel_signature", False)
    if not isinstance(signed, bool):
        raise check.fail(f"{at}.module.kernel_signature", "is not true or false")
    target = check.obj(data["target"], f"{at}.target", {"kernel_release", "vmlinux_build_id", "arch"})
    for key in ("kernel_release", "arch"):
        check.str_(target[key], f"{at}.target.{key}", re.compile(r"^\S+$"))
    check.str_(target["vmlinux_build_id"], f"{at}.target.vmlinux_build_id", _HEX)
    mode = data["mode"]
    if not isinstance(mode, dict) or mode.get("kind") not in ("cumulative", "incremental"):
        raise check.fail(f"{at}.mode", "is not a cumulative or incremental mode")
    severity = data["max_severity"]
    if severity is not None and severity not in SEVERITIES:
        raise check.fail(f"{at}.max_severity", f"is not one of {', '.join(SEVERITIES)} or null")
    channel = check.str_(data["channel"], f"{at}.channel")
    if channel not in channels:
        raise check.fail(f"{at}.channel", f"{channel!r} is not one of the index's channels")
    history = data["history"]
    if not isinstance(history, list) or not history:
        raise check.fail(f"{at}.history", "must list when the artifact entered each channel")
    for n, entry in enumerate(history):
        item = check.obj(entry, f"{at}.history[{n}]", {"channel", "since"})
        if item["channel"] not in channels:
            raise check.fail(f"{at}.history[{n}].channel", f"{item['channel']!r} is not a channel of the index")
        check.time(item["since"], f"{at}.history[{n}].since")
    if not isinstance(data["replace"], bool):
        raise check.fail(f"{at}.replace", "is not true or false")
    return Artifact(check.str_(data["name"], f"{at}.name", _NAME),
                    check.str_(data["module_name"], f"{at}.module_name", _NAME), module, signed,
                    check.ref(data["metadata"], f"{at}.metadata"), dict(target), dict(mode), data["replace"],
                    severity, channel, [dict(h) for h in history])
