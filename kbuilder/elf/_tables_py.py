"""Pure-Python twin of `_tables.pyx` (same functions, same results).

Used when the compiled module is unavailable or KBUILDER_NO_EXTENSIONS=1,
and by the tests that check both implementations agree.
"""

from __future__ import annotations

import struct

_SYM = struct.Struct("<IBBHQQ")
_RELA = struct.Struct("<QQq")


def _fits(size: int, off: int, count: int, item: int) -> bool:
    return 0 <= off <= size and 0 <= count and count * item <= size - off


def decode_symbols(buf: bytes, off: int, count: int, stroff: int, strsize: int
                   ) -> list[tuple[str, int, int, int, int, int]]:
    """Decode `count` Elf64_Sym records at `off`; names from the string table
    at [stroff, stroff+strsize). Returns (name, info, other, shndx, value, size)."""
    if not _fits(len(buf), off, count, 24):
        raise ValueError("symbol table outside the file")
    if not _fits(len(buf), stroff, strsize, 1):
        raise ValueError("string table outside the file")
    out = []
    end = stroff + strsize
    for name_off, info, other, shndx, value, size in _SYM.iter_unpack(buf[off:off + 24 * count]):
        if name_off >= strsize:
            raise ValueError(f"symbol name offset {name_off} outside the string table")
        start = stroff + name_off
        stop = buf.find(b"\0", start, end)
        if stop < 0:
            raise ValueError("unterminated symbol name")
        out.append((buf[start:stop].decode("utf-8", "surrogateescape"), info, other, shndx, value, size))
    return out


def decode_relas(buf: bytes, off: int, count: int) -> list[tuple[int, int, int, int]]:
    """Decode `count` Elf64_Rela records: (offset, symbol index, type, addend)."""
    if not _fits(len(buf), off, count, 24):
        raise ValueError("relocation table outside the file")
    return [(r_off, info >> 32, info & 0xFFFFFFFF, addend)
            for r_off, info, addend in _RELA.iter_unpack(buf[off:off + 24 * count])]


def build_relocs(buf: bytes, off: int, count: int, symbols: list, factory):  # type: ignore[no-untyped-def]
    """Like decode_relas, but returns factory(offset, type, symbols[index], addend)
    for each record. Raises IndexError(offset) for a bad symbol index."""
    out = []
    nsym = len(symbols)
    for r_off, symidx, rtype, addend in decode_relas(buf, off, count):
        if symidx >= nsym:
            raise IndexError(r_off)
        out.append(factory(r_off, rtype, symbols[symidx], addend))
    return out


def build_symbols(buf: bytes, off: int, count: int, stroff: int, strsize: int, sections: list,  # type: ignore[no-untyped-def]
                  shndx_words: bytes, factory):
    """The symbol table as model objects (see _tables.pyx: same contract)."""
    out = []
    nsec = len(sections)
    for i, (name, info, other, shndx, value, size) in enumerate(decode_symbols(buf, off, count, stroff, strsize)):
        if 0 < shndx < 0xFF00:
            if shndx >= nsec:
                raise IndexError(f"symbol {name or i}: section index {shndx} out of range")
            section = sections[shndx]
            shndx = 0
        elif shndx == 0xFFFF:
            if (i + 1) * 4 > len(shndx_words):
                raise IndexError(f"symbol {name or i}: extended section index missing")
            xindex = int.from_bytes(shndx_words[i * 4:i * 4 + 4], "little")
            if not 0 < xindex < nsec:
                raise IndexError(f"symbol {name or i}: extended section index {xindex} out of range")
            section = sections[xindex]
            shndx = 0
        else:
            section = None
        sym = factory(name, info >> 4, info & 0xF, other, section, shndx, value, size, i)
        if section is not None and info & 0xF == 3 and section.symbol is None:
            section.symbol = sym
        out.append(sym)
    return out


_SHDR = struct.Struct("<IIQQQQIIQQ")


def build_sections(buf: bytes, shoff: int, shnum: int, stroff: int, strsize: int, max_align: int,  # type: ignore[no-untyped-def]
                   factory):
    """The section header table as model objects (see _tables.pyx: same contract)."""
    if not _fits(len(buf), shoff, shnum, 64):
        raise ValueError("section header table outside the file")
    headers = list(_SHDR.iter_unpack(buf[shoff:shoff + 64 * shnum]))
    for i, hdr in enumerate(headers[1:], 1):
        sh_type, sh_offset, sh_size, sh_align = hdr[1], hdr[4], hdr[5], hdr[8]
        if sh_align & (sh_align - 1) or sh_align > max_align:
            raise ValueError(f"section {i}: invalid alignment {sh_align}")
        if sh_type != 8 and sh_offset + sh_size > len(buf):
            raise ValueError(f"truncated: section {i} (0x{sh_offset:x}+0x{sh_size:x}) "
                             f"is past the end of the file ({len(buf)} bytes)")
    if not _fits(len(buf), stroff, strsize, 1):
        raise ValueError("section name table outside the file")
    out = []
    end = stroff + strsize
    for i, hdr in enumerate(headers):
        name_off, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_align, sh_entsize = hdr
        stop = buf.find(b"\0", stroff + name_off, end) if name_off < strsize else -1
        if stop < 0:
            raise ValueError(f"section name offset {name_off} outside the name table")
        data = b"" if sh_type == 8 or sh_type == 0 else buf[sh_offset:sh_offset + sh_size]
        out.append(factory(buf[stroff + name_off:stop].decode("utf-8", "surrogateescape"), sh_type, sh_flags, data,
                           sh_size, sh_align, sh_entsize, sh_addr, None, None, sh_link, sh_info, [], None, 0, [],
                           None, None, i))
    return out
