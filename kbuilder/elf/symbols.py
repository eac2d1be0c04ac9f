"""Read just the symbol table of any ELF64 little-endian file (vmlinux,
a module, an object): what sympos resolution needs from the running
kernel's image, without building the full object model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kbuilder.elf import tables
from kbuilder.elf.constants import EHDR, ELFCLASS64, ELFDATA2LSB, ELFMAG, SHDR, SHT, SYM
from kbuilder.errors import ElfFormatError


# Not frozen: a frozen dataclass's __init__ costs four times as much, and a
# vmlinux has some 150,000 symbols. Treat entries as read-only all the same.
@dataclass(slots=True)
class SymbolEntry:
    name: str
    bind: int
    type: int
    shndx: int
    value: int
    size: int


def read_symbol_table(path: str | os.PathLike[str]) -> list[SymbolEntry]:
    path = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ElfFormatError(f"cannot read: {exc.strerror}", path=path) from None
    if len(data) < EHDR.size or data[:4] != ELFMAG:
        raise ElfFormatError("not an ELF file", path=path)
    if data[4] != ELFCLASS64 or data[5] != ELFDATA2LSB:
        raise ElfFormatError("only ELF64 little-endian files are supported", path=path)
    fields = EHDR.unpack_from(data)
    shoff, shnum = fields[6], fields[12]
    if shoff + SHDR.size > len(data):
        raise ElfFormatError("truncated section header table", path=path)
    if shnum == 0:
        shnum = SHDR.unpack_from(data, shoff)[5]
    if shoff + shnum * SHDR.size > len(data):
        raise ElfFormatError("truncated section header table", path=path)
    headers = list(SHDR.iter_unpack(data[shoff:shoff + shnum * SHDR.size]))
    for hdr in headers:
        if hdr[1] == SHT.SYMTAB:
            if not 0 < hdr[6] < shnum:
                raise ElfFormatError("symbol table has no string table", path=path)
            strtab = headers[hdr[6]]
            for what, h in (("symbol table", hdr), ("its string table", strtab)):
                if h[4] > len(data) or h[5] > len(data) - h[4]:
                    raise ElfFormatError(f"{what} is outside the file (truncated or corrupt)", path=path)
            try:
                decoded = tables.decode_symbols(data, hdr[4], hdr[5] // SYM.size, strtab[4], strtab[5])
            except ValueError as exc:
                raise ElfFormatError(f"symbol table: {exc}", path=path) from None
            return [SymbolEntry(n, info >> 4, info & 0xF, shndx, value, size)
                    for n, info, _, shndx, value, size in decoded]
    raise ElfFormatError("no symbol table (stripped?)", path=path)
