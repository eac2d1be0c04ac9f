"""What to load, disable and unload to bring a machine from the livepatches
it has to a level of a series, without doing it.

Cumulative series: each level's module replaces whatever is loaded (atomic
replace), so any level, higher or lower, is one `load`; the module it
replaced is then only unloaded (the kernel has disabled it). Level 0
disables and unloads everything of the series.

Incremental series: the modules stack in series order. Reaching level N
loads the missing ones in order; going down disables and unloads from the
top of the stack down to N, never from the middle; a stack that differs
from the series is unwound down to the last module that matches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbuilder.errors import InputError
from kbuilder.metadata.series import Series, SeriesPatch, kernel_name, select


@dataclass(frozen=True, slots=True)
class LoadedPatch:
    """One entry of /sys/kernel/livepatch (or of a --loaded JSON file)."""

    name: str                          # kernel module name (underscores)
    enabled: bool = True
    transition: bool = False
    replace: bool | None = None        # <patch>/replace (6.11+), when known
    stack_order: int | None = None     # <patch>/stack_order (6.14+), when known
    metadata: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "transition": self.transition,
                "replace": self.replace, "stack_order": self.stack_order,
                "has_metadata": self.metadata is not None}


@dataclass(frozen=True, slots=True)
class Action:
    kind: str          # "load", "disable" or "unload"
    module: str        # load: the file (NAME.ko); disable/unload: the kernel's name
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.module}"

    @property
    def command(self) -> str:
        """The shell command that would carry it out."""
        if self.kind == "load":
            return f"insmod {self.module}"
        if self.kind == "disable":
            return f"echo 0 > /sys/kernel/livepatch/{self.module}/enabled"
        return f"rmmod {self.module}"

    def to_json(self) -> dict[str, str]:
        return {"action": self.kind, "module": self.module, "reason": self.reason, "command": self.command}


# ---------------------------------------------------------------------------
# Reading what is loaded
# ---------------------------------------------------------------------------

def _read_flag(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_loaded(sysfs_root: str | Path = "/sys/kernel/livepatch",
                module_dirs: tuple[str | Path, ...] = ()) -> list[LoadedPatch]:
    """The livepatches in `sysfs_root`, in stack order (stack_order when the
    kernel has it, else name order). A patch's kbuilder metadata is read
    from its module file when one named after it is found in `module_dirs`."""
    from kbuilder.metadata.model import load

    root = Path(sysfs_root)
    if not root.is_dir():
        raise InputError("no livepatch sysfs directory (is CONFIG_LIVEPATCH on, or is this the right path?)",
                         path=str(root))
    out = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            continue
        enabled = _read_flag(entry / "enabled")
        transition = _read_flag(entry / "transition")
        replace = _read_flag(entry / "replace")
        order = _read_flag(entry / "stack_order")
        metadata = None
        for directory in module_dirs:
            for stem in {entry.name, entry.name.replace("_", "-")}:
                candidate = Path(directory) / f"{stem}.ko"
                if candidate.is_file():
                    try:
                        metadata = load(candidate)
                    except InputError:
                        metadata = None
                    break
            if metadata is not None:
                break
        out.append(LoadedPatch(entry.name, enabled == "1", transition == "1",
                               None if replace is None else replace == "1",
                               int(order) if order and order.isdigit() else None, metadata))
    return _stack_sorted(out)


def read_loaded_json(path: str | Path) -> list[LoadedPatch]:
    """A JSON list of loaded patches, or {"loaded": [...]}: each an object
    with "name" and optionally "enabled", "transition", "replace",
    "stack_order" and "metadata" (a kbuilder metadata document). Entries
    without stack_order are in stack order (first loaded first)."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=where) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the loaded-patches JSON: {exc}", path=where) from None
    if isinstance(data, dict):
        data = data.get("loaded")
    if not isinstance(data, list):
        raise InputError('expected a JSON list of loaded patches, or {"loaded": [...]}', path=where)
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InputError(f"entry {i + 1} needs a \"name\"", path=where)
        order = item.get("stack_order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
            raise InputError(f"entry {i + 1} ({item['name']}): stack_order must be an integer", path=where)
        for key in ("enabled", "transition", "replace"):
            if key in item and item[key] is not None and not isinstance(item[key], bool):
                raise InputError(f"entry {i + 1} ({item['name']}): {key} must be true or false", path=where)
        metadata = item.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InputError(f"entry {i + 1} ({item['name']}): metadata must be an object", path=where)
        out.append(LoadedPatch(kernel_name(item["name"]), item.get("enabled", True) is not False,
                               bool(item.get("transition", False)), item.get("replace"), order, metadata))
    return _stack_sorted(out)


def _stack_sorted(patches: list[LoadedPatch]) -> list[LoadedPatch]:
    if all(p.stack_order is not None for p in patches):
        return sorted(patches, key=lambda p: p.stack_order or 0)
    return patches


# ---------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------

def _series_member(series: Series, patch: LoadedPatch) -> str | None:
    """Which module of `series` a loaded patch is ("L<level>" for a
    cumulative one, "P<id>" for an incremental one), or None."""
    meta = patch.metadata or {}
    mode = meta.get("mode") if isinstance(meta, dict) else None
    if isinstance(mode, dict) and mode.get("series") == series.name:
        if mode.get("kind") == "cumulative" and isinstance(mode.get("level"), int):
            return f"L{mode['level']}"
        if mode.get("kind") == "incremental" and isinstance(mode.get("patch"), str):
            return f"P{mode['patch']}"
    for level in series.levels:
        if patch.name == kernel_name(series.cumulative_module(level)):
            return f"L{level}"
    for p in series.patches:
        if patch.name == kernel_name(series.incremental_module(p)):
            return f"P{p.id}"
    return None


def plan(series: Series, loaded: list[LoadedPatch], target_level: int, mode: str | None = None, *,
         min_severity: str | None = None) -> list[Action]:
    """The actions, in order, that take the machine from `loaded` to
    `target_level` of `series` in `mode` (default: the series' mode)."""
    mode = mode or series.mode
    if mode not in ("cumulative", "incremental"):
        raise InputError(f"unknown mode {mode!r} (expected cumulative or incremental)")
    if target_level < 0 or target_level > series.max_level:
        raise InputError(f"level {target_level} is not in the series (levels 1-{series.max_level}, or 0 "
                         "to remove every module)", path=str(series.path))
    busy = [p.name for p in loaded if p.transition]
    if busy:
        raise InputError(f"livepatch {busy[0]} is in transition: wait until "
                         f"/sys/kernel/livepatch/{busy[0]}/transition reads 0, then plan again")
    if mode == "cumulative":
        return _plan_cumulative(series, loaded, target_level)
    return _plan_incremental(series, loaded, target_level, min_severity)


def _plan_cumulative(series: Series, loaded: list[LoadedPatch], level: int) -> list[Action]:
    ours = [(p, _series_member(series, p)) for p in loaded]
    members = [(p, m) for p, m in ours if m is not None]
    others = [p for p, m in ours if m is None and p.enabled]
    active = [(p, m) for p, m in members if p.enabled]
    current = active[-1] if active else None   # the top of the stack wins
    actions: list[Action] = []
    if level == 0:
        for p, _m in reversed(members):
            if p.enabled:
                actions.append(Action("disable", p.name, "level 0: remove every module of the series"))
            actions.append(Action("unload", p.name, "level 0: remove every module of the series"))
        return actions
    want = kernel_name(series.cumulative_module(level))
    if current is not None and current[0].name == want:
        stale = [p for p, _ in members if p.name != want]
        return [Action("unload", p.name, "left over from an earlier level") for p in stale]
    for p, _m in members:
        if p.name == want and not p.enabled:
            # A disabled patch cannot be enabled again: reload it.
            actions.append(Action("unload", p.name, "disabled; the kernel refuses to re-enable a patch"))
    if current is None:
        reason = f"level {level}"
    else:
        now = int(current[1][1:]) if current[1].startswith("L") else None
        if now is None:
            reason = f"level {level}, replacing {current[0].name}"
        else:
            verb = "upgrade" if level > now else "downgrade"
            reason = f"{verb} from level {now} to {level}: atomic replace of {current[0].name}"
    if others:
        reason += "; atomic replace also disables " + ", ".join(p.name for p in others)
    actions.append(Action("load", f"{series.cumulative_module(level)}.ko", reason))
    for p, _m in members:
        if p.name != want and p.enabled:
            actions.append(Action("unload", p.name, f"replaced by {want} (already disabled by the kernel)"))
        elif p.name != want:
            actions.append(Action("unload", p.name, "disabled"))
    for p in others:
        actions.append(Action("unload", p.name, f"replaced by {want} (not from this series)"))
    return actions


def _plan_incremental(series: Series, loaded: list[LoadedPatch], level: int,
                      min_severity: str | None) -> list[Action]:
    target: list[SeriesPatch] = select(series, min_severity, level).selected if level > 0 else []
    want = [kernel_name(series.incremental_module(p)) for p in target]
    actions: list[Action] = []
    members = [p for p in loaded if _series_member(series, p) is not None]
    # Disabled leftovers only need unloading; they are no longer in the stack.
    for p in members:
        if not p.enabled:
            actions.append(Action("unload", p.name, "disabled"))
    stack = [p.name for p in members if p.enabled]
    keep = 0
    while keep < len(stack) and keep < len(want) and stack[keep] == want[keep]:
        keep += 1
    for name in reversed(stack[keep:]):
        reason = (f"above level {level}" if name in _all_names(series) and name not in want
                  else "out of series order: the stack is unwound from the top")
        actions.append(Action("disable", name, reason))
        actions.append(Action("unload", name, reason))
    for p in target[keep:]:
        needs = want[:want.index(kernel_name(series.incremental_module(p)))]
        reason = f"level {p.level}, patch {p.id}" + (f"; needs {needs[-1]} below it" if needs else "")
        actions.append(Action("load", f"{series.incremental_module(p)}.ko", reason))
    return actions


def _all_names(series: Series) -> set[str]:
    return {kernel_name(series.incremental_module(p)) for p in series.patches}


def plan_json(actions: list[Action], *, series: Series, target_level: int, mode: str,
              loaded: list[LoadedPatch]) -> dict[str, Any]:
    return {"series": series.name, "mode": mode, "target_level": target_level,
            "loaded": [p.to_json() for p in loaded], "actions": [a.to_json() for a in actions]}
