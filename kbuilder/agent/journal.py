"""The agent's state: a small append-only journal.

`STATE_DIR/journal.jsonl` holds one JSON record a line, each with a
sequence number and a checksum, written with fsync before the agent acts
on it. The state is what replaying the records gives (`AgentState`).

The rule that keeps the agent honest: it records *intent* (`begin`) before
it touches the kernel and *facts* (`loaded`, `unloaded`) only after the
kernel shows them, and every command first reconciles the state with
sysfs (kbuilder.agent.agent.Agent.reconcile): an intent without its fact is
settled by what the kernel shows, and an installed module that the kernel
no longer shows is dropped. So a crash at any point never leaves the agent
believing a module is loaded that is not.

A torn last line (a crash while appending) is ignored; a damaged line
before the last is refused (StateCorrupt). When the journal grows past
COMPACT_AFTER records it is replaced, atomically, by one `snapshot`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.agent.errors import StateCorrupt
from kbuilder.repository.durable import fsync_dir, write_durable
from kbuilder.repository.index import format_time, utcnow

JOURNAL = "journal.jsonl"
COMPACT_AFTER = 200
HISTORY_KEEP = 32


def _check(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "check"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(slots=True)
class AgentState:
    """installed: kernel module name -> the artifact record of a module the
    agent loaded and the kernel showed loaded. pending: the intent of an
    unfinished action. history: past loads, oldest first. seen: repository
    id -> highest index version accepted. settings: overrides of the
    configuration (`pinned_level`, `auto_update`) set by agent pin and
    agent auto-update."""

    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"installed": copy.deepcopy(self.installed), "pending": copy.deepcopy(self.pending),
                "history": copy.deepcopy(self.history), "seen": dict(self.seen),
                "settings": copy.deepcopy(self.settings)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentState:
        return cls(dict(data.get("installed", {})), data.get("pending"), list(data.get("history", [])),
                   dict(data.get("seen", {})), dict(data.get("settings", {})))

    def apply(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "snapshot":
            fresh = AgentState.from_json(record["state"])
            self.installed, self.pending, self.history = fresh.installed, fresh.pending, fresh.history
            self.seen, self.settings = fresh.seen, fresh.settings
        elif op == "index":
            self.seen[record["repository"]] = max(record["version"], self.seen.get(record["repository"], 0))
        elif op == "begin":
            self.pending = {k: record[k] for k in ("action", "module", "artifact") if k in record}
        elif op == "loaded":
            artifact = dict(record["artifact"], loaded_at=record["time"])
            self.installed[record["module"]] = artifact
            self.history.append(artifact)
            del self.history[:-HISTORY_KEEP]
            self.pending = None
        elif op in ("unloaded", "vanished"):
            self.installed.pop(record["module"], None)
            self.pending = None if op == "unloaded" else self.pending
        elif op == "failed":
            self.pending = None
        elif op == "setting":
            if record.get("clear"):
                self.settings.pop(record["key"], None)
            else:
                self.settings[record["key"]] = record["value"]
        else:
            raise StateCorrupt(f"unknown journal operation {op!r}")


class Journal:
    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / JOURNAL

    def records(self) -> list[dict[str, Any]]:
        return self._read()[0]

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        """The good records and the byte length they span (a torn tail is left out)."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return [], 0
        except OSError as exc:
            raise StateCorrupt(f"cannot read the agent journal: {exc.strerror}", path=str(self.path)) from None
        out: list[dict[str, Any]] = []
        good_end = 0
        offset = 0
        n = 0
        while offset < len(text):
            n += 1
            newline = text.find(b"\n", offset)
            end = len(text) if newline < 0 else newline + 1
            line = text[offset:end]
            offset = end
            if not line.strip():
                good_end = end if good_end == end - len(line) else good_end
                continue
            try:
                record = json.loads(line)
                ok = newline >= 0 and isinstance(record, dict) and record.get("check") == _check(record) \
                    and "op" in record
            except (json.JSONDecodeError, UnicodeDecodeError):
                ok = False
            if not ok:
                if not text[offset:].strip():
                    break        # torn by a crash while appending: the action it announced never started
                raise StateCorrupt(f"line {n} of the agent journal is damaged (move it away to start afresh; the "
                                   "kernel's state is in /sys/kernel/livepatch)", path=str(self.path))
            out.append(record)
            good_end = end
        return out, good_end

    def state(self) -> AgentState:
        state = AgentState()
        for record in self.records():
            state.apply(record)
        return state

    def append(self, op: str, **fields: Any) -> dict[str, Any]:
        records, good_end = self._read()
        seq = records[-1]["seq"] + 1 if records else 1
        record = {"seq": seq, "time": format_time(utcnow()), "op": op, **fields}
        record["check"] = _check(record)
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != good_end:
                os.ftruncate(fd, good_end)      # drop a torn tail before appending after it
            os.lseek(fd, good_end, os.SEEK_SET)
            os.write(fd, json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if seq == 1:
            fsync_dir(self.dir)
        if len(records) + 1 > COMPACT_AFTER:
            self.compact()
        return record

    def compact(self) -> None:
        state = self.state()
        records = self.records()
        record = {"seq": records[-1]["seq"] + 1 if records else 1, "time": format_time(utcnow()), "op": "snapshot",
                  "state": state.to_json()}
        record["check"] = _check(record)
        write_durable(self.path, json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n",
                      mode=0o600)
