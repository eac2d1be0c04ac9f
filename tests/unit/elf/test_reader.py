"""The reader against an independent parser (pyelftools), and the compiled
table decoder against its pure-Python twin."""

from __future__ import annotations

import importlib
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from elftools.elf import enums
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from kbuilder.elf import ElfObject, read_object
from kbuilder.elf.constants import SHT

# Small and medium objects of both architectures; with duplicate section
# names (cmdline-ubsan), SHF_LINK_ORDER (import-ns), many relocations (new-function).
READER_CORPUS = [
    "x86_64/new-function.ORIG.o",
    "x86_64/cmdline-ubsan.ORIG.o",
    "x86_64/import-ns.ORIG.o",
    "x86_64/plt32-relocations-issue-975.PATCHED.o",
    "aarch64/new-function.ORIG.o",
    "aarch64/cmdline-patch.ORIG.o",
]
LARGEST = "x86_64/unique-id-pr-1314.ORIG.o"

_SH_TYPES = {**enums.ENUM_SH_TYPE_BASE, **enums.ENUM_SH_TYPE_AMD64, **enums.ENUM_SH_TYPE_AARCH64}
_BINDS = dict(enums.ENUM_ST_INFO_BIND)
_TYPES = dict(enums.ENUM_ST_INFO_TYPE)
_VISIBILITY = dict(enums.ENUM_ST_VISIBILITY)
_SHNDX = dict(enums.ENUM_ST_SHNDX)


def _num(value: Any, table: dict[str, int]) -> int:
    """pyelftools gives enum names where it knows them, numbers otherwise."""
    return value if isinstance(value, int) else table[value]


def _check_against_pyelftools(path: Path) -> None:
    obj: ElfObject = read_object(path)
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        assert elf["e_machine"] in ("EM_X86_64", "EM_AARCH64") and obj.machine in (62, 183)

        sections = list(elf.iter_sections())
        assert len(obj.sections) + 1 == len(sections)
        for ours, theirs in zip(obj.sections, sections[1:]):
            assert ours.name == theirs.name
            assert ours.type == _num(theirs["sh_type"], _SH_TYPES), ours.name
            assert (ours.flags, ours.size, ours.addralign, ours.entsize) == \
                (theirs["sh_flags"], theirs["sh_size"], theirs["sh_addralign"], theirs["sh_entsize"]), ours.name
            if ours.type not in (SHT.NOBITS, SHT.RELA, SHT.GROUP):
                assert ours.data == theirs.data(), ours.name
            if ours.link is not None:
                assert ours.link.index == theirs["sh_link"], ours.name
            if ours.type == SHT.RELA:
                assert ours.base is not None and ours.base.index == theirs["sh_info"], ours.name

        symtab = elf.get_section_by_name(".symtab")
        theirs_syms = list(symtab.iter_symbols())
        assert len(obj.symbols) == len(theirs_syms)
        for i, (ours, theirs) in enumerate(zip(obj.symbols, theirs_syms)):
            assert ours.index == i
            assert ours.name == theirs.name, i
            assert (ours.value, ours.size) == (theirs["st_value"], theirs["st_size"]), ours.name
            assert ours.bind == _num(theirs["st_info"]["bind"], _BINDS), ours.name
            assert ours.type == _num(theirs["st_info"]["type"], _TYPES), ours.name
            assert ours.visibility == _num(theirs["st_other"]["visibility"], _VISIBILITY), ours.name
            shndx = _num(theirs["st_shndx"], _SHNDX)
            if ours.section is not None:
                assert ours.section.index == shndx, ours.name
            else:
                assert ours.shndx == shndx, ours.name

        for theirs in sections:
            if not isinstance(theirs, RelocationSection):
                continue
            ours = obj.sections[sections.index(theirs) - 1]
            assert ours.name == theirs.name and ours.type == SHT.RELA
            got = [(r.offset, r.type, r.symbol.index, r.addend) for r in ours.relocs]
            want = [(r["r_offset"], r["r_info_type"], r["r_info_sym"], r["r_addend"])
                    for r in theirs.iter_relocations()]
            assert got == want, ours.name


@pytest.mark.parametrize("corpus_object", READER_CORPUS, indirect=True)
def test_reader_matches_pyelftools_on_corpus(corpus_object: Path) -> None:
    _check_against_pyelftools(corpus_object)


def test_reader_matches_pyelftools_on_fixtures(fixture_object: Path) -> None:
    _check_against_pyelftools(fixture_object)


