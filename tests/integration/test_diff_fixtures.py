"""The differ on the C fixture corpus (fixtures/*/): verdicts and output.

Each fixture is compiled with kernel-like flags (tests/fixture_build.py,
cached in ``<repo>/.cache/test-objects`` or ``$KBUILDER_CACHE/test-objects``)
and diffed with the ORIG object as the running kernel's symbol table.

* The verdict and the changed and new functions are those of expect.toml;
  a refusal names its kind and says what it is about.
* A patch output is a sound relocatable object (readelf, ``ld -r``); the
  changed and new functions keep their ftrace entries, with one
  ``__mcount_loc`` entry each; changed functions are local; and whatever
  the new code references that was local to the original object is reached
  through a livepatch symbol (``.klp.sym.<obj>.<name>,<sympos>``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kbuilder.arch import get_arch
from kbuilder.diff import DiffOptions, DiffResult, diff_files
from kbuilder.elf import ElfObject, read_object, write_object
from kbuilder.elf.constants import SHT, STB, STT
from kbuilder.emit.klp import KLP_SYM_PREFIX
from kbuilder.emit.parent import ParentSymbols

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import fixture_build  # noqa: E402  (tests/fixture_build.py)

NAMES = fixture_build.fixture_names()
EXPECT = {name: fixture_build.load_expect(name) for name in NAMES}
PATCH_NAMES = [n for n in NAMES if EXPECT[n]["verdict"] == "patch"]
REFUSED_NAMES = [n for n in NAMES if EXPECT[n]["verdict"] == "unpatchable"]

# What each refusal of a fixture must name besides its kind: the section or
# symbol the author has to look at.
REFUSAL_MENTIONS = {
    "data-init-changed": ["backoff_table"],
    "init-code": [".init.text", "driver_init"],
    "notrace-change": ["sched_clock_fast"],
    "struct-layout": ["global_link_stats"],
}


_KLP_NAME = re.compile(r"^\.klp\.sym\.(?P<obj>[^.]+)\.(?P<name>.+),(?P<pos>\d+)$")


def cache_dir() -> Path:
    base = Path(os.environ["KBUILDER_CACHE"]) if os.environ.get("KBUILDER_CACHE") else REPO / ".cache"
    path = base / "test-objects"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class FixtureRun:
    name: str
    orig: Path
    patched: Path
    result: DiffResult
    output: Path | None

    def need_output(self) -> Path:
        if self.output is None:
            pytest.fail(f"{self.name}: no output (status {self.result.status})", pytrace=False)
        return self.output


_RUNS: dict[str, FixtureRun] = {}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixture-outputs")


def run_fixture(name: str, out_dir: Path) -> FixtureRun:
    if name not in _RUNS:
        orig, patched = fixture_build.compile_fixture(name, cache_dir())
        result = diff_files(orig, patched, DiffOptions(parent=ParentSymbols.load(orig)))
        output = None
        if result.output is not None:
            output = out_dir / f"{name}.OUTPUT.o"
            write_object(result.output, output)
        _RUNS[name] = FixtureRun(name, Path(orig), Path(patched), result, output)
    return _RUNS[name]


def patchable_names(obj: ElfObject) -> set[str]:
    return {s.name for s in get_arch(obj.machine).patchable_functions(obj)}


def nm_lines(path: Path) -> list[tuple[str, str]]:
    """(type letter, name) per `nm` line."""
    proc = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True)
    found = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found.append((parts[-2], parts[-1]))
    return found


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_verdict(name: str, out_dir: Path) -> None:
    expect = EXPECT[name]
    result = run_fixture(name, out_dir).result
    got = (result.status, sorted(result.changed), sorted(result.new))
    wanted = (expect["verdict"], sorted(expect.get("changed", [])), sorted(expect.get("new", [])))
    assert got == wanted, (f"{name}: {expect['description']}\n got {got}\nwant {wanted}\n"
                           f"refusals: {result.refusals}\nwarnings: {result.warnings}")
    if expect["verdict"] != "patch":
        assert result.output is None, f"{name}: {result.status} but an output object was built"
    if expect["verdict"] != "unpatchable":
        assert not result.refusals, f"{name}: refusals for a {expect['verdict']} verdict: {result.refusals}"


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_refusal_reasons(name: str, out_dir: Path) -> None:
    run = run_fixture(name, out_dir)
    refusals = run.result.refusals
    kinds = {r.kind for r in refusals}
    missing = [k for k in EXPECT[name]["refusal"] if k not in kinds]
    assert not missing, f"{name}: refusal kinds {missing} not among {sorted(kinds)}"
    assert refusals and all(r.message.strip() for r in refusals)
    # Each message names something of the object: a section or a symbol.
    orig = read_object(run.orig)
    names = {s.name for s in orig.sections if len(s.name) > 2} | {
        s.name for s in orig.symbols if s.section is not None and len(s.name) > 2 and s.type != STT.SECTION}
    for refusal in refusals:
        assert any(n in refusal.message for n in names), f"{name}: {refusal.message!r} names nothing specific"
    text = " ".join(r.message for r in refusals)
    for needle in REFUSAL_MENTIONS.get(name, []):
        assert needle in text, f"{name}: no refusal mentions {needle!r}: {text}"


# ---------------------------------------------------------------------------
# Patch outputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", PATCH_NAMES)
def test_output_is_sound_elf(name: str, out_dir: Path) -> None:
    path = run_fixture(name, out_dir).need_output()
    proc = subprocess.run(["readelf", "-a", "-W", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if "Warning" in line]
    assert not warnings, "\n".join(warnings)
    linked = path.with_suffix(".ld.o")
    proc = subprocess.run(["ld", "-r", "-o", str(linked), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("name", PATCH_NAMES)
def test_output_ftrace(name: str, out_dir: Path) -> None:
    """Changed functions patchable in ORIG and new functions patchable in
    PATCHED keep an ftrace entry; `__mcount_loc` has one entry for each."""
    run = run_fixture(name, out_dir)
    out = read_object(run.need_output())
    result = run.result
    wanted = sorted({n for n in result.changed if n in patchable_names(read_object(run.orig))}
                    | {n for n in result.new if n in patchable_names(read_object(run.patched))})
    have = patchable_names(out)
    lost = [n for n in wanted if n not in have]
    assert not lost, f"{name}: functions without an ftrace entry in the output: {lost}"
    table = [s for s in out.sections if s.name == "__mcount_loc"]
    relocs = [r for s in out.sections if s.type == SHT.RELA and s.info_section is not None
              and s.info_section.name == "__mcount_loc" for r in s.relocs]
    targets = sorted(r.symbol.name for r in relocs)
    assert targets == wanted, f"{name}: __mcount_loc entries for {targets}, expected {wanted}"
    assert sum(s.size for s in table) == 8 * len(relocs)
    assert sorted(r.offset for r in relocs) == [8 * i for i in range(len(relocs))]


@pytest.mark.parametrize("name", PATCH_NAMES)
def test_changed_functions_are_local(name: str, out_dir: Path) -> None:
    """The running kernel's callers must never bind to the module's copies."""
    run = run_fixture(name, out_dir)
    kinds = {n: t for t, n in nm_lines(run.need_output())}
    for func in run.result.changed:
        assert kinds.get(func) == "t", f"{name}: changed function {func} is {kinds.get(func)!r} in nm, not 't'"


@pytest.mark.parametrize("name", PATCH_NAMES)
def test_references_to_locals_use_livepatch_symbols(name: str, out_dir: Path) -> None:
    """No undefined symbol of the output is named like a local of ORIG: such
    references must go through `.klp.sym.<obj>.<name>,<sympos>`, and every
    such symbol names something ORIG defines."""
    run = run_fixture(name, out_dir)
    out = read_object(run.need_output())
    orig = read_object(run.orig)
    orig_locals = {s.name for s in orig.symbols if s.bind == STB.LOCAL and s.name and s.type != STT.FILE}
    orig_defined = {s.name for s in orig.symbols if s.section is not None and s.name}
    undefined = [s for s in out.symbols[1:] if s.section is None and s.name]
    plain_locals = [s.name for s in undefined if s.name in orig_locals and not s.name.startswith(KLP_SYM_PREFIX)]
    assert not plain_locals, f"{name}: references to ORIG locals without a livepatch symbol: {plain_locals}"
    for sym in undefined:
        if not sym.name.startswith(KLP_SYM_PREFIX):
            continue
        match = _KLP_NAME.match(sym.name)
        assert match, f"{name}: malformed livepatch symbol {sym.name!r}"
        assert match["obj"] == "vmlinux"
        assert match["name"] in orig_defined, f"{name}: {sym.name} names nothing ORIG defines"
        # The ORIG object as the symbol table: every name is unique in it.
        assert match["pos"] == "0"
        assert sym.bind != STB.LOCAL


def test_static_local_reference(out_dir: Path) -> None:
    """event_log's `static int counter` (counter.N in ORIG, renumbered in
    PATCHED) is the running kernel's variable: referenced through
    `.klp.sym.vmlinux.counter.N,0`, never copied into the output."""
    run = run_fixture("static-local", out_dir)
    orig = read_object(run.orig)
    rela = orig.find_section(".rela.text.event_log")
    assert rela is not None
    targets = set()
    for reloc in rela.relocs:  # gcc refers to `.bss.counter.N` through its section symbol
        sym = reloc.symbol
        if sym.type == STT.SECTION and sym.section is not None:
            targets |= {s.name for s in orig.symbols_in(sym.section) if s.type == STT.OBJECT}
        else:
            targets.add(sym.name)
    counters = {n for n in targets if n.startswith("counter.")}
    assert len(counters) == 1, targets
    counter = counters.pop()
    out = read_object(run.need_output())
    names = {s.name for s in out.symbols}
    assert f".klp.sym.vmlinux.{counter},0" in names, sorted(names)
    assert not any(s.name.startswith("counter.") and s.section is not None for s in out.symbols)
    report = {k.symbol: k for k in run.result.facts.klp_symbols} if run.result.facts else {}
    entry = report.get(f".klp.sym.vmlinux.{counter},0")
    assert entry is not None and entry.bind == "local" and entry.type == "object" and entry.sympos == 0


def _xfail_switch(name: str) -> Any:
    if name == "switch-table":
        return pytest.param(name)
    return name


@pytest.mark.parametrize("name", [_xfail_switch(n) for n in PATCH_NAMES])
def test_no_reference_into_old_function_bodies(name: str, out_dir: Path) -> None:
    """A pointer to a changed function may be redirected to the running
    kernel's copy (kpatch does it for function pointers), but only to its
    start: an address inside a body (jump table, computed goto) is an offset
    in the *new* code and must stay in the output."""
    run = run_fixture(name, out_dir)
    out = read_object(run.need_output())
    defined = {s.name for s in out.symbols if s.type == STT.FUNC and s.section is not None}
    bad = []
    for rsec in out.sections:
        if rsec.type != SHT.RELA or rsec.info_section is None or rsec.info_section.name == "__mcount_loc":
            continue
        for reloc in rsec.relocs:
            match = _KLP_NAME.match(reloc.symbol.name)
            if match and match["name"] in defined and reloc.addend != 0:
                bad.append(f"{rsec.info_section.name}+0x{reloc.offset:x} -> {reloc.symbol.name}{reloc.addend:+d}")
    assert not bad, f"{name}: references into the old copy of a changed function: {bad}"
