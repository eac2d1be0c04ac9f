"""The livepatch cases of cases.toml, and what the tests do with them: build
a module (once per session), compose the guest steps, read the guest's
kernel log.

Shared by conftest.py (fixtures, parametrization, the timing summary) and
test_livepatch_cases.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kbuilder.build import BuildOptions, BuildResult, build_livepatch
from kbuilder.errors import KbuilderError
from kbuilder.kernel import vm

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.toml"
PATCHES = HERE / "patches"

_KEYS = {"name", "patch", "demonstrates", "expect", "check", "reason", "functions", "objects", "klp_object",
         "new", "klp_symbols", "callbacks", "warnings", "dmesg", "guest_modules", "modules_when", "setup",
         "combined"}


@dataclass(frozen=True)
class Case:
    name: str
    patch: Path
    demonstrates: str
    expect: str                          # "pass" | "refused"
    check: str = ""
    reason: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    klp_object: str = "vmlinux"
    new: tuple[str, ...] = ()
    klp_symbols: tuple[str, ...] = ()
    callbacks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    dmesg: tuple[str, ...] = ()
    guest_modules: tuple[str, ...] = ()
    modules_when: str = "before"        # "before" | "after"
    setup: str = ""
    combined: bool = True                # False: left out of the combined module

    @property
    def module_name(self) -> str:
        """The build's --name: one module per patch file."""
        return "kbt-" + self.patch.stem


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """Every case of cases.toml, checked for the mistakes a hand-edited
    file tends to have (unknown keys, missing patches, duplicate names)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    cases: list[Case] = []
    for raw in data.get("case", []):
        unknown = set(raw) - _KEYS
        if unknown:
            raise ValueError(f"{path.name}: case {raw.get('name')!r}: unknown keys {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        values["patch"] = PATCHES / raw["patch"]
        case = Case(**values)
        if not case.patch.is_file():
            raise ValueError(f"{path.name}: case {case.name}: no such patch {case.patch}")
        if case.expect == "pass" and not case.check.strip():
            raise ValueError(f"{path.name}: case {case.name}: a pass case needs a check")
        if case.expect == "refused" and not case.reason:
            raise ValueError(f"{path.name}: case {case.name}: a refused case needs a reason")
        if case.expect not in ("pass", "refused") or case.modules_when not in ("before", "after"):
            raise ValueError(f"{path.name}: case {case.name}: bad expect or modules_when")
        cases.append(case)
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"{path.name}: duplicate case names {sorted(duplicates)}")
    return cases


def pass_cases() -> list[Case]:
    return [c for c in load_cases() if c.expect == "pass"]


def refused_cases() -> list[Case]:
    return [c for c in load_cases() if c.expect == "refused"]


def combined_cases() -> list[Case]:
    """The pass cases, one per patch file (the first one names it)."""
    seen: set[Path] = set()
    out = []
    for case in pass_cases():
        if case.combined and case.patch not in seen:
            seen.add(case.patch)
            out.append(case)
    return out


# ---------------------------------------------------------------------------
# Timings, printed at the end of the session (conftest's terminal summary)
# ---------------------------------------------------------------------------

TIMINGS: dict[str, dict[str, float]] = {}


def record(name: str, what: str, seconds: float) -> None:
    TIMINGS.setdefault(name, {})[what] = round(seconds, 1)


# ---------------------------------------------------------------------------
# Building, once per session
# ---------------------------------------------------------------------------

@dataclass
class Built:
    """One build: its result, or the KbuilderError it raised."""

    name: str
    result: BuildResult | None
    error: KbuilderError | None
    seconds: float
    progress: list[str] = field(default_factory=list)

    def module(self) -> Path:
        if self.result is None:
            raise AssertionError(f"{self.name} did not build: {type(self.error).__name__}: {self.error}")
        return self.result.module


@dataclass
class CliRun:
    name: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


class ModuleBuilder:
    """Builds livepatch modules against the test kernel; each set of
    patches is built once per session (a failed build too: its error is
    kept)."""

    def __init__(self, source: Path, config: Path, output: Path, jobs: int) -> None:
        self.source, self.config, self.output, self.jobs = source, config, output, jobs
        self._built: dict[tuple[Path, ...], Built] = {}
        self._cli: dict[tuple[Path, ...], CliRun] = {}

    def build(self, patches: Sequence[Path], name: str) -> Built:
        key = tuple(Path(p) for p in patches)
        if key not in self._built:
            messages: list[str] = []
            opts = BuildOptions(source=self.source, patches=key, config=self.config, jobs=self.jobs, name=name,
                                output=self.output)
            start = time.monotonic()
            try:
                result, error = build_livepatch(opts, messages.append), None
            except KbuilderError as exc:
                result, error = None, exc
            seconds = time.monotonic() - start
            self._built[key] = Built(name, result, error, seconds, messages)
            record(name, "build", seconds)
        return self._built[key]

    def build_cli(self, patches: Sequence[Path], name: str) -> CliRun:
        """`kbuild build` as a user runs it (exit status, stderr)."""
        key = tuple(Path(p) for p in patches)
        if key not in self._cli:
            script = Path(sys.executable).parent / "kbuild"
            kbuild = [str(script)] if script.is_file() else [sys.executable, "-m", "kbuilder"]
            cmd = [*kbuild, "build", "--source", str(self.source), "--config", str(self.config),
                   "-j", str(self.jobs), "--name", name, "-o", str(self.output), *map(str, key)]
            start = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=dict(os.environ),
                                  check=False)
            seconds = time.monotonic() - start
            self._cli[key] = CliRun(name, proc.returncode, proc.stdout, proc.stderr, seconds)
            record(name, "build", seconds)
        return self._cli[key]


# ---------------------------------------------------------------------------
# Guest steps
# ---------------------------------------------------------------------------

def _extra_modules(case: Case, build_dir: Path) -> list[vm.Step]:
    steps: list[vm.Step] = [vm.Load(build_dir / m) for m in case.guest_modules]
    if case.setup:
        steps.append(vm.Check(case.setup, must_pass=True, name="setup"))
    return steps


def case_steps(case: Case, module: Path, build_dir: Path) -> list[vm.Step]:
    """Setup; the check fails; the livepatch loads and its transition
    completes (late modules load now); the check passes; disable and
    unload; the check fails again."""
    steps: list[vm.Step] = []
    if case.modules_when == "before":
        steps += _extra_modules(case, build_dir)
    steps.append(vm.Check(case.check, must_pass=False, name="before"))
    steps += vm.load_livepatch(module)
    if case.modules_when == "after":
        steps += _extra_modules(case, build_dir)
    steps.append(vm.Check(case.check, must_pass=True, name="after"))
    steps += vm.unload_livepatch(module)
    steps.append(vm.Check(case.check, must_pass=False, name="unloaded"))
    return steps


def combined_steps(cases: Sequence[Case], module: Path, build_dir: Path) -> list[vm.Step]:
    """One boot for all cases: every guest module and setup first, then
    every check must fail; load the one module; every check must pass;
    disable and unload; every check must fail again."""
    steps: list[vm.Step] = []
    loaded: set[str] = set()
    for case in cases:
        for m in case.guest_modules:
            if m not in loaded:
                loaded.add(m)
                steps.append(vm.Load(build_dir / m))
        if case.setup:
            steps.append(vm.Check(case.setup, must_pass=True, name=f"setup:{case.name}"))
    steps += [vm.Check(c.check, must_pass=False, name=f"before:{c.name}") for c in cases]
    steps += vm.load_livepatch(module)
    steps += [vm.Check(c.check, must_pass=True, name=f"after:{c.name}") for c in cases]
    steps += vm.unload_livepatch(module)
    steps += [vm.Check(c.check, must_pass=False, name=f"unloaded:{c.name}") for c in cases]
    return steps


def guest_dmesg(result: vm.TestLoadResult) -> list[str]:
    """The guest's kernel log, as dumped at the end of the run."""
    lines, inside = [], False
    for line in result.boot.lines:
        if line.rstrip().endswith(vm.MARK + "dmesg-begin"):
            inside = True
        elif line.rstrip().endswith(vm.MARK + "dmesg-end"):
            break
        elif inside:
            lines.append(line)
    return lines


def in_order(lines: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The `wanted` substrings not found in `lines` in this order."""
    missing, i = [], 0
    for text in wanted:
        while i < len(lines) and text not in lines[i]:
            i += 1
        if i == len(lines):
            missing.append(text)
            i = 0
        else:
            i += 1
    return missing