@pytest.mark.parametrize("any_object", ["synthetic/comdat-group"], indirect=True)
def test_reader_matches_pyelftools_on_group_object(any_object: Path) -> None:
    _check_against_pyelftools(any_object)
    obj = read_object(any_object)
    with open(any_object, "rb") as fh:
        elf = ELFFile(fh)
        groups = [s for s in elf.iter_sections() if s["sh_type"] == "SHT_GROUP"]
        ours = [s for s in obj.sections if s.type == SHT.GROUP]
        assert len(groups) == len(ours) == 1
        words = struct.unpack(f"<{groups[0]['sh_size'] // 4}I", groups[0].data())
        assert ours[0].group_flags == words[0]
        assert [m.index for m in ours[0].members] == list(words[1:])
        assert ours[0].signature is not None and ours[0].signature.index == groups[0]["sh_info"]


# ---- compiled vs pure table decoding ----------------------------------------

def _tables_layout(path: Path) -> tuple[bytes, tuple[int, int, int, int], list[tuple[str, int, int]]]:
    """(file bytes, (symtab offset, count, strtab offset, size), [(rela name, offset, count)])
    located with pyelftools' header parsing, independently of our reader."""
    data = path.read_bytes()
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        symtab = elf.get_section_by_name(".symtab")
        strtab = elf.get_section(symtab["sh_link"])
        sym = (symtab["sh_offset"], symtab["sh_size"] // 24, strtab["sh_offset"], strtab["sh_size"])
        relas = [(s.name, s["sh_offset"], s["sh_size"] // 24)
                 for s in elf.iter_sections() if s["sh_type"] == "SHT_RELA"]
    return data, sym, relas


def _both_impls() -> tuple[ModuleType, ModuleType]:
    try:
        compiled = importlib.import_module("kbuilder.elf._tables")
    except ImportError as exc:
        pytest.skip(f"kbuilder.elf._tables is not built: {exc}")
    return compiled, importlib.import_module("kbuilder.elf._tables_py")


def _entry(off: int, rtype: int, sym: Any, addend: int) -> tuple[int, int, Any, int]:
    return off, rtype, sym, addend


@pytest.mark.conformance
def test_compiled_and_pure_tables_agree_on_largest_object(corpus: Path) -> None:
    compiled, pure = _both_impls()
    data, (symoff, nsym, stroff, strsize), relas = _tables_layout(corpus / LARGEST)
    assert nsym > 4000 and sum(n for _, _, n in relas) > 15000  # really the big one
    symbols_c = compiled.decode_symbols(data, symoff, nsym, stroff, strsize)
    symbols_p = pure.decode_symbols(data, symoff, nsym, stroff, strsize)
    assert symbols_c == symbols_p
    indexes = list(range(nsym))
    for name, off, count in relas:
        decoded_c = compiled.decode_relas(data, off, count)
        assert decoded_c == pure.decode_relas(data, off, count), name
        built_c = compiled.build_relocs(data, off, count, indexes, _entry)
        assert built_c == pure.build_relocs(data, off, count, indexes, _entry), name
        assert built_c == [(o, t, s, a) for o, s, t, a in decoded_c], name


def _record(*fields: Any) -> tuple[Any, ...]:
    return fields


class _Sec:
    """What build_symbols touches on a section: its first section symbol."""

    def __init__(self, index: int) -> None:
        self.index, self.symbol = index, None


@pytest.mark.conformance
def test_compiled_and_pure_model_builders_agree(corpus_object: Path) -> None:
    """build_sections / build_symbols: same records from both twins, and the
    same as pyelftools' view of the headers and symbols."""
    compiled, pure = _both_impls()
    data = corpus_object.read_bytes()
    with open(corpus_object, "rb") as fh:
        elf = ELFFile(fh)
        shoff, shnum = elf["e_shoff"], elf.num_sections()
        names = elf.get_section(elf["e_shstrndx"])
        want_names = [s.name for s in elf.iter_sections()]
        symtab = elf.get_section_by_name(".symtab")
        strtab = elf.get_section(symtab["sh_link"])
        want_syms = [(s.name, s["st_value"], s["st_size"]) for s in symtab.iter_symbols()]
        sym = (symtab["sh_offset"], symtab["sh_size"] // 24, strtab["sh_offset"], strtab["sh_size"])
    built = [impl.build_sections(data, shoff, shnum, names["sh_offset"], names["sh_size"], 1 << 30, _record)
             for impl in (compiled, pure)]
    assert built[0] == built[1]
    assert [record[0] for record in built[0]] == want_names
    sections_c, sections_p = ([_Sec(i) for i in range(shnum)] for _ in range(2))
    symbols_c = compiled.build_symbols(data, *sym, sections_c, b"", _record)
    symbols_p = pure.build_symbols(data, *sym, sections_p, b"", _record)
    assert [(r[0], r[6], r[7]) for r in symbols_c] == want_syms
    assert [r[:4] + (getattr(r[4], "index", None),) + r[5:] for r in symbols_c] == \
        [r[:4] + (getattr(r[4], "index", None),) + r[5:] for r in symbols_p]
    assert [s.symbol is not None for s in sections_c] == [s.symbol is not None for s in sections_p]


@pytest.mark.conformance
def test_tables_match_pyelftools(tables_impl: ModuleType, corpus: Path) -> None:
    path = corpus / "x86_64/new-function.ORIG.o"
    data, (symoff, nsym, stroff, strsize), relas = _tables_layout(path)
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        want_syms = [(s.name, s["st_value"], s["st_size"]) for s in elf.get_section_by_name(".symtab").iter_symbols()]
        want_relas = {s.name: [(r["r_offset"], r["r_info_sym"], r["r_info_type"], r["r_addend"])
                               for r in s.iter_relocations()]
                      for s in elf.iter_sections() if isinstance(s, RelocationSection)}
    got_syms = tables_impl.decode_symbols(data, symoff, nsym, stroff, strsize)
    assert [(name, value, size) for name, _, _, _, value, size in got_syms] == want_syms
    for name, off, count in relas:
        assert tables_impl.decode_relas(data, off, count) == want_relas[name], name


# A hand-made buffer: two symbol records, then a string table "\0foo\0bar\0".
_STRTAB = b"\0foo\0bar\0"
_SYMS = struct.pack("<IBBHQQ", 1, 0x12, 0, 1, 0x10, 4) + struct.pack("<IBBHQQ", 5, 0x01, 0, 2, 0, 8)
_BUF = _SYMS + _STRTAB                           # symbols at 0, strings at 48
_RELAS = struct.pack("<QQq", 0x20, (1 << 32) | 2, -4) + struct.pack("<QQq", 0x28, (7 << 32) | 1, 8)


def test_tables_decode_hand_made_buffer(tables_impl: ModuleType) -> None:
    assert tables_impl.decode_symbols(_BUF, 0, 2, 48, len(_STRTAB)) == \
        [("foo", 0x12, 0, 1, 0x10, 4), ("bar", 0x01, 0, 2, 0, 8)]
    assert tables_impl.decode_relas(_RELAS, 0, 2) == [(0x20, 1, 2, -4), (0x28, 7, 1, 8)]
    syms = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    assert tables_impl.build_relocs(_RELAS, 0, 2, syms, _entry) == [(0x20, 2, "s1", -4), (0x28, 1, "s7", 8)]
    assert tables_impl.decode_relas(_RELAS, 0, 0) == []


@pytest.mark.parametrize("args", [
    (-1, 1, 48, 9),                 # negative table offset
    (0, -1, 48, 9),                 # negative count
    (40, 1, 48, 9),                 # record runs past the end of the buffer
    (0, 3, 48, 9),                  # too many records
    (0, 2, -1, 9),                  # negative string table offset
    (0, 2, 48, -1),                 # negative string table size
    (0, 2, 48, 10),                 # string table runs past the end
    (0, 2, 57, 0),                  # empty string table: every name offset is outside
    (0, 2, 48, 5),                  # "bar" (offset 5) is outside a 5-byte table
    (0, 2, 48, 8),                  # "bar" is not NUL-terminated within the table
], ids=["off<0", "count<0", "record-past-end", "count-too-big", "stroff<0", "strsize<0",
        "strtab-past-end", "empty-strtab", "name-outside", "unterminated"])
def test_decode_symbols_rejects_out_of_range(tables_impl: ModuleType, args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        tables_impl.decode_symbols(_BUF, *args)


@pytest.mark.parametrize("args", [(-1, 1), (0, -1), (8, 2), (0, 3), (len(_RELAS), 1)],
                         ids=["off<0", "count<0", "past-end", "count-too-big", "at-end"])
def test_decode_relas_and_build_relocs_reject_out_of_range(tables_impl: ModuleType, args: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        tables_impl.decode_relas(_RELAS, *args)
    with pytest.raises(ValueError):
        tables_impl.build_relocs(_RELAS, *args, list(range(8)), _entry)


def test_build_relocs_reports_bad_symbol_index(tables_impl: ModuleType) -> None:
    # The second relocation names symbol 7: with 7 symbols that is one too far.
    with pytest.raises(IndexError) as info:
        tables_impl.build_relocs(_RELAS, 0, 2, list(range(7)), _entry)
    assert info.value.args == (0x28,)


# Arguments whose bound checks overflow 64-bit arithmetic. Run in a child
# process: the compiled module reads out of bounds on them (and may crash).
_OVERFLOW_CALLS = {
    "relas-count-2**61": "decode_relas(buf, 0, 2**61)",
    "relas-off-2**63": "decode_relas(buf, 2**63, 1)",
    "symbols-count-2**61": "decode_symbols(buf, 0, 2**61, 0, 1)",
    "strtab-2**62+2**62": "decode_symbols(buf, 0, 1, 2**62, 2**62)",
    "build-count-2**61": "build_relocs(buf, 0, 2**61, [], tuple)",
}


@pytest.mark.parametrize("call", list(_OVERFLOW_CALLS.values()), ids=list(_OVERFLOW_CALLS))
def test_tables_reject_overflowing_arguments(tables_impl: ModuleType, call: str,
                                             request: pytest.FixtureRequest) -> None:
    code = (f"import {tables_impl.__name__} as m\n"
            "buf = bytes(64)\n"
            "try:\n"
            f"    m.{call}\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n"
            "else:\n"
            "    print('returned')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("ValueError") and "outside the file" in proc.stdout, proc.stdout


# ---- kbuilder.elf.symbols.read_symbol_table (parent symbol tables) ----------

@pytest.mark.parametrize("corpus_object", ["x86_64/new-function.ORIG.o", "aarch64/syscall.ORIG.o", LARGEST],
                         indirect=True)
def test_read_symbol_table_matches_the_reader(corpus_object: Path) -> None:
    from kbuilder.elf.symbols import read_symbol_table

    entries = read_symbol_table(corpus_object)
    obj = read_object(corpus_object)
    assert [(e.name, e.bind, e.type, e.shndx, e.value, e.size) for e in entries] == \
        [(s.name, s.bind, s.type, s.section.index if s.section is not None else s.shndx, s.value, s.size)
         for s in obj.symbols]


def test_read_symbol_table_on_a_linked_executable(tmp_path: Path) -> None:
    """It reads any ELF64 file with a .symtab, not only relocatable objects."""
    from kbuilder.elf.symbols import read_symbol_table

    src = tmp_path / "prog.c"
    src.write_text("int kb_exported(void) { return 7; }\nint main(void) { return kb_exported(); }\n")
    exe = tmp_path / "prog"
    if subprocess.run(["gcc", "-o", str(exe), str(src)], capture_output=True).returncode != 0:
        pytest.skip("cannot link a host executable")
    names = {e.name for e in read_symbol_table(exe)}
    assert {"main", "kb_exported"} <= names


def _symtab_header_offset(data: bytes) -> int:
    shoff, shnum = struct.unpack_from("<Q", data, 0x28)[0], struct.unpack_from("<H", data, 0x3C)[0]
    for i in range(shnum):
        if struct.unpack_from("<I", data, shoff + 64 * i + 4)[0] == SHT.SYMTAB:
            return shoff + 64 * i
    raise AssertionError("no .symtab")


@pytest.mark.parametrize("field,value", [(32, 2**64 - 24), (24, 2**63), (24, 2**64 - 8)],
                         ids=["sh_size=2**64-24", "sh_offset=2**63", "sh_offset=2**64-8"])
@pytest.mark.parametrize("extensions", ["compiled", "pure"])
def test_read_symbol_table_rejects_huge_symtab_fields(corpus: Path, tmp_path: Path, field: int, value: int,
                                                      extensions: str, request: pytest.FixtureRequest) -> None:
    """A corrupt parent image (vmlinux/module given for sympos) must give
    ElfFormatError. Run in a child process: the compiled decoder may crash."""
    data = bytearray((corpus / "x86_64/clang-unnamed.ORIG.o").read_bytes())
    struct.pack_into("<Q", data, _symtab_header_offset(bytes(data)) + field, value)
    path = tmp_path / "parent.o"
    path.write_bytes(bytes(data))
    code = ("import sys\n"
            "from kbuilder.elf.symbols import read_symbol_table\n"
            "from kbuilder.errors import ElfFormatError\n"
            "try:\n"
            f"    read_symbol_table({str(path)!r})\n"
            "except ElfFormatError as exc:\n"
            "    print('ElfFormatError', exc)\n"
            "except Exception as exc:\n"
            "    print('ESCAPED', type(exc).__name__, exc)\n"
            "else:\n"
            "    print('returned')\n")
    env = {k: v for k, v in os.environ.items() if k != "KBUILDER_NO_EXTENSIONS"}
    if extensions == "pure":
        env["KBUILDER_NO_EXTENSIONS"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("ElfFormatError") and "outside the file" in proc.stdout, proc.stdout
