"""Conformance with kpatch on its own unit-test corpus.

Every case of ``../shared/conformance/kpatch-unit/expectations.json`` (one
translation unit compiled before and after a patch, x86_64 and aarch64) is
diffed the way kpatch's unit tests run create-diff-object: the ORIG object
itself stands in for the running kernel's symbol table, and the special
section entry sizes are the case's ``struct_sizes``.

A case conforms when (see docs/conformance.md):

* an expected-failure case (``NAME.PATCHED.FAIL.o``) is not a "patch";
* any other case has kpatch's status and the same sets of changed and new
  functions, ignoring GCC clone numbers (``foo.isra.3`` == ``foo.isra.16``).

For every case kpatch turned into a patch the output object must also be
sound: readelf reads it without a warning, ``ld -r`` links it (x86_64), the
changed and new functions keep their ftrace entries, and the ftrace call-site
table holds exactly one entry per such function.

A table of all cases is printed at the end of the session
(tests/conformance/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from kbuilder.arch import get_arch
from kbuilder.diff import DiffOptions, DiffResult, diff_files
from kbuilder.elf import ElfObject, read_object, write_object
from kbuilder.elf.constants import SHT, STB, STT
from kbuilder.emit.parent import ParentSymbols
from kbuilder.errors import KbuilderError

pytestmark = pytest.mark.conformance

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "conformance" / "kpatch-unit"
EXPECTATIONS = CORPUS / "expectations.json"

MISSING = (f"kpatch-unit corpus not found: {EXPECTATIONS} does not exist "
           "(../shared must sit next to the project checkout)")

_CLONE_DIGITS = re.compile(r"\.\d+")


def _load_cases() -> dict[str, dict[str, Any]] | None:
    if not EXPECTATIONS.is_file():
        return None
    with open(EXPECTATIONS, encoding="utf-8") as fh:
        cases: dict[str, dict[str, Any]] = json.load(fh)
    return cases


CASES = _load_cases()


def require_corpus() -> dict[str, dict[str, Any]]:
    """The expectations; a missing corpus fails the test in CI, skips it elsewhere."""
    if CASES is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MISSING}; CI must provide it", pytrace=False)
        pytest.skip(MISSING)
    return CASES


def normalized(names: list[str]) -> list[str]:
    """Function names with GCC's clone numbers dropped, sorted."""
    return sorted(_CLONE_DIGITS.sub("", n) for n in names)


def expects_patch(case: dict[str, Any]) -> bool:
    return case["status"] == "patch" and not case["expect_failure"]


# ---------------------------------------------------------------------------
# Known kbuilder bugs: the checks stay strict, the cases are marked xfail.
# ---------------------------------------------------------------------------



def _case_params(select: Callable[[dict[str, Any]], bool] = lambda case: True,
                 xfail: Callable[[str, dict[str, Any]], str | None] = lambda key, case: None) -> list[Any]:
    if CASES is None:
        # One visible placeholder: skipped locally, failed in CI.
        return [pytest.param(None, id="corpus-missing")]
    params = []
    for key, case in CASES.items():
        if not select(case):
            continue
        reason = xfail(key, case)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(key, id=key, marks=marks))
    return params


def _aarch64_ftrace(key: str, case: dict[str, Any]) -> str | None:
    return None


# ---------------------------------------------------------------------------
# One diff per case, shared by every test of the case.
# ---------------------------------------------------------------------------

@dataclass
class CaseRun:
    key: str
    case: dict[str, Any]
    result: DiffResult | None
    error: KbuilderError | None
    ms: float
    output: Path | None = None
    orig_patchable: set[str] = field(default_factory=set)
    patched_patchable: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        return f"error ({self.error.kind})" if self.error is not None else "?"

    def need_output(self) -> Path:
        if self.output is None:
            pytest.fail(f"{self.key}: no output object (status {self.status}, expected patch)", pytrace=False)
        return self.output

    def output_object(self) -> ElfObject:
        return read_object(self.need_output())

    def wanted_ftrace(self) -> list[str]:
        """Changed and new functions that have an ftrace entry where they come
        from: the ORIG object for changed ones, the PATCHED one for new ones."""
        assert self.result is not None
        return sorted({n for n in self.result.changed if n in self.orig_patchable}
                      | {n for n in self.result.new if n in self.patched_patchable})


