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
from cpython.bytes cimport PyBytes_FromStringAndSize


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


cdef object _symbol_name(const uint8_t *strtab, Py_ssize_t strsize, uint32_t name_off):
    """The NUL-terminated name at `name_off` of a string table of `strsize`
    bytes; ValueError when it does not lie inside."""
    cdef const uint8_t *stop
    if name_off >= strsize:
        raise ValueError(f"symbol name offset {name_off} outside the string table")
    stop = <const uint8_t *>memchr(strtab + name_off, 0, strsize - name_off)
    if stop == NULL:
        raise ValueError("unterminated symbol name")
    return PyUnicode_DecodeUTF8(<const char *>strtab + name_off, stop - (strtab + name_off), "surrogateescape")


cdef int _check_symbol_table(Py_ssize_t size, Py_ssize_t off, Py_ssize_t count, Py_ssize_t stroff,
                             Py_ssize_t strsize) except -1:
    if not _fits(size, off, count, 24):
        raise ValueError("symbol table outside the file")
    if not _fits(size, stroff, strsize, 1):
        raise ValueError("string table outside the file")
    return 0


def decode_symbols(const uint8_t[::1] buf, object off_, object count_, object stroff_, object strsize_):
    # Offsets come straight from the file: anything out of range is a
    # ValueError, never an overflow.
    cdef Py_ssize_t off, count, stroff, strsize
    off, count, stroff, strsize = _index(off_), _index(count_), _index(stroff_), _index(strsize_)
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef list out = []
    _check_symbol_table(buf.shape[0], off, count, stroff, strsize)
    for i in range(count):
        p = &buf[0] + off + 24 * i
        out.append((_symbol_name(&buf[0] + stroff, strsize, _u32(p)),
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


def build_symbols(const uint8_t[::1] buf, object off_, object count_, object stroff_, object strsize_,
                  list sections, const uint8_t[::1] shndx_words, factory):
    """The symbol table as model objects: factory(name, bind, type, other,
    section, shndx, value, size, index) per record, with `section` looked up
    in `sections` (by the extended index table `shndx_words` for SHN_XINDEX)
    and `shndx` left 0 then; the first STT_SECTION symbol of a section
    becomes its `symbol`. Building them here saves a Python-level loop over
    every symbol. Raises ValueError for a malformed table, IndexError(message)
    for a section index out of range."""
    cdef Py_ssize_t off, count, stroff, strsize
    off, count, stroff, strsize = _index(off_), _index(count_), _index(stroff_), _index(strsize_)
    cdef Py_ssize_t i, nsec = len(sections), nwords = shndx_words.shape[0] // 4
    cdef const uint8_t *p
    cdef uint32_t xindex
    cdef uint16_t shndx
    cdef uint8_t info
    cdef object name, section, sym
    cdef list out = []
    _check_symbol_table(buf.shape[0], off, count, stroff, strsize)
    for i in range(count):
        p = &buf[0] + off + 24 * i
        name = _symbol_name(&buf[0] + stroff, strsize, _u32(p))
        info = p[4]
        shndx = _u16(p + 6)
        if 0 < shndx < 0xFF00:
            if shndx >= nsec:
                raise IndexError(f"symbol {name or i}: section index {shndx} out of range")
            section = sections[shndx]
            shndx = 0
        elif shndx == 0xFFFF:
            if i >= nwords:
                raise IndexError(f"symbol {name or i}: extended section index missing")
            xindex = _u32(&shndx_words[0] + 4 * i)
            if not 0 < xindex < nsec:
                raise IndexError(f"symbol {name or i}: extended section index {xindex} out of range")
            section = sections[xindex]
            shndx = 0
        else:
            section = None
        sym = factory(name, info >> 4, info & 0xF, p[5], section, shndx, _u64(p + 8), _u64(p + 16), i)
        if section is not None and info & 0xF == 3 and section.symbol is None:
            section.symbol = sym
        out.append(sym)
    return out


def build_sections(const uint8_t[::1] buf, object shoff_, object shnum_, object stroff_, object strsize_,
                   object max_align_, factory):
    """The section header table as model objects: factory(name, type, flags,
    data, size, addralign, entsize, addr, None, None, link, info, [], None,
    0, [], None, None, index) per header, `data` a copy of the contents
    (empty for SHT_NULL and SHT_NOBITS), names from the string table at
    [stroff, stroff+strsize). Raises ValueError(message) for an invalid
    alignment, contents past the end of the file or a bad name offset."""
    cdef Py_ssize_t shoff, shnum, stroff, strsize, size = buf.shape[0]
    shoff, shnum, stroff, strsize = _index(shoff_), _index(shnum_), _index(stroff_), _index(strsize_)
    cdef uint64_t max_align = max_align_
    cdef Py_ssize_t i
    cdef const uint8_t *p
    cdef const uint8_t *start
    cdef const uint8_t *stop
    cdef uint32_t name_off, sh_type
    cdef uint64_t sh_offset, sh_size, sh_align
    cdef object data
    cdef list out = []
    if not _fits(size, shoff, shnum, 64):
        raise ValueError("section header table outside the file")
    for i in range(1, shnum):
        p = &buf[0] + shoff + 64 * i
        sh_type, sh_offset, sh_size, sh_align = _u32(p + 4), _u64(p + 24), _u64(p + 32), _u64(p + 48)
        if sh_align & (sh_align - 1) or sh_align > max_align:
            raise ValueError(f"section {i}: invalid alignment {sh_align}")
        if sh_type != 8 and (sh_offset > <uint64_t>size or sh_size > <uint64_t>size - sh_offset):
            raise ValueError(f"truncated: section {i} (0x{sh_offset:x}+0x{sh_size:x}) "
                             f"is past the end of the file ({size} bytes)")
    if not _fits(size, stroff, strsize, 1):
        raise ValueError("section name table outside the file")
    for i in range(shnum):
        p = &buf[0] + shoff + 64 * i
        name_off, sh_type, sh_offset, sh_size = _u32(p), _u32(p + 4), _u64(p + 24), _u64(p + 32)
        if name_off >= strsize:
            raise ValueError(f"section name offset {name_off} outside the name table")
        start = &buf[0] + stroff + name_off
        stop = <const uint8_t *>memchr(start, 0, strsize - name_off)
        if stop == NULL:
            raise ValueError(f"section name offset {name_off} outside the name table")
        if sh_type == 8 or sh_type == 0:
            data = b""
        else:
            data = PyBytes_FromStringAndSize(<const char *>&buf[0] + sh_offset, sh_size)
        out.append(factory(PyUnicode_DecodeUTF8(<const char *>start, stop - start, "surrogateescape"),
                           sh_type, _u64(p + 8), data, sh_size, _u64(p + 48), _u64(p + 56), _u64(p + 16),
                           None, None, _u32(p + 40), _u32(p + 44), [], None, 0, [], None, None, i))
    return out
