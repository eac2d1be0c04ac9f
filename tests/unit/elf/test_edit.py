"""Editing the model: remove a function, add a section and symbols, write,
and check the result with binutils; refused edits raise ElfModelError."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from elftools.elf.elffile import ELFFile

from kbuilder.elf import ElfModelError, Reloc, Section, Symbol, parse_object, read_object, serialize, write_object
from kbuilder.elf.constants import SHF, SHN, SHT, STB, STT
from kbuilder.elf.model import ElfObject

# Kernel-like flags without ftrace instrumentation: with -pg/-mfentry and
# -mrecord-mcount, __mcount_loc would reference every function and removing
# one would (rightly) be refused.
_NO_FTRACE = {"-pg", "-mfentry", "-mrecord-mcount"}

SOURCE = """\
extern int kb_ext_counter;
extern int kb_ext_call(int);
__attribute__((noinline)) int kb_alpha(int x) { return x * 3 + kb_ext_counter; }
__attribute__((noinline)) int kb_beta(int x) { return kb_ext_call(x ^ 0x5a); }
int kb_gamma(int x) { return kb_alpha(x) + 1; }
"""

R_X86_64_64 = 1


@pytest.fixture(scope="module")
def three_functions(compile_snippet: Callable[..., Path], kernel_cflags: tuple[str, ...]) -> Path:
    return compile_snippet(SOURCE, [f for f in kernel_cflags if f not in _NO_FTRACE])


def _func_section(obj: ElfObject, name: str) -> Section:
    sym = obj.find_symbol(name)
    assert sym is not None and sym.section is not None, f"{name} is not defined"
    return sym.section


def _nm(binutils: Any, path: Path) -> dict[str, str]:
    """name -> nm letter."""
    proc = binutils.nm(path)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[-1]] = parts[-2]
    return out


def _edit(obj: ElfObject) -> None:
    """Remove kb_beta; add an undefined global, a data section holding a
    pointer to it (with its relocation section), and symbols in it."""
    obj.remove_section(_func_section(obj, "kb_beta"))
    target = obj.add_symbol(Symbol("kbuilder_test_sym", bind=STB.GLOBAL, type=STT.NOTYPE, shndx=SHN.UNDEF))
    data = obj.add_section(Section(".data.kbuilder_test", SHT.PROGBITS, SHF.WRITE | SHF.ALLOC,
                                   data=b"\0" * 8, size=8, addralign=8))
    rela = obj.add_section(Section(".rela.data.kbuilder_test", SHT.RELA, SHF.INFO_LINK, addralign=8,
                                   entsize=24, link=obj.symtab, info_section=data,
                                   relocs=[Reloc(0, R_X86_64_64, target, 0)]))
    data.rela = rela
    obj.add_symbol(Symbol("kbuilder_test_ptr", bind=STB.GLOBAL, type=STT.OBJECT, section=data, size=8))
    # A local appended after the globals: the writer must move it up.
    obj.add_symbol(Symbol("kbuilder_test_local", bind=STB.LOCAL, type=STT.OBJECT, section=data, size=8))


@pytest.fixture
def edited(three_functions: Path, tmp_path: Path) -> Path:
    obj = read_object(three_functions)
    assert obj.machine == 62, "the edit test builds x86_64 code with the host compiler"
    _edit(obj)
    out = tmp_path / "edited.o"
    write_object(obj, out)
    return out


def test_source_compiled_without_ftrace(three_functions: Path) -> None:
    obj = read_object(three_functions)
    assert {s.name for s in obj.symbols if s.is_func} == {"kb_alpha", "kb_beta", "kb_gamma"}
    assert obj.find_section("__mcount_loc") is None
    assert obj.find_section(".rela.text.kb_beta") is not None


def test_remove_section_drops_its_rela_and_symbols(three_functions: Path) -> None:
    obj = read_object(three_functions)
    beta = _func_section(obj, "kb_beta")
    obj.remove_section(beta)
    names = [s.name for s in obj.sections]
    assert ".text.kb_beta" not in names and ".rela.text.kb_beta" not in names
    assert obj.find_symbol("kb_beta") is None
    assert all(s.section is not beta for s in obj.symbols)


def test_edited_object_passes_binutils(edited: Path, binutils: Any, tmp_path: Path) -> None:
    assert binutils.readelf_warnings(edited) == []
    linked = tmp_path / "linked.o"
    proc = binutils.run("ld", "-r", "-o", linked, edited)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    symbols = _nm(binutils, edited)
    assert "kb_beta" not in symbols
    assert symbols["kbuilder_test_sym"] == "U"
    assert symbols["kbuilder_test_ptr"] == "D"
    assert symbols["kbuilder_test_local"] == "d"
    assert symbols["kb_alpha"] == "T" and symbols["kb_gamma"] == "T"
    # The new relocation survives the link.
    relocs = binutils.run("readelf", "-rW", linked).stdout
    assert re.search(r"R_X86_64_64\s+0+\s+kbuilder_test_sym \+ 0", relocs), relocs


def test_edited_object_reads_back(edited: Path) -> None:
    obj = read_object(edited)
    assert obj.find_section(".text.kb_beta") is None
    rela = obj.find_section(".rela.data.kbuilder_test")
    assert rela is not None and rela.base is obj.find_section(".data.kbuilder_test")
    assert [(r.offset, r.type, r.symbol.name, r.addend) for r in rela.relocs] == \
        [(0, R_X86_64_64, "kbuilder_test_sym", 0)]
    gamma = obj.find_section(".rela.text.kb_gamma")
    assert gamma is not None and [r.symbol.name for r in gamma.relocs] == ["kb_alpha"]


def test_symbols_are_written_locals_first(edited: Path) -> None:
    """gABI: locals precede globals, and .symtab's sh_info is the index of the
    first non-local symbol (checked with pyelftools, not our reader)."""
    with open(edited, "rb") as fh:
        elf = ELFFile(fh)
        symtab = elf.get_section_by_name(".symtab")
        binds = [sym["st_info"]["bind"] for sym in symtab.iter_symbols()]
        names = [sym.name for sym in symtab.iter_symbols()]
        first_global = symtab["sh_info"]
    assert all(b == "STB_LOCAL" for b in binds[:first_global])
    assert all(b != "STB_LOCAL" for b in binds[first_global:])
    assert 0 < first_global < len(binds)
    assert names.index("kbuilder_test_local") < first_global <= names.index("kbuilder_test_sym")


def test_removing_a_referenced_section_is_refused(three_functions: Path) -> None:
    obj = read_object(three_functions)
    before = ([s.name for s in obj.sections], [s.name for s in obj.symbols])
    # kb_gamma calls kb_alpha: dropping kb_alpha's section would leave a dangling relocation.
    with pytest.raises(ElfModelError, match="kb_alpha"):
        obj.remove_section(_func_section(obj, "kb_alpha"))
    assert ([s.name for s in obj.sections], [s.name for s in obj.symbols]) == before
    with pytest.raises(ElfModelError, match="kb_alpha"):
        obj.remove_symbol(obj.find_symbol("kb_alpha"))


def test_writing_a_dangling_relocation_is_refused(three_functions: Path, tmp_path: Path) -> None:
    obj = read_object(three_functions)
    alpha = obj.find_symbol("kb_alpha")
    obj.symbols.remove(alpha)     # a bad manual edit: .rela.text.kb_gamma still points at it
    obj.invalidate()
    with pytest.raises(ElfModelError, match="removed symbol"):
        serialize(obj)
    out = tmp_path / "never.o"
    with pytest.raises(ElfModelError):
        write_object(obj, out)
    # Atomic write: neither the target nor a temporary file is left behind.
    assert os.listdir(tmp_path) == []


def test_writing_a_symbol_of_a_dropped_section_is_refused(three_functions: Path) -> None:
    obj = read_object(three_functions)
    beta = _func_section(obj, "kb_beta")
    obj.sections.remove(beta)     # bypasses remove_section: kb_beta still points at it
    obj.sections.remove(beta.rela)
    obj.invalidate()
    with pytest.raises(ElfModelError, match="removed section"):
        serialize(obj)


@pytest.mark.parametrize("any_object", ["synthetic/comdat-group"], indirect=True)
def test_refused_removal_leaves_groups_intact(any_object: Path) -> None:
    obj = read_object(any_object)
    group = next(s for s in obj.sections if s.type == SHT.GROUP)
    members = list(group.members)
    with pytest.raises(ElfModelError, match="signature"):
        obj.remove_section(obj.find_section(".data.kb_grp"))
    assert group.members == members


def test_unchanged_object_reserializes_identically(three_functions: Path) -> None:
    blob = serialize(read_object(three_functions))
    assert serialize(parse_object(blob)) == blob


def test_new_relocation_section_gets_its_entry_size(three_functions: Path) -> None:
    obj = read_object(three_functions)
    target = obj.add_symbol(Symbol("kbuilder_test_sym", bind=STB.GLOBAL))
    data = obj.add_section(Section(".data.kbuilder_test", SHT.PROGBITS, SHF.WRITE | SHF.ALLOC,
                                   data=b"\0" * 8, size=8, addralign=8))
    # entsize not given: the writer regenerates relocation sections and
    # should set it like it does for .symtab and SHT_SYMTAB_SHNDX.
    data.rela = obj.add_section(Section(".rela.data.kbuilder_test", SHT.RELA, SHF.INFO_LINK, addralign=8,
                                        link=obj.symtab, info_section=data,
                                        relocs=[Reloc(0, R_X86_64_64, target, 0)]))
    reread = parse_object(serialize(obj))
    rela = reread.find_section(".rela.data.kbuilder_test")
    assert rela is not None and rela.entsize == 24
