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
