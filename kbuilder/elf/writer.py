"""Serialise the model back to an ELF64 relocatable object.

Written by hand: pyelftools cannot write, and LIEF 1.0 crashed when asked to
drop a section from a relocatable object. The writer is strict and small:
it regenerates every table that holds indexes (symbol table, string tables,
relocation and group sections, extended section indexes) from the object
graph, so edits never leave a stale index behind.
"""

from __future__ import annotations

import os
import struct

from kbuilder.elf.constants import (
    EHDR, ELFCLASS64, ELFDATA2LSB, ELFMAG, ET, EV_CURRENT, RELA, SHDR, SHN, SHT, STB, SYM, STT,
)
from kbuilder.elf.model import ElfModelError, ElfObject, Section
from kbuilder.elf.reader import MAX_ALIGN
from kbuilder.util.files import atomic_write

_U32 = struct.Struct("<I")


class _StringTable:
    def __init__(self) -> None:
        self.blob = bytearray(b"\0")
        self.offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        off = self.offsets.get(text)
        if off is None:
            off = self.offsets[text] = len(self.blob)
            self.blob += text.encode("utf-8", "surrogateescape") + b"\0"
        return off


def order_symbols(obj: ElfObject) -> None:
    """Null symbol first, then locals, then globals (the gABI requires locals
    first; `.symtab`'s sh_info is the index of the first non-local)."""
    null, rest = obj.symbols[0], obj.symbols[1:]
    # FILE symbols open the block of locals that follow them; a stable sort
    # keeps that grouping.
    locals_ = [s for s in rest if s.bind == STB.LOCAL]
    globals_ = [s for s in rest if s.bind != STB.LOCAL]
    obj.symbols = [null, *locals_, *globals_]
    for i, sym in enumerate(obj.symbols):
        sym.index = i
    obj.invalidate()


def serialize(obj: ElfObject) -> bytes:
    """Return the bytes of `obj` as an ELF file, reindexing it in place."""
    order_symbols(obj)
    sections = obj.sections
    for i, sec in enumerate(sections, 1):
        sec.index = i
    present = {id(s) for s in sections}
    nsec = len(sections) + 1
    symtab = obj.symtab
    _check_links(obj, present)

    symtab_data, shndx_data, first_global = _symbol_table(obj, symtab)
    for sec in sections:
        if sec.type == SHT.SYMTAB:
            sec.data, sec.size, sec.entsize = symtab_data.blob_sym, len(symtab_data.blob_sym), SYM.size
            sec.info_raw = first_global
        elif sec.type == SHT.SYMTAB_SHNDX:
            sec.data, sec.size, sec.entsize = shndx_data, len(shndx_data), 4
        elif sec.type == SHT.RELA:
            blob = b"".join(RELA.pack(r.offset, (r.symbol.index << 32) | r.type, r.addend) for r in sec.relocs)
            sec.data, sec.size, sec.entsize = blob, len(blob), RELA.size
            sec.addralign = max(sec.addralign, 8)
        elif sec.type == SHT.GROUP:
            blob = _U32.pack(sec.group_flags) + b"".join(_U32.pack(m.index) for m in sec.members)
            sec.data, sec.size, sec.entsize = blob, len(blob), 4
            sec.addralign = max(sec.addralign, 4)
    if symtab is not None and symtab.link is not None:
        strtab = symtab.link
        strtab.data = bytes(symtab_data.names.blob)
        strtab.size = len(strtab.data)

    shstr = _StringTable()
    name_offs = [shstr.add(sec.name) for sec in sections]
    shstrtab = _find_shstrtab(obj)
    shstrtab.data = bytes(shstr.blob)
    shstrtab.size = len(shstrtab.data)
    # The name table's own name is already in it; adding it again is a no-op.

    out = bytearray(EHDR.size)
    offsets = []
    for sec in sections:
        if sec.type == SHT.NOBITS:
            offsets.append(len(out))
            continue
        if len(sec.data) != sec.size:
            raise ElfModelError(f"section {sec.name}: {len(sec.data)} bytes of data but sh_size {sec.size}")
        align = max(sec.addralign, 1)
        if align & (align - 1) or align > MAX_ALIGN:
            raise ElfModelError(f"section {sec.name}: invalid alignment {sec.addralign}")
        out += b"\0" * (-len(out) % align)
        offsets.append(len(out))
        out += sec.data
    out += b"\0" * (-len(out) % 8)
    shoff = len(out)
    out += b"\0" * SHDR.size
    if nsec >= SHN.LORESERVE:
        out[shoff:shoff + SHDR.size] = SHDR.pack(0, 0, 0, 0, 0, nsec, shstrtab.index, 0, 0, 0)
    for sec, name_off, offset in zip(sections, name_offs, offsets):
        link, info = _link_info(sec)
        out += SHDR.pack(name_off, sec.type, sec.flags, sec.addr, offset, sec.size, link, info,
                         sec.addralign, sec.entsize)
    ident = ELFMAG + bytes([ELFCLASS64, ELFDATA2LSB, EV_CURRENT, obj.osabi, obj.abiversion]) + b"\0" * 7
    EHDR.pack_into(out, 0, ident, ET.REL, obj.machine, EV_CURRENT, 0, 0, shoff, obj.flags,
                   EHDR.size, 0, 0, SHDR.size,
                   0 if nsec >= SHN.LORESERVE else nsec,
                   SHN.XINDEX if shstrtab.index >= SHN.LORESERVE else shstrtab.index)
    return bytes(out)