_RUNS: dict[str, CaseRun] = {}


def _patchable_names(path: Path) -> set[str]:
    obj = read_object(path)
    return {s.name for s in get_arch(obj.machine).patchable_functions(obj)}


def run_case(key: str, out_dir: Path) -> CaseRun:
    if key in _RUNS:
        return _RUNS[key]
    cases = require_corpus()
    case = cases[key]
    base = CORPUS / case["arch"]
    orig, patched = base / case["orig"], base / case["patched"]
    for path in (orig, patched):
        if not path.is_file():
            pytest.fail(f"{key}: corpus object {path} is missing", pytrace=False)
    started = time.perf_counter()
    result: DiffResult | None = None
    error: KbuilderError | None = None
    try:
        result = diff_files(orig, patched, DiffOptions(parent=ParentSymbols.load(orig),
                                                       struct_sizes=case["struct_sizes"]))
    except KbuilderError as exc:  # like create-diff-object's exit 1: recorded, judged by the test
        error = exc
    ms = (time.perf_counter() - started) * 1000
    run = CaseRun(key, case, result, error, ms)
    if result is not None and result.status == "patch" and result.output is not None:
        run.output = out_dir / f"{key.replace('/', '-')}.OUTPUT.o"
        write_object(result.output, run.output)
        run.orig_patchable = _patchable_names(orig)
        run.patched_patchable = _patchable_names(patched)
    _RUNS[key] = run
    return run


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kpatch-unit-outputs")


def _count_text_symbols(path: Path) -> int:
    """What kpatch's `assert_num_funcs` counts: `nm` lines of type t or T."""
    proc = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True)
    return sum(1 for line in proc.stdout.splitlines() if re.search(r" [tT] ", line))


# ---------------------------------------------------------------------------
# The results table
# ---------------------------------------------------------------------------

