"""The agent: keeps the running kernel at the livepatch level its policy
asks for, from a signed repository (docs/agent.md).

    agent = Agent(load_config(path), SysfsKernel("/"))
    agent.status()              # kernel, loaded livepatches and their metadata, settings
    agent.check()               # the Decision, without changing anything
    agent.update(auto=False)    # verify, download, load, wait, record
    agent.rollback(to=None)     # the previous level (pins it)
    agent.unload_all()          # every livepatch the agent loaded (pins level 0)
    agent.pin(2) / agent.pin(None) / agent.pin("default")
    agent.set_auto_update(False)

Every command that changes something holds STATE_DIR/lock, first
reconciles the journal with sysfs, journals its intent before touching the
kernel and the outcome after the kernel shows it (kbuilder.agent.journal).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kbuilder.agent.config import AgentConfig
from kbuilder.agent.errors import AgentError, MetadataMismatch, UnsignedModule, WrongKernel
from kbuilder.agent.journal import AgentState, Journal
from kbuilder.agent.kernel import Kernel, KernelIdentity
from kbuilder.agent.policy import Decision, Policy, Step, artifact_record, decide
from kbuilder.errors import InputError
from kbuilder.metadata.plan import LoadedPatch
from kbuilder.repository.check import embedded_problem, metadata_problems, parse_metadata
from kbuilder.repository.client import Source, VerifiedIndex, download, fetch_bytes, fetch_index, open_source
from kbuilder.repository.durable import exclusive_lock, write_durable
from kbuilder.repository.errors import RepositoryError
from kbuilder.repository.index import Artifact, utcnow

UNSET = "default"
RMMOD_TRIES = 10


@dataclass(slots=True)
class Settings:
    pinned: int | None
    pinned_source: str
    auto_update: bool
    auto_source: str

    def to_json(self) -> dict[str, Any]:
        return {"pinned_level": self.pinned, "pinned_level_source": self.pinned_source,
                "auto_update": self.auto_update, "auto_update_source": self.auto_source}


class Agent:
    def __init__(self, config: AgentConfig, kernel: Kernel, *, state_dir: str | Path | None = None,
                 now: Callable[[], datetime] = utcnow, echo: Callable[[str], None] = lambda _: None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.kernel = kernel
        self.state_dir = Path(state_dir or config.state_dir)
        self.journal = Journal(self.state_dir)
        self.now = now
        self.echo = echo
        self.sleep = sleep
        self._metadata_cache: dict[str, dict[str, Any]] = {}

    # -- plumbing ---------------------------------------------------------

    @property
    def cache(self) -> Path:
        return self.state_dir / "modules"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise AgentError(f"cannot create the agent state directory {self.state_dir}: {exc.strerror} "
                             "(run as root, or give --state-dir)") from None
        try:
            with exclusive_lock(self.state_dir / "lock", f"the agent state {self.state_dir}"):
                yield
        except RepositoryError as exc:
            if "is busy" in exc.message:
                raise AgentError(exc.message) from None
            raise

    def settings(self, state: AgentState | None = None) -> Settings:
        state = state or self.journal.state()
        if "pinned_level" in state.settings:
            pinned, pinned_source = state.settings["pinned_level"], "agent pin"
        else:
            pinned, pinned_source = self.config.level, "configuration"
        if "auto_update" in state.settings:
            auto, auto_source = bool(state.settings["auto_update"]), "agent auto-update"
        else:
            auto, auto_source = self.config.auto_update, "configuration"
        return Settings(pinned, pinned_source, auto, auto_source)

    def _live(self) -> dict[str, LoadedPatch]:
        return {p.name: p for p in self.kernel.livepatches()}

    def reconcile(self, *, write: bool = True) -> tuple[AgentState, list[str]]:
        """Bring the journal in line with sysfs: settle an unfinished
        action by what the kernel shows, drop installed modules the kernel
        no longer shows. With write=False only the returned state changes."""
        state = self.journal.state()
        live = self._live()
        notes: list[str] = []

        def record(op: str, **fields: Any) -> None:
            entry = {"op": op, "time": "", **fields}
            if write:
                entry = self.journal.append(op, **fields)
            state.apply(entry)

        pending = state.pending
        if pending is not None:
            module = pending.get("module", "")
            patch = live.get(module)
            if pending.get("action") == "load":
                if patch is not None and patch.enabled and not patch.transition:
                    record("loaded", module=module, artifact=pending.get("artifact", {}))
                    notes.append(f"an interrupted run had loaded {module}: recorded")
                elif patch is not None and patch.transition:
                    notes.append(f"{module} is still in transition from an interrupted run")
                else:
                    record("failed", module=module, reason="not loaded after an interrupted run")
                    notes.append(f"an interrupted run did not load {module}: forgotten")
            else:
                if patch is None or not patch.enabled:
                    record("unloaded", module=module)
                    notes.append(f"an interrupted run had disabled {module}: recorded")
                else:
                    record("failed", module=module, reason="still loaded after an interrupted unload")
        for module in list(state.installed):
            patch = live.get(module)
            if patch is None or not patch.enabled:
                record("vanished", module=module)
                notes.append(f"{module} is no longer an enabled livepatch: forgotten")
        return state, notes

    def _leftovers(self, state: AgentState) -> set[str]:
        live = self._live()
        known = {h["module_name"] for h in state.history}
        return {m for m in known if m not in state.installed and self.kernel.module_loaded(m)
                and (m not in live or not live[m].enabled)}

    # -- status -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        state, notes = self.reconcile(write=False)
        identity = self.kernel.identity()
        patches = []
        for patch in self.kernel.livepatches():
            record = state.installed.get(patch.name)
            entry: dict[str, Any] = {"name": patch.name, "enabled": patch.enabled, "transition": patch.transition,
                                     "by_agent": record is not None}
            if record is not None:
                entry["artifact"] = record
                doc = self._cached_metadata(record)
                if doc is not None:
                    entry["metadata"] = doc
            patches.append(entry)
        return {"kernel": identity.to_json(), "livepatches": patches, "settings": self.settings(state).to_json(),
                "channel": self.config.channel, "repository": self.config.repository,
                "min_severity": self.config.min_severity, "min_age_seconds": int(self.config.min_age.total_seconds()),
                "seen": dict(state.seen), "pending": state.pending, "leftovers": sorted(self._leftovers(state)),
                "notes": notes}

    def _cached_metadata(self, record: dict[str, Any]) -> dict[str, Any] | None:
        path = self.cache / f"{record['sha256']}.json"
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(blob).hexdigest() != record.get("metadata_sha256"):
            return None
        try:
            return parse_metadata(blob, where=str(path))
        except InputError:
            return None

    # -- the repository ---------------------------------------------------

    def _source(self) -> Source:
        url, _ = self.config.need_repository()
        return open_source(url, timeout=self.config.timeout, ca_file=self.config.ca_file)

    def _index(self, source: Source, state: AgentState, *, record: bool) -> VerifiedIndex:
        _, keys = self.config.need_repository()
        verified = fetch_index(source, keys, seen=state.seen, now=self.now())
        index = verified.index
        if record and state.seen.get(index.repository, 0) < index.version:
            entry = self.journal.append("index", repository=index.repository, version=index.version,
                                        url=source.url)
            state.apply(entry)
        return verified

    def _policy(self, state: AgentState) -> Policy:
        return Policy(self.config.channel, self.config.series, self.settings(state).pinned, self.config.min_age,
                      self.config.min_severity)

    def _decide(self, verified: VerifiedIndex, state: AgentState, source: Source) -> Decision:
        def metadata(artifact: Artifact) -> dict[str, Any]:
            if artifact.sha256 not in self._metadata_cache:
                blob = fetch_bytes(source, artifact.metadata)
                self._metadata_cache[artifact.sha256] = parse_metadata(blob, where=source.display(artifact.metadata.path))
            return self._metadata_cache[artifact.sha256]

        return decide(verified.index, self.kernel.identity(), self._policy(state), state.installed, now=self.now(),
                      metadata=metadata, installed_metadata=self._cached_metadata, leftovers=self._leftovers(state))

    # -- check / update ---------------------------------------------------

    def check(self) -> tuple[Decision, VerifiedIndex]:
        """What update would do; changes nothing (not even the journal)."""
        state, _ = self.reconcile(write=False)
        source = self._source()
        verified = self._index(source, state, record=False)
        return self._decide(verified, state, source), verified

    def update(self, *, auto: bool = False) -> Decision:
        with self._locked():
            state, notes = self.reconcile()
            for note in notes:
                self.echo(f"note: {note}")
            settings = self.settings(state)
            if auto and not settings.auto_update:
                return Decision([], f"automatic updates are off ({settings.auto_source}): nothing done")
            self._clean_tmp()
            source = self._source()
            verified = self._index(source, state, record=True)
            decision = self._decide(verified, state, source)
            self._execute(decision, source)
            return decision

    def _execute(self, decision: Decision, source: Source | None) -> None:
        for step in decision.steps:
            if step.action == "load":
                assert step.artifact is not None
                if source is None:
                    raise AgentError("internal: a load step without a repository")
                path = self._fetch(step.artifact, source)
                self._load(path, artifact_record(step.artifact))
            else:
                self._unload(step.module, step.reason)
            self.echo(f"{step.action}ed {step.artifact.name if step.artifact else step.module}"
                      + (f" ({step.reason})" if step.reason else ""))

    def _clean_tmp(self) -> None:
        tmp = self.state_dir / "tmp"
        if tmp.is_dir():
            for stale in tmp.glob(".download-*.part"):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _fetch(self, artifact: Artifact, source: Source) -> Path:
        """Download, verify and cache the module; returns the cached path."""
        from kbuilder.kernel.vm import modinfo
        from kbuilder.repository.modsign import signature_info

        identity = self.kernel.identity()
        tmp = download(source, artifact.module, self.state_dir / "tmp")
        try:
            meta_blob = fetch_bytes(source, artifact.metadata)
            where = source.display(artifact.metadata.path)
            doc = parse_metadata(meta_blob, where=where)
            problems = metadata_problems(artifact, doc)
            if problems:
                raise MetadataMismatch(problems[0], path=where)
            problem = embedded_problem(tmp.read_bytes(), doc, where=source.display(artifact.module.path))
            if problem:
                raise MetadataMismatch(problem, path=source.display(artifact.module.path))
            self._check_target(doc["target"], identity, artifact.name)
            if self.config.require_module_signature and signature_info(tmp.read_bytes()) is None:
                raise UnsignedModule(f"{artifact.name} carries no kernel module signature; the policy "
                                     "(require_module_signature) needs one", path=source.display(artifact.module.path))
            info = modinfo(tmp)
            if info.get("name") and info["name"] != artifact.module_name:
                raise MetadataMismatch(f".modinfo names the module {info['name']!r}, the index {artifact.module_name!r}",
                                       path=source.display(artifact.module.path))
            self.cache.mkdir(parents=True, exist_ok=True)
            write_durable(self.cache / f"{artifact.sha256}.json", meta_blob, mode=0o600)
            final = self.cache / f"{artifact.sha256}.ko"
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return final

    @staticmethod
    def _check_target(target: dict[str, Any], identity: KernelIdentity, name: str) -> None:
        if (target.get("kernel_release"), target.get("vmlinux_build_id"), target.get("arch")) != \
                (identity.release, identity.build_id, identity.arch):
            raise WrongKernel(f"{name} targets {target.get('kernel_release')} {target.get('arch')} build id "
                              f"{target.get('vmlinux_build_id')}; this kernel is {identity.describe()}")

    def _load(self, path: Path, record: dict[str, Any]) -> None:
        module = record["module_name"]
        self.journal.append("begin", action="load", module=module, artifact=record)
        try:
            self.kernel.load(path)
        except AgentError as exc:
            self.journal.append("failed", module=module, reason=exc.message)
            raise
        timeout = self.config.transition_timeout
        if not self.kernel.wait_transition(module, timeout):
            # Writing 0 during the transition reverses it (livepatch.rst).
            with contextlib.suppress(AgentError):
                self.kernel.disable(module)
            self.kernel.wait_transition(module, timeout)
            with contextlib.suppress(AgentError):
                self._rmmod(module)
            self.journal.append("failed", module=module, reason="transition timed out")
            raise AgentError(f"the transition of {module} did not finish in {timeout:g} s (a task sleeping in a "
                             "patched function?): reversed; try again later")
        patch = self._live().get(module)
        if patch is None or not patch.enabled:
            self.journal.append("failed", module=module, reason="not an enabled livepatch after loading")
            raise AgentError(f"{module} loaded but is not an enabled livepatch in /sys/kernel/livepatch")
        self.journal.append("loaded", module=module, artifact=record)

    def _rmmod(self, module: str) -> None:
        for attempt in range(RMMOD_TRIES):
            if not self.kernel.module_loaded(module):
                return
            try:
                self.kernel.unload(module)
                return
            except AgentError:
                # The kernel frees a disabled or replaced patch asynchronously;
                # until then rmmod says the module is in use.
                if attempt == RMMOD_TRIES - 1:
                    raise
                self.sleep(0.2 * (attempt + 1))

    def _unload(self, module: str, reason: str = "") -> None:
        patch = self._live().get(module)
        self.journal.append("begin", action="unload", module=module)
        if patch is not None and patch.enabled:
            self.kernel.disable(module)
            if not self.kernel.wait_transition(module, self.config.transition_timeout):
                self.journal.append("failed", module=module, reason="disable transition timed out")
                raise AgentError(f"disabling {module} did not finish in {self.config.transition_timeout:g} s; the "
                                 "kernel goes on with it: run the command again later")
        try:
            self._rmmod(module)
        except AgentError:
            self.journal.append("unloaded", module=module)    # disabled, which is what matters
            raise
        self.journal.append("unloaded", module=module)

    # -- rollback / unload / settings --------------------------------------

    def rollback(self, to: int | None = None) -> Decision:
        with self._locked():
            state, _ = self.reconcile()
            identity = self.kernel.identity()
            installed = sorted(state.installed.values(), key=lambda r: r.get("loaded_at", ""))
            current = installed[-1] if installed else None
            if current is not None and current.get("kind") == "incremental":
                return self._rollback_incremental(state, to)
            current_level = current.get("level") if current else None
            if to is None:
                earlier = [h for h in reversed(state.history) if h.get("kind") == "cumulative"
                           and isinstance(h.get("level"), int) and current_level is not None
                           and h["level"] < current_level and h.get("target") == identity.to_json()]
                if current is None or not earlier:
                    raise AgentError("nothing to roll back to: the agent's history has no lower level for this "
                                     "kernel (use --to LEVEL, or agent unload --all)")
                to = int(earlier[0]["level"])
            if to == 0:
                decision = self._unload_everything(state, "rollback to level 0")
            elif current_level == to:
                decision = Decision([], f"nothing to do: level {to} is loaded")
            else:
                decision = self._rollback_to(state, identity, to, current_level)
            entry = self.journal.append("setting", key="pinned_level", value=to)
            state.apply(entry)
            decision.notes.append(f"pinned to level {to} so that updates keep it (agent pin none resumes them)")
            return decision

    def _rollback_to(self, state: AgentState, identity: KernelIdentity, level: int, current: int | None) -> Decision:
        record = None
        path = None
        for h in reversed(state.history):
            if h.get("kind") == "cumulative" and h.get("level") == level and h.get("target") == identity.to_json():
                candidate = self.cache / f"{h['sha256']}.ko"
                if candidate.is_file() and _sha256(candidate) == h["sha256"]:
                    record, path = {k: v for k, v in h.items() if k != "loaded_at"}, candidate
                    break
        source = None
        artifact = None
        if record is None:
            source = self._source()
            verified = self._index(source, state, record=True)
            found = [a for a in verified.index.artifacts if a.kind == "cumulative" and a.level == level
                     and a.target == identity.to_json() and verified.index.visible(a, self.config.channel)
                     and (self.config.series is None or a.series == self.config.series)]
            if not found:
                raise AgentError(f"level {level} is neither in the agent's cache nor in channel {self.config.channel} "
                                 "for this kernel")
            artifact = found[-1]
            record = artifact_record(artifact)
        verb = f"roll back from level {current} to {level}" if current is not None else f"load level {level}"
        steps = [Step("load", record["module_name"], artifact, verb)]
        steps += [Step("unload", m, None, f"replaced by level {level}") for m in state.installed
                  if m != record["module_name"]]
        steps += [Step("unload", m, None, "left loaded after it was replaced")
                  for m in sorted(self._leftovers(state) - set(state.installed) - {record["module_name"]})]
        if record["module_name"] in self._leftovers(state):
            steps.insert(0, Step("unload", record["module_name"], None, "still loaded from an earlier run"))
        for step in steps:
            if step.action == "load":
                if path is None:
                    assert artifact is not None and source is not None
                    path = self._fetch(artifact, source)
                self._check_target(record["target"], identity, record["name"])
                self._load(path, record)
                self.echo(f"loaded {record['name']} ({step.reason})")
            else:
                self._unload(step.module, step.reason)
                self.echo(f"unloaded {step.module} ({step.reason})")
        return Decision(steps, verb)

    def _rollback_incremental(self, state: AgentState, to: int | None) -> Decision:
        stack = sorted((r for r in state.installed.values() if r.get("kind") == "incremental"),
                       key=lambda r: r.get("level") or 0)
        if to is None:
            to = (stack[-1].get("level") or 1) - 1
        steps = [Step("unload", r["module_name"], None, f"above position {to}") for r in reversed(stack)
                 if (r.get("level") or 0) > to]
        for step in steps:
            self._unload(step.module, step.reason)
            self.echo(f"unloaded {step.module} ({step.reason})")
        entry = self.journal.append("setting", key="pinned_level", value=to)
        state.apply(entry)
        return Decision(steps, f"roll back to position {to}",
                        [f"pinned to position {to} so that updates keep it (agent pin none resumes them)"])

    def _unload_everything(self, state: AgentState, reason: str) -> Decision:
        order = sorted(state.installed.values(), key=lambda r: r.get("loaded_at", ""), reverse=True)
        steps = [Step("unload", r["module_name"], None, reason) for r in order]
        steps += [Step("unload", m, None, "left loaded after it was replaced or disabled")
                  for m in sorted(self._leftovers(state) - set(state.installed))]
        for step in steps:
            self._unload(step.module, step.reason)
            self.echo(f"unloaded {step.module} ({step.reason})")
        return Decision(steps, "unloaded every livepatch of the agent" if steps else
                        "nothing to do: the agent has no livepatch loaded")

    def unload_all(self) -> Decision:
        with self._locked():
            state, _ = self.reconcile()
            decision = self._unload_everything(state, "unload --all")
            entry = self.journal.append("setting", key="pinned_level", value=0)
            state.apply(entry)
            foreign = [p.name for p in self.kernel.livepatches() if p.name not in state.installed]
            if foreign:
                decision.notes.append("not loaded by the agent, left alone: " + ", ".join(foreign))
            decision.notes.append("pinned to level 0 so that updates do not load them again (agent pin none "
                                  "resumes them)")
            return decision

    def pin(self, level: int | None | str) -> Settings:
        with self._locked():
            if level == UNSET:
                self.journal.append("setting", key="pinned_level", clear=True)
            else:
                if level is not None and (not isinstance(level, int) or level < 0):
                    raise AgentError(f"a level is a number of 0 or more, 'none' or 'default', not {level!r}")
                self.journal.append("setting", key="pinned_level", value=level)
            return self.settings()

    def set_auto_update(self, on: bool | str) -> Settings:
        with self._locked():
            if on == UNSET:
                self.journal.append("setting", key="auto_update", clear=True)
            else:
                self.journal.append("setting", key="auto_update", value=bool(on))
            return self.settings()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()

