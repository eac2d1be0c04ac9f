"""kbuilder.inspect.summarize: functions and their ftrace patchability, data
objects, special sections, relocation counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
from elftools.elf.elffile import ELFFile

from kbuilder.elf import read_object
from kbuilder.inspect import summarize

NOTRACE_SOURCE = """\
extern void kb_sink(int);
__attribute__((noinline)) void kb_traced(int x) { kb_sink(x + 1); }
__attribute__((noinline, no_instrument_function)) void kb_untraced(int x) { kb_sink(x + 2); }
static int kb_table[4] = { 1, 2, 3, 4 };
int *kb_table_ptr(void) { return kb_table; }
"""


def _defined_funcs_pyelftools(path: Path) -> Counter[str]:
    with open(path, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        return Counter(s.name for s in symtab.iter_symbols()
                       if s["st_info"]["type"] == "STT_FUNC" and s["st_shndx"] not in ("SHN_UNDEF", "SHN_ABS"))


@pytest.mark.parametrize("corpus_object", ["x86_64/new-function.ORIG.o", "aarch64/new-function.ORIG.o"],
                         indirect=True)
def test_n_tty_write_is_patchable(corpus_object: Path) -> None:
    summary = summarize(read_object(corpus_object))
    by_name = {f.name: f for f in summary.functions}
    assert by_name["n_tty_write"].patchable
    assert by_name["n_tty_write"].section == ".text.n_tty_write"
    assert summary.arch == ("x86_64" if "x86_64" in str(corpus_object) else "aarch64")


@pytest.mark.parametrize("corpus_object", ["x86_64/new-function.ORIG.o", "aarch64/new-function.ORIG.o",
                                           "x86_64/cmdline-ubsan.ORIG.o"], indirect=True)
def test_functions_are_the_defined_func_symbols(corpus_object: Path) -> None:
    summary = summarize(read_object(corpus_object))
    assert Counter(f.name for f in summary.functions) == _defined_funcs_pyelftools(corpus_object)


def test_functions_match_on_fixtures(fixture_object: Path) -> None:
    summary = summarize(read_object(fixture_object))
    assert Counter(f.name for f in summary.functions) == _defined_funcs_pyelftools(fixture_object)


def test_notrace_function_is_not_patchable(compile_snippet: Callable[..., Path]) -> None:
    # Compiled with the kernel flags: -pg -mfentry -mrecord-mcount.
    summary = summarize(read_object(compile_snippet(NOTRACE_SOURCE)))
    patchable = {f.name: f.patchable for f in summary.functions}
    assert patchable["kb_traced"] is True
    assert patchable["kb_untraced"] is False
    assert patchable["kb_table_ptr"] is True
    assert [(o.name, o.size, o.binding) for o in summary.objects] == [("kb_table", 16, "local")]
    mcount = {s.name: s for s in summary.special_sections}["__mcount_loc"]
    # One record per traced function, one relocation per record.
    assert (mcount.entry_size, mcount.entries, mcount.relocations) == (8, 2, 2)


def test_summary_counts_relocations(compile_snippet: Callable[..., Path]) -> None:
    obj = read_object(compile_snippet(NOTRACE_SOURCE))
    summary = summarize(obj)
    total = sum(len(sec.relocs) for sec in obj.sections if sec.is_rela)
    assert summary.relocations == total == sum(summary.relocations_by_type.values())
    assert list(summary.relocations_by_type) == sorted(summary.relocations_by_type)
    assert all(name.startswith("R_X86_64_") for name in summary.relocations_by_type)
    assert summary.sections == len(obj.sections) + 1 and summary.symbols == len(obj.symbols)


def test_summary_json_is_plain_and_stable(compile_snippet: Callable[..., Path]) -> None:
    path = compile_snippet(NOTRACE_SOURCE)
    first = json.dumps(summarize(read_object(path)).to_json(), sort_keys=True)
    second = json.dumps(summarize(read_object(path)).to_json(), sort_keys=True)
    assert first == second
    data = json.loads(first)
    assert set(data) == {"file", "arch", "sections", "symbols", "relocations", "functions", "objects",
                         "special_sections", "relocations_by_type"}
    assert set(data["functions"][0]) == {"name", "section", "size", "binding", "patchable"}


def test_fixtures_refused_for_missing_ftrace_have_unpatchable_functions(
        fixture_build_module: ModuleType, fixture_objects: dict[str, tuple[Path, Path]]) -> None:
    """Fixtures expected to be refused for "no-ftrace" name changed functions
    that carry no ftrace entry (cross-checks fixture expectations and inspect)."""
    checked = 0
    for name, (_orig, patched) in sorted(fixture_objects.items()):
        expect = fixture_build_module.load_expect(name)
        if "no-ftrace" not in expect.get("refusal", []):
            continue
        patchable = {f.name: f.patchable for f in summarize(read_object(patched)).functions}
        for func in expect.get("changed", []):
            assert patchable.get(func) is False, f"{name}: {func} should have no ftrace entry"
            checked += 1
    if not checked:
        pytest.skip("no fixture is refused for no-ftrace")
