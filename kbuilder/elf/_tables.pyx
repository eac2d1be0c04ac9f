# cython: language_level=3, boundscheck=False, wraparound=False
"""Decoding of the large ELF tables (symbols, relocations) on raw buffers.

The hot part of reading an object: the corpus' largest object has 4,600
symbols and 16,000 relocations, and pyelftools parses each record through
construct (about 0.24 s for that object). Typed loops over the buffer do it
in about a millisecond. `_tables_py.py` is the reference twin.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memchr, memcpy
from cpython.unicode cimport PyUnicode_DecodeUTF8


cdef inline uint64_t _u64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint32_t _u32(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint16_t _u16(const uint8_t *p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef Py_ssize_t _index(object value) except -2:
    if value < 0 or value > 0x7FFFFFFFFFFFFFF0:
        return -1  # rejected by _fits
    return value


cdef inline bint _fits(Py_ssize_t size, Py_ssize_t off, Py_ssize_t count, Py_ssize_t item) noexcept:
    """off + count * item <= size, without overflowing."""
    return 0 <= off <= size and 0 <= count and count <= (size - off) // item


def decode_symbols(const uint8_t[::1] buf, object off_, object count_, object stroff_, object strsize_):
    # Offsets come straight from the file: anything out of range is a
    # ValueError, never an overflow.
    cdef Py_ssize_t off, count, stroff, strsize
    off, count, stroff, strsize = _index(off_), _index(count_), _index(stroff_), _index(strsize_)
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef const uint8_t *start
    cdef const uint8_t *stop
    cdef uint32_t name_off
    cdef list out = []
    if not _fits(buf.shape[0], off, count, 24):
        raise ValueError("symbol table outside the file")
    if not _fits(buf.shape[0], stroff, strsize, 1):
        raise ValueError("string table outside the file")
    for i in range(count):
        p = &buf[0] + off + 24 * i
        name_off = _u32(p)
        if name_off >= strsize:
            raise ValueError(f"symbol name offset {name_off} outside the string table")
        start = &buf[0] + stroff + name_off
        stop = <const uint8_t *>memchr(start, 0, strsize - name_off)
        if stop == NULL:
            raise ValueError("unterminated symbol name")
        out.append((PyUnicode_DecodeUTF8(<const char *>start, stop - start, "surrogateescape"),
                    p[4], p[5], _u16(p + 6), _u64(p + 8), _u64(p + 16)))
    return out


def decode_relas(const uint8_t[::1] buf, object off_, object count_):
    cdef Py_ssize_t off = _index(off_), count = _index(count_)
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef uint64_t info
    cdef list out = []
    if not _fits(buf.shape[0], off, count, 24):
        raise ValueError("relocation table outside the file")
    for i in range(count):
        p = &buf[0] + off + 24 * i
        info = _u64(p + 8)
        out.append((_u64(p), info >> 32, info & 0xFFFFFFFF, <int64_t>_u64(p + 16)))
    return out


def build_relocs(const uint8_t[::1] buf, object off_, object count_, list symbols, factory):
    """Like decode_relas, but returns factory(offset, type, symbols[index], addend)
    for each record: building the model objects here saves a Python-level loop
    over every relocation. Raises IndexError(offset) for a bad symbol index."""
    cdef Py_ssize_t i, nsym = len(symbols)
    cdef Py_ssize_t off = _index(off_), count = _index(count_)
    cdef const uint8_t *p
    cdef uint64_t info, symidx
    cdef list out = []
    if not _fits(buf.shape[0], off, count, 24):
        raise ValueError("relocation table outside the file")
    for i in range(count):
        p = &buf[0] + off + 24 * i
        info = _u64(p + 8)
        symidx = info >> 32
        if symidx >= <uint64_t>nsym:
            raise IndexError(_u64(p))
        out.append(factory(_u64(p), info & 0xFFFFFFFF, symbols[symidx], <int64_t>_u64(p + 16)))
    return out
