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


def decode_symbols(const uint8_t[::1] buf, Py_ssize_t off, Py_ssize_t count,
                   Py_ssize_t stroff, Py_ssize_t strsize):
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef const uint8_t *start
    cdef const uint8_t *stop
    cdef uint32_t name_off
    cdef list out = []
    if off < 0 or count < 0 or off + 24 * count > buf.shape[0]:
        raise ValueError("symbol table outside the file")
    if stroff < 0 or strsize < 0 or stroff + strsize > buf.shape[0]:
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


def decode_relas(const uint8_t[::1] buf, Py_ssize_t off, Py_ssize_t count):
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef uint64_t info
    cdef list out = []
    if off < 0 or count < 0 or off + 24 * count > buf.shape[0]:
        raise ValueError("relocation table outside the file")
    for i in range(count):
        p = &buf[0] + off + 24 * i
        info = _u64(p + 8)
        out.append((_u64(p), info >> 32, info & 0xFFFFFFFF, <int64_t>_u64(p + 16)))
    return out


def build_relocs(const uint8_t[::1] buf, Py_ssize_t off, Py_ssize_t count, list symbols, factory):
    """Like decode_relas, but returns factory(offset, type, symbols[index], addend)
    for each record: building the model objects here saves a Python-level loop
    over every relocation. Raises IndexError(offset) for a bad symbol index."""
    cdef Py_ssize_t i, nsym = len(symbols)
    cdef const uint8_t *p
    cdef uint64_t info, symidx
    cdef list out = []
    if off < 0 or count < 0 or off + 24 * count > buf.shape[0]:
        raise ValueError("relocation table outside the file")
    for i in range(count):
        p = &buf[0] + off + 24 * i
        info = _u64(p + 8)
        symidx = info >> 32
        if symidx >= <uint64_t>nsym:
            raise IndexError(_u64(p))
        out.append(factory(_u64(p), info & 0xFFFFFFFF, symbols[symidx], <int64_t>_u64(p + 16)))
    return out
