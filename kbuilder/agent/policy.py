"""What the agent would do: from a verified index, the running kernel,
the policy and what is loaded, the steps to take (nothing is done here).

Cumulative series (the usual case): the target is the pinned level, or
else the highest level that has been in the agent's channel (or a more
stable one) for at least `min_age`; one `load` replaces whatever is loaded
(atomic replace), then the replaced modules are unloaded. Without a pin the
agent never goes down by itself, and an upgrade whose new fixes (those the
loaded level does not have) are all below `min_severity` is refused.

Incremental series: the modules stack in position order; each must find
the modules it `requires` loaded or loaded before it, else the plan is
refused (dependency missing); a stack that differs from the target is
unwound from the top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kbuilder.agent.errors import AgentError, DependencyMissing, SeverityBelowPolicy, WrongKernel
from kbuilder.agent.kernel import KernelIdentity
from kbuilder.metadata.cvss import severity_rank
from kbuilder.repository.index import Artifact, Index, format_time

MetadataOf = Callable[[Artifact], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Policy:
    channel: str
    series: str | None = None
    pinned: int | None = None
    min_age: timedelta = timedelta(0)
    min_severity: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    action: str                    # "load" or "unload" (unload disables first when needed)
    module: str                    # the kernel's module name
    artifact: Artifact | None = None
    reason: str = ""

    def __str__(self) -> str:
        what = f"{self.action} {self.artifact.name if self.artifact else self.module}"
        return f"{what}  # {self.reason}" if self.reason else what

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "module": self.module, "reason": self.reason}
        if self.artifact is not None:
            out["artifact"] = {"name": self.artifact.name, "sha256": self.artifact.sha256,
                               "level": self.artifact.level, "kind": self.artifact.kind}
        return out


@dataclass(slots=True)
class Decision:
    steps: list[Step] = field(default_factory=list)
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    target: Artifact | None = None

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "notes": list(self.notes), "steps": [s.to_json() for s in self.steps],
                "target": None if self.target is None else self.target.to_json()}


def artifact_record(artifact: Artifact) -> dict[str, Any]:
    """What the journal keeps of an installed artifact."""
    return {"name": artifact.name, "module_name": artifact.module_name, "sha256": artifact.sha256,
            "size": artifact.module.size, "metadata_sha256": artifact.metadata.sha256, "kind": artifact.kind,
            "level": artifact.level, "series": artifact.series, "target": dict(artifact.target),
            "max_severity": artifact.max_severity, "channel": artifact.channel,
            "requires": [r.get("module") for r in artifact.mode.get("requires", [])]}


def _fix_key(fix: dict[str, Any]) -> tuple[str, str]:
    return (str(fix.get("id") or fix.get("description") or ""), str(fix.get("patch") or ""))


def new_fixes_severity(target: dict[str, Any], current: dict[str, Any] | None) -> str | None:
    """The highest severity among the fixes of `target` that `current` does not have."""
    have = {_fix_key(f) for f in (current or {}).get("fixes", [])}
    fresh = [f["severity"] for f in target.get("fixes", []) if _fix_key(f) not in have and f.get("severity")]
    return max(fresh, key=severity_rank) if fresh else None


def below(severity: str | None, floor: str | None) -> bool:
    return floor is not None and (severity is None or severity_rank(severity) < severity_rank(floor))


def decide(index: Index, kernel: KernelIdentity, policy: Policy, installed: dict[str, dict[str, Any]], *,
           now: datetime, metadata: MetadataOf, installed_metadata: Callable[[dict[str, Any]], dict[str, Any] | None],
           leftovers: set[str] = frozenset()) -> Decision:  # type: ignore[assignment]
    if policy.channel not in index.channels:
        raise AgentError(f"channel {policy.channel!r} is not in the repository (it has {', '.join(index.channels)})")
    if not kernel.build_id:
        raise WrongKernel(f"cannot read the build id of the running kernel ({kernel.release}) from "
                          "/sys/kernel/notes: no artifact can be matched to it")
    ours = {"kernel_release": kernel.release, "vmlinux_build_id": kernel.build_id, "arch": kernel.arch}
    visible = [a for a in index.artifacts if index.visible(a, policy.channel)]
    mine = [a for a in visible if a.target == ours]
    if policy.series is not None:
        mine = [a for a in mine if a.series == policy.series]
    series = sorted({a.series or "" for a in mine})
    if len(series) > 1:
        current_series = {r.get("series") or "" for r in installed.values()}
        if len(current_series & set(series)) == 1:
            chosen = (current_series & set(series)).pop()
            mine = [a for a in mine if (a.series or "") == chosen]
        else:
            raise AgentError(f"several series target this kernel in channel {policy.channel} "
                             f"({', '.join(s or '(none)' for s in series)}): set series in the agent configuration")
    if not mine:
        return _nothing_for_kernel(visible, kernel, policy, installed, leftovers)
    if any(a.kind == "cumulative" for a in mine):
        return _cumulative([a for a in mine if a.kind == "cumulative"], index, policy, installed, now=now,
                           metadata=metadata, installed_metadata=installed_metadata, leftovers=leftovers)
    return _incremental(mine, index, policy, installed, now=now, leftovers=leftovers)


def _unload_all(installed: dict[str, dict[str, Any]], leftovers: set[str], reason: str) -> list[Step]:
    order = sorted(installed.values(), key=lambda r: r.get("loaded_at", ""), reverse=True)
    steps = [Step("unload", r["module_name"], None, reason) for r in order]
    steps += [Step("unload", m, None, "left loaded after it was replaced or disabled")
              for m in sorted(leftovers - set(installed))]
    return steps


def _nothing_for_kernel(visible: list[Artifact], kernel: KernelIdentity, policy: Policy,
                        installed: dict[str, dict[str, Any]], leftovers: set[str]) -> Decision:
    if policy.pinned == 0:
        steps = _unload_all(installed, leftovers, "pinned level 0")
        return Decision(steps, "pinned level 0: no livepatch" if not steps else "pinned level 0: unload everything")
    near = [a for a in visible if a.target.get("kernel_release") == kernel.release
            and a.target.get("arch") == kernel.arch and (policy.series is None or a.series == policy.series)]
    if near:
        other = near[-1]
        raise WrongKernel(f"no artifact in channel {policy.channel} targets this kernel ({kernel.describe()}); "
                          f"{other.name} is for {kernel.release} build id {other.target['vmlinux_build_id']}, a "
                          "different build")
    if policy.pinned is not None:
        raise AgentError(f"pinned level {policy.pinned} is not available in channel {policy.channel} for this "
                         f"kernel ({kernel.describe()}): the repository has nothing for it")
    return Decision([], f"nothing to do: no livepatch in channel {policy.channel} for this kernel "
                        f"({kernel.describe()})")


def _age_ok(index: Index, artifact: Artifact, policy: Policy, now: datetime) -> tuple[bool, datetime | None]:
    since = index.available_since(artifact, policy.channel)
    if since is None:
        return False, None
    ready_at = since + policy.min_age
    return now >= ready_at, ready_at


def _cumulative(artifacts: list[Artifact], index: Index, policy: Policy, installed: dict[str, dict[str, Any]], *,
                now: datetime, metadata: MetadataOf,
                installed_metadata: Callable[[dict[str, Any]], dict[str, Any] | None],
                leftovers: set[str]) -> Decision:
    current = max((r for r in installed.values() if r.get("kind") == "cumulative"),
                  key=lambda r: r.get("loaded_at", ""), default=None)
    current_level = current.get("level") if current else None
    by_level: dict[int, Artifact] = {}
    for a in artifacts:
        if a.level is not None:
            by_level[a.level] = a
    decision = Decision()
    if policy.pinned == 0:
        decision.steps = _unload_all(installed, leftovers, "pinned level 0")
        decision.summary = "pinned level 0: unload every livepatch of the agent" if decision.steps else \
            "nothing to do: pinned level 0 and no livepatch loaded"
        return decision
    if policy.pinned is not None:
        if policy.pinned not in by_level:
            have = ", ".join(str(n) for n in sorted(by_level)) or "none"
            raise AgentError(f"pinned level {policy.pinned} is not available in channel {policy.channel} for this "
                             f"kernel (available: {have})")
        target = by_level[policy.pinned]
        why = f"pinned level {policy.pinned}"
    else:
        ready, waiting = [], []
        for a in by_level.values():
            ok, ready_at = _age_ok(index, a, policy, now)
            (ready if ok else waiting).append((a, ready_at))
        best = max((a for a, _ in ready), key=lambda a: a.level or 0, default=None)
        for a, ready_at in sorted(waiting, key=lambda x: x[0].level or 0):
            if best is None or (a.level or 0) > (best.level or 0):
                decision.notes.append(f"level {a.level} ({a.name}) waits for the minimum age: applied from "
                                      f"{format_time(ready_at) if ready_at else 'never'}")
        if best is None:
            decision.summary = "nothing to do: " + (decision.notes[0] if decision.notes else "no level is ready")
            return decision
        target = best
        why = f"newest level in channel {policy.channel}"
        if current_level is not None and (target.level or 0) < current_level:
            decision.summary = (f"nothing to do: level {current_level} is loaded, newer than level {target.level}, "
                                f"the newest in channel {policy.channel} (agent pin {target.level} goes down)")
            return decision
    decision.target = target
    if current is not None and current["sha256"] == target.sha256:
        decision.steps = [Step("unload", m, None, "left loaded after it was replaced or disabled")
                          for m in sorted(leftovers - {target.module_name})]
        decision.summary = f"nothing to do: level {target.level} ({target.name}) is loaded" + \
            (" (pinned)" if policy.pinned is not None else "")
        return decision
    upgrade = current_level is None or (target.level or 0) > current_level
    if upgrade and policy.pinned is None and policy.min_severity is not None:
        severity = new_fixes_severity(metadata(target), installed_metadata(current) if current else None)
        if below(severity, policy.min_severity):
            raise SeverityBelowPolicy(f"{target.name} (level {target.level}) brings fixes of severity "
                                      f"{(severity or 'none').lower()}; the policy needs "
                                      f"{policy.min_severity.lower()} or above")
    if current is None:
        verb = f"load level {target.level}"
    else:
        verb = f"{'upgrade' if upgrade else 'downgrade'} from level {current_level} to {target.level}"
    if target.module_name in leftovers:
        decision.steps.append(Step("unload", target.module_name, None, "still loaded from an earlier run"))
    decision.steps.append(Step("load", target.module_name, target, f"{verb} ({why})"))
    for record in sorted(installed.values(), key=lambda r: r.get("loaded_at", ""), reverse=True):
        if record["module_name"] != target.module_name:
            decision.steps.append(Step("unload", record["module_name"], None, f"replaced by {target.name}"))
    for module in sorted(leftovers - set(installed) - {target.module_name}):
        decision.steps.append(Step("unload", module, None, "left loaded after it was replaced or disabled"))
    decision.summary = verb
    return decision


def _incremental(artifacts: list[Artifact], index: Index, policy: Policy, installed: dict[str, dict[str, Any]], *,
                 now: datetime, leftovers: set[str]) -> Decision:
    decision = Decision()
    candidates = sorted(artifacts, key=lambda a: a.level or 0)
    desired: list[Artifact] = []
    skipped: dict[str, str] = {}
    for a in candidates:
        if policy.pinned is not None and (a.level or 0) > policy.pinned:
            skipped[a.module_name] = f"above the pinned position {policy.pinned}"
            continue
        if a.module_name not in installed and policy.pinned is None:
            ok, ready_at = _age_ok(index, a, policy, now)
            if not ok:
                skipped[a.module_name] = "waiting for the minimum age" + \
                    (f" until {format_time(ready_at)}" if ready_at else "")
                decision.notes.append(f"{a.name}: {skipped[a.module_name]}")
                continue
            if below(a.max_severity, policy.min_severity):
                skipped[a.module_name] = (f"of severity {(a.max_severity or 'none').lower()}, below the policy's "
                                          f"{(policy.min_severity or '').lower()}")
                decision.notes.append(f"{a.name}: {skipped[a.module_name]}")
                continue
        desired.append(a)
    names = [a.module_name for a in desired]
    for i, a in enumerate(desired):
        for req in a.mode.get("requires", []):
            module = req.get("module")
            if module in names[:i]:
                continue
            why = skipped.get(module, "not in channel " + policy.channel + " for this kernel")
            raise DependencyMissing(f"{a.name} requires {module} (klp state {req.get('state')}), which is not "
                                    f"loaded and cannot be: {why}")
    stack = [r["module_name"] for r in sorted((r for r in installed.values() if r.get("kind") == "incremental"),
                                              key=lambda r: r.get("level") or 0)]
    keep = 0
    while keep < len(stack) and keep < len(names) and stack[keep] == names[keep]:
        keep += 1
    for module in reversed(stack[keep:]):
        decision.steps.append(Step("unload", module, None, "above the target stack"))
    for module in sorted(leftovers - set(installed)):
        decision.steps.append(Step("unload", module, None, "left loaded after it was disabled"))
    for a in desired[keep:]:
        decision.steps.append(Step("load", a.module_name, a, f"position {a.level} of series {a.series}"))
    if not decision.steps:
        severity_skips = [n for n in decision.notes if "below the policy" in n]
        if severity_skips and len(desired) == len(stack):
            raise SeverityBelowPolicy(severity_skips[0])
        decision.summary = f"nothing to do: {len(stack)} incremental module(s) loaded"
    else:
        decision.summary = f"{sum(s.action == 'load' for s in decision.steps)} module(s) to load, " \
                           f"{sum(s.action == 'unload' for s in decision.steps)} to unload"
    return decision
