"""read -> serialize -> parse keeps every object the same, and binutils accept the result.

Runs on every corpus object (x86_64 and aarch64), every compiled fixture
object, and two synthetic objects covering shapes the corpus lacks (a COMDAT
section group; more than SHN_LORESERVE sections, i.e. extended numbering and
SHT_SYMTAB_SHNDX).

The writer regenerates the index-bearing tables (.symtab, its string table,
.shstrtab, SHT_SYMTAB_SHNDX, relocation and group sections), so those are
compared by meaning (symbols, relocations, members) rather than bytes; every
other section must come back byte for byte.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kbuilder.elf import ElfObject, parse_object, serialize
from kbuilder.elf.constants import SHT
from kbuilder.elf.model import Section, Symbol

_REGENERATED_TYPES = {SHT.SYMTAB, SHT.SYMTAB_SHNDX, SHT.RELA, SHT.GROUP}


@dataclass
class RoundTrip:
    original: bytes
    before: ElfObject   # the original, parsed and never touched
    written: bytes      # serialize(parse(original))
    after: ElfObject    # the written bytes, parsed again


# Each object is read, written and re-read once per session, whatever the
# number of tests looking at it.
_CACHE: dict[Path, RoundTrip] = {}


def roundtrip(path: Path) -> RoundTrip:
    if path not in _CACHE:
        original = path.read_bytes()
        before = parse_object(original, str(path))
        written = serialize(parse_object(original, str(path)))
        after = parse_object(written, f"{path} (written)")
        _CACHE[path] = RoundTrip(original, before, written, after)
    return _CACHE[path]


# ---- comparable views of a model -----------------------------------------

def _sec_key(sec: Section | None) -> tuple[int, str] | None:
    return None if sec is None else (sec.index, sec.name)


def _sym_key(sym: Symbol | None) -> tuple[str, str, int] | None:
    """A symbol's identity: (name, defining section name, index)."""
    return None if sym is None else (sym.name, sym.section_name, sym.index)


def _regenerated_strtabs(obj: ElfObject) -> set[int]:
    ids = {id(s) for s in obj.sections if s.type == SHT.STRTAB and s.name == ".shstrtab"}
    if obj.symtab is not None and obj.symtab.link is not None:
        ids.add(id(obj.symtab.link))
    return ids


def section_rows(obj: ElfObject) -> list[dict[str, Any]]:
    strtabs = _regenerated_strtabs(obj)
    rows = []
    for sec in obj.sections:
        regenerated = sec.type in _REGENERATED_TYPES or id(sec) in strtabs
        link = ("section", _sec_key(sec.link)) if sec.link is not None else ("raw", sec.link_raw)
        if sec.type == SHT.RELA:
            info: tuple[Any, ...] = ("section", _sec_key(sec.info_section))
        elif sec.type == SHT.GROUP:
            info = ("signature", _sym_key(sec.signature))
        else:
            # For .symtab this is the index of the first non-local symbol.
            info = ("raw", sec.info_raw)
        rows.append({
            "index": sec.index, "name": sec.name, "type": sec.type, "flags": sec.flags,
            "addr": sec.addr, "addralign": sec.addralign, "entsize": sec.entsize,
            # String tables are rebuilt (and may be deduplicated differently).
            "size": None if id(sec) in strtabs else sec.size,
            "data": None if regenerated else (len(sec.data), hashlib.sha256(sec.data).hexdigest()),
            "link": link, "info": info,
            "section_symbol": sec.symbol.index if sec.symbol is not None else None,
        })
    return rows


def symbol_rows(obj: ElfObject) -> list[tuple[Any, ...]]:
    return [(sym.index, sym.name, sym.bind, sym.type, sym.other,
             ("section", _sec_key(sym.section)) if sym.section is not None else ("shndx", sym.shndx),
             sym.value, sym.size)
            for sym in obj.symbols]


def reloc_rows(obj: ElfObject) -> dict[tuple[int, str], list[tuple[Any, ...]]]:
    return {(sec.index, sec.name): [(r.offset, r.type, _sym_key(r.symbol), r.addend) for r in sec.relocs]
            for sec in obj.sections if sec.type == SHT.RELA}


def group_rows(obj: ElfObject) -> list[tuple[Any, ...]]:
    return [(_sec_key(sec), sec.group_flags, [m.name for m in sec.members], _sym_key(sec.signature))
            for sec in obj.sections if sec.type == SHT.GROUP]


def assert_same_rows(what: str, before: list[Any], after: list[Any]) -> None:
    """Equality with a short message naming the first differing row (a full
    diff of thousands of rows would drown it)."""
    if before == after:
        return
    for i, (b, a) in enumerate(zip(before, after)):
        if b != a:
            pytest.fail(f"{what}: row {i} differs\n  original: {b}\n  written:  {a}", pytrace=False)
    pytest.fail(f"{what}: {len(before)} rows in the original, {len(after)} after writing", pytrace=False)


# ---- tests ----------------------------------------------------------------