def _row(rows: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    return rows.setdefault(key, {"case": key, "checks": {}})


def _set_check(rows: dict[str, dict[str, Any]], key: str, check: str, outcome: str) -> None:
    row = _row(rows, key)
    row["checks"][check] = outcome
    bad = [f"{name}:{state}" for name, state in row["checks"].items() if state != "ok"]
    row["output"] = " ".join(bad) if bad else "ok"


@contextmanager
def recorded(rows: dict[str, dict[str, Any]], key: str, check: str, known_bug: bool = False) -> Iterator[None]:
    """Record a check's outcome in the table (xfail for a known bug)."""
    try:
        yield
    except (pytest.skip.Exception, KeyboardInterrupt):
        raise
    except BaseException:
        _set_check(rows, key, check, "xfail" if known_bug else "FAIL")
        raise
    _set_check(rows, key, check, "XPASS" if known_bug else "ok")


def _is_known_bug(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("xfail") is not None


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", _case_params())
def test_conforms(key: str | None, out_dir: Path, conformance_rows: dict[str, dict[str, Any]]) -> None:
    """Status, changed and new functions as kpatch concluded."""
    cases = require_corpus()
    assert key is not None
    case = cases[key]
    run = run_case(key, out_dir)
    result = run.result
    changed = result.changed if result is not None else []
    new = result.new if result is not None else []
    if case["expect_failure"]:
        ok = run.status != "patch"
    else:
        ok = (run.status == case["status"] and normalized(changed) == normalized(case["changed"])
              and normalized(new) == normalized(case["new"]))
    row = _row(conformance_rows, key)
    ours = _count_text_symbols(run.output) if run.output is not None else None
    reference = case.get("reference_function_symbols")
    row.update(expected="not patch" if case["expect_failure"] else case["status"], got=run.status,
               changed=changed, new=new, verdict="PASS" if ok else "FAIL", ms=run.ms,
               funcs=f"{'-' if ours is None else ours}/{'-' if reference is None else reference}",
               funcs_match=None if ours is None or reference is None else ours == reference)
    row.setdefault("output", "-")
    refusals = [f"{r.kind}: {r.message}" for r in result.refusals] if result is not None else []
    detail = (f"{key}: got {run.status} changed={changed} new={new} refusals={refusals} "
              f"error={run.error}; expected {case['status']} (expect_failure={case['expect_failure']}) "
              f"changed={case['changed']} new={case['new']} errors={case.get('errors')}")
    assert ok, detail


_PATCH_CASES = _case_params(expects_patch)


@pytest.mark.parametrize("key", _PATCH_CASES)
def test_output_readelf_clean(key: str | None, out_dir: Path, conformance_rows: dict[str, dict[str, Any]]) -> None:
    """`readelf -a -W` reads the output without a warning or an error."""
    require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    with recorded(conformance_rows, key, "readelf"):
        path = run.need_output()
        proc = subprocess.run(["readelf", "-a", "-W", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == "", f"readelf complained about {path}:\n{proc.stderr}"
        warnings = [line for line in proc.stdout.splitlines() if "Warning" in line]
        assert not warnings, f"readelf warnings for {path}:\n" + "\n".join(warnings)


@pytest.mark.parametrize("key", _case_params(lambda c: expects_patch(c) and c["arch"] == "x86_64"))
def test_output_links(key: str | None, out_dir: Path, conformance_rows: dict[str, dict[str, Any]]) -> None:
    """`ld -r` accepts the output (the host linker is x86_64)."""
    require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    with recorded(conformance_rows, key, "ld"):
        path = run.need_output()
        linked = path.with_suffix(".ld.o")
        proc = subprocess.run(["ld", "-r", "-o", str(linked), str(path)], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stderr.strip() == "", f"ld -r {path}:\n{proc.stderr}"
        assert linked.is_file()


@pytest.mark.parametrize("key", _case_params(expects_patch, _aarch64_ftrace))
def test_output_keeps_ftrace_entries(key: str | None, out_dir: Path, request: pytest.FixtureRequest,
                                     conformance_rows: dict[str, dict[str, Any]]) -> None:
    """Each changed or new function that had an ftrace entry (changed: in ORIG,
    new: in PATCHED) is defined in the output and still has one there."""
    require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    with recorded(conformance_rows, key, "ftrace", _is_known_bug(request)):
        out = run.output_object()
        assert run.result is not None
        defined = {s.name for s in out.symbols if s.type == STT.FUNC and s.section is not None}
        missing = [n for n in run.result.changed + run.result.new if n not in defined]
        assert not missing, f"{key}: changed/new functions not defined in the output: {missing}"
        patchable = {s.name for s in get_arch(out.machine).patchable_functions(out)}
        lost = [n for n in run.wanted_ftrace() if n not in patchable]
        assert not lost, f"{key}: these functions lost their ftrace entry in the output: {lost}"


def _ftrace_entries(out: ElfObject, table_name: str) -> tuple[int, list[Any]]:
    size = sum(s.size for s in out.sections if s.name == table_name)
    relocs = [r for s in out.sections if s.type == SHT.RELA and s.info_section is not None
              and s.info_section.name == table_name for r in s.relocs]
    return size, relocs


@pytest.mark.parametrize("key", _case_params(expects_patch, _aarch64_ftrace))
def test_output_ftrace_table(key: str | None, out_dir: Path, request: pytest.FixtureRequest,
                             conformance_rows: dict[str, dict[str, Any]]) -> None:
    """The call-site table (`__mcount_loc` on x86_64, `__patchable_function_entries`
    on aarch64) holds one 8-byte entry per changed/new function with an ftrace
    entry, each for a different function; on x86_64 each entry designates the
    `call __fentry__` instruction."""
    require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    with recorded(conformance_rows, key, "table", _is_known_bug(request)):
        out = run.output_object()
        arch = get_arch(out.machine)
        size, relocs = _ftrace_entries(out, arch.ftrace_section)
        wanted = run.wanted_ftrace()
        targets = [r.symbol.name for r in relocs]
        assert size == 8 * len(relocs), f"{key}: {arch.ftrace_section} is {size} bytes for {len(relocs)} entries"
        assert len(relocs) == len(wanted), (f"{key}: {len(relocs)} {arch.ftrace_section} entries {targets}, "
                                            f"expected one for each of {wanted}")
        assert len(set(targets)) == len(targets), f"{key}: two entries for one function: {targets}"
        assert sorted(targets) == wanted
        assert sorted(r.offset for r in relocs) == [8 * i for i in range(len(relocs))]
        assert all(r.type == arch.abs64_reloc and r.symbol.type == STT.FUNC for r in relocs)
        if arch.name == "x86_64":
            for reloc in relocs:
                func = reloc.symbol
                assert func.section is not None
                site = func.value + reloc.addend
                assert func.section.data[site:site + 1] == b"\xe8", f"{key}: entry for {func.name} is not a call"
                rela = func.section.rela
                assert rela is not None and any(
                    r.offset == site + 1 and r.symbol.name == "__fentry__" for r in rela.relocs), \
                    f"{key}: entry for {func.name} does not designate its `call __fentry__`"


# What kpatch's own `.test` scripts check beyond the function count
# (kpatch-reference.md 4.1), as far as the corpus here has the cases.

def _check_convert_global_local(out: ElfObject, run: CaseRun) -> None:
    syms = [s for s in out.symbols if s.name == "__kmalloc" and s.section is not None]
    assert syms and all(s.bind == STB.LOCAL for s in syms), "__kmalloc must become a local (t) function"


def _check_mcount_loc_1102(out: ElfObject, run: CaseRun) -> None:
    _, relocs = _ftrace_entries(out, "__mcount_loc")
    got = [(get_arch(out.machine).reloc_name(r.type), r.symbol.name, r.addend) for r in relocs]
    assert got == [("R_X86_64_64", "netlbl_catmap_getlong", 0)], got


def _check_no_undefined_section_symbols(out: ElfObject, run: CaseRun) -> None:
    bad = [s.index for s in out.symbols if s.type == STT.SECTION and s.section is None]
    assert not bad, f"undefined STT_SECTION symbols: {bad}"


def _check_import_ns(out: ElfObject, run: CaseRun) -> None:
    patched = read_object(CORPUS / run.case["arch"] / run.case["patched"])
    source = patched.find_section(".modinfo")
    assert source is not None
    wanted = sorted(s for s in source.data.split(b"\0") if b"import_ns=" in s)
    assert len(wanted) == 4
    modinfo = out.find_section(".modinfo")
    got = sorted(s for s in modinfo.data.split(b"\0") if b"import_ns=" in s) if modinfo is not None else []
    assert got == wanted, f".modinfo import_ns entries: {got}, expected {wanted}"


_CASE_CHECKS: dict[str, tuple[Callable[[ElfObject, CaseRun], None], str | None]] = {
    "x86_64/convert-global-local": (_check_convert_global_local, None),
    "x86_64/mcount_loc-issue-1102": (_check_mcount_loc_1102, None),
    "x86_64/dynamic-debug-jump-label-issue-1253": (_check_no_undefined_section_symbols, None),
    "x86_64/import-ns": (_check_import_ns, None),
}


def _case_check_params() -> list[Any]:
    if CASES is None:
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(key, id=key, marks=[pytest.mark.xfail(strict=True, reason=bug)] if bug else [])
            for key, (_, bug) in _CASE_CHECKS.items() if key in CASES]


@pytest.mark.parametrize("key", _case_check_params())
def test_kpatch_case_specific_checks(key: str | None, out_dir: Path, request: pytest.FixtureRequest,
                                     conformance_rows: dict[str, dict[str, Any]]) -> None:
    require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    check, _ = _CASE_CHECKS[key]
    with recorded(conformance_rows, key, "case", _is_known_bug(request)):
        check(run.output_object(), run)


@pytest.mark.parametrize("key", _case_params(lambda c: not c["expect_failure"]))
def test_callbacks_and_ignored_functions(key: str | None, out_dir: Path,
                                         conformance_rows: dict[str, dict[str, Any]]) -> None:
    """Beyond the conformance rule: the livepatch callbacks found, and the
    functions left out through KPATCH_IGNORE_FUNCTION, are kpatch's too.
    (kbuilder's `ignored` also lists KPATCH_IGNORE_SECTION sections, which
    the expectations do not record: only function names are compared.)"""
    cases = require_corpus()
    assert key is not None
    run = run_case(key, out_dir)
    with recorded(conformance_rows, key, "callbacks/ignored"):
        result = run.result
        assert result is not None, run.error
        case = cases[key]
        patched = read_object(CORPUS / case["arch"] / case["patched"])
        functions = {s.name for s in patched.symbols if s.type == STT.FUNC}
        assert normalized(result.callbacks) == normalized(case["callbacks"])
        ignored = [n for n in result.ignored if n in functions]
        assert normalized(ignored) == normalized(case["ignored"]), result.ignored