def write_object(obj: ElfObject, path: str | os.PathLike[str]) -> None:
    """Write atomically, so a failure never leaves a half-written object."""
    atomic_write(path, serialize(obj))


class _SymtabBlobs:
    def __init__(self) -> None:
        self.names = _StringTable()
        self.blob_sym = b""


def _symbol_table(obj: ElfObject, symtab: Section | None) -> tuple[_SymtabBlobs, bytes, int]:
    blobs = _SymtabBlobs()
    if symtab is None:
        if len(obj.symbols) > 1:
            raise ElfModelError("object has symbols but no .symtab section")
        return blobs, b"", 0
    records = []
    shndx = []
    need_xindex = False
    first_global = len(obj.symbols)
    for sym in obj.symbols:
        if sym.bind != STB.LOCAL and first_global == len(obj.symbols):
            first_global = sym.index
        name_off = blobs.names.add(sym.name)
        if sym.section is not None:
            index = sym.section.index
            if index >= SHN.LORESERVE:
                need_xindex = True
                shndx.append(index)
                index = SHN.XINDEX
            else:
                shndx.append(0)
        else:
            index = sym.shndx
            shndx.append(0)
        records.append(SYM.pack(name_off, (sym.bind << 4) | (sym.type & 0xF), sym.other, index,
                                sym.value, sym.size))
    blobs.blob_sym = b"".join(records)
    has_table = any(s.type == SHT.SYMTAB_SHNDX for s in obj.sections)
    if need_xindex and not has_table:
        raise ElfModelError("more than 65280 sections need a SHT_SYMTAB_SHNDX section")
    shndx_blob = b"".join(_U32.pack(i) for i in shndx) if has_table else b""
    return blobs, shndx_blob, first_global


def _find_shstrtab(obj: ElfObject) -> Section:
    for sec in obj.sections:
        if sec.type == SHT.STRTAB and sec.name == ".shstrtab":
            return sec
    raise ElfModelError("object has no .shstrtab section")


def _link_info(sec: Section) -> tuple[int, int]:
    link = sec.link.index if sec.link is not None else sec.link_raw
    if sec.type == SHT.RELA:
        info = sec.info_section.index if sec.info_section is not None else 0
    elif sec.type == SHT.SYMTAB:
        info = sec.info_raw
    elif sec.type == SHT.GROUP:
        info = sec.signature.index if sec.signature is not None else 0
    else:
        info = sec.info_raw
    return link, info


def _check_links(obj: ElfObject, present: set[int]) -> None:
    """Refuse to write references to sections or symbols no longer in the object."""
    symbols = {id(s) for s in obj.symbols}
    for sym in obj.symbols[1:]:
        if sym.section is not None and id(sym.section) not in present:
            raise ElfModelError(f"symbol {sym.display_name} is defined in a removed section {sym.section.name}")
        if sym.type == STT.SECTION and sym.section is None:
            raise ElfModelError("a section symbol has no section")
    for sec in obj.sections:
        if sec.link is not None and id(sec.link) not in present:
            raise ElfModelError(f"section {sec.name} links to removed section {sec.link.name}")
        if sec.type == SHT.RELA:
            if sec.info_section is None or id(sec.info_section) not in present:
                raise ElfModelError(f"relocation section {sec.name} applies to a removed section")
            for reloc in sec.relocs:
                if id(reloc.symbol) not in symbols:
                    raise ElfModelError(f"{sec.name}+0x{reloc.offset:x} refers to removed symbol "
                                        f"{reloc.symbol.display_name}")
        if sec.type == SHT.GROUP:
            for member in sec.members:
                if id(member) not in present:
                    raise ElfModelError(f"group {sec.name} lists removed section {member.name}")
            if sec.signature is not None and id(sec.signature) not in symbols:
                raise ElfModelError(f"group {sec.name} has a removed signature symbol")