def test_model_survives_roundtrip(any_object: Path) -> None:
    rt = roundtrip(any_object)
    before, after = rt.before, rt.after
    assert (after.machine, after.flags, after.osabi, after.abiversion) == \
        (before.machine, before.flags, before.osabi, before.abiversion)
    assert_same_rows("sections", section_rows(before), section_rows(after))
    assert_same_rows("symbols", symbol_rows(before), symbol_rows(after))
    relocs_before, relocs_after = reloc_rows(before), reloc_rows(after)
    assert list(relocs_before) == list(relocs_after)
    for key, rows in relocs_before.items():
        assert_same_rows(f"relocations of {key[1]} (section {key[0]})", rows, relocs_after[key])
    assert_same_rows("groups", group_rows(before), group_rows(after))


def test_serialize_is_a_fixed_point(any_object: Path) -> None:
    """Writing what the writer wrote changes nothing: the output is canonical."""
    rt = roundtrip(any_object)
    again = serialize(parse_object(rt.written, "written"))
    assert again == rt.written


_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\b\d+\b")


def _normalise(lines: list[str], path: Path) -> Counter[str]:
    return Counter(_NUMBER.sub("N", line.replace(str(path), "FILE")) for line in lines)


def test_written_object_passes_readelf(any_object: Path, binutils: Any, tmp_path: Path) -> None:
    rt = roundtrip(any_object)
    written = tmp_path / "written.o"
    written.write_bytes(rt.written)
    original_warnings = binutils.readelf_warnings(any_object)
    written_warnings = binutils.readelf_warnings(written)
    if not original_warnings:
        # The usual case (all of the corpus today): stderr empty, no "Warning" line.
        assert written_warnings == []
    else:
        # readelf already complains about the original (a toolchain quirk we
        # must not be blamed for): require only that writing adds no NEW
        # warning. Offsets and counts differ between the two files, so lines
        # are compared with numbers and the file name blanked out.
        new = _normalise(written_warnings, written) - _normalise(original_warnings, any_object)
        assert not new, f"writing added readelf warnings: {sorted(new)}"


def test_written_object_links(any_object: Path, binutils: Any, tmp_path: Path) -> None:
    rt = roundtrip(any_object)
    linker = binutils.linker_for(rt.before.machine)
    if linker is None:
        pytest.skip(f"no linker for e_machine {rt.before.machine} "
                    "(the host ld is x86_64; aarch64 needs aarch64-linux-gnu-ld)")
    written = tmp_path / "written.o"
    written.write_bytes(rt.written)
    proc = binutils.run(linker, "-r", "-o", tmp_path / "out.o", written)
    assert proc.returncode == 0, f"ld -r failed on the written object:\n{proc.stderr}"
    reference = binutils.run(linker, "-r", "-o", tmp_path / "reference.o", any_object)
    if reference.returncode == 0 and not reference.stderr:
        assert proc.stderr == "", f"ld -r is quiet on the original but not on the written object:\n{proc.stderr}"



@pytest.mark.parametrize("any_object", ["synthetic/comdat-group"], indirect=True)
def test_synthetic_group_object_has_a_group(any_object: Path) -> None:
    """Guard the coverage the synthetic objects exist for: should a toolchain
    change stop producing these shapes, the round trip would silently test less."""
    rt = roundtrip(any_object)
    groups = [s for s in rt.before.sections if s.type == SHT.GROUP]
    assert len(groups) == 1
    assert groups[0].signature is not None and groups[0].signature.name == "kb_grp_sig"
    assert [m.name for m in groups[0].members] == [".data.kb_grp", ".rela.data.kb_grp"]
    assert group_rows(rt.after) == group_rows(rt.before)


@pytest.mark.parametrize("any_object", ["synthetic/many-sections"], indirect=True)
def test_synthetic_many_sections_object_uses_extended_numbering(any_object: Path) -> None:
    rt = roundtrip(any_object)
    obj = rt.before
    for raw in (rt.original, rt.written):
        e_shnum = int.from_bytes(raw[0x3C:0x3E], "little")
        e_shstrndx = int.from_bytes(raw[0x3E:0x40], "little")
        assert (e_shnum, e_shstrndx) == (0, 0xFFFF)   # counts live in section header 0
    assert len(obj.sections) + 1 >= 0xFF00
    assert any(s.type == SHT.SYMTAB_SHNDX for s in obj.sections)
    assert any(s.section is not None and s.section.index >= 0xFF00 for s in obj.symbols)


@pytest.mark.conformance
@pytest.mark.parametrize("alignment", [2**62, 2**64 - 1], ids=["2**62", "2**64-1"])
def test_absurd_alignment_is_refused_cleanly(corpus: Path, alignment: int) -> None:
    """Whatever the reader accepts, the writer writes or refuses with ElfModelError."""
    from kbuilder.elf import ElfModelError
    from kbuilder.errors import ElfFormatError

    data = bytearray((corpus / "x86_64/clang-unnamed.ORIG.o").read_bytes())
    e_shoff = int.from_bytes(data[0x28:0x30], "little")
    data[e_shoff + 64 + 48:e_shoff + 64 + 56] = alignment.to_bytes(8, "little")  # section 1 sh_addralign
    try:
        obj = parse_object(bytes(data), "aligned.o")
    except ElfFormatError:
        return
    try:
        serialize(obj)
    except ElfModelError:
        pass
