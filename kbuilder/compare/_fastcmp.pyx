# cython: language_level=3, boundscheck=False, wraparound=False
"""The differ's hot loop: walk two relocation lists in step.

Most relocation pairs of a correlated section are plainly equal: same place,
type and addend, and a target with the same name (correlation renamed the
patched twins to the original names). This loop skips those at C speed and
stops at the first pair that needs the full, meaning-based comparison
(`reloc_key`): a name that differs, a section-symbol target, or a string or
merged constant compared by content. `_fastcmp_py.py` is the reference twin.
"""

cdef int _SECTION = 3
cdef long _BY_CONTENT = 0x10 | 0x20   # SHF_MERGE | SHF_STRINGS


def next_suspect(list a, list b, Py_ssize_t start):
    """Index >= start of the first pair that is not plainly equal, or -1."""
    cdef Py_ssize_t i, n = len(a)
    cdef object ra, rb, sa, sb, sec
    if len(b) != n:
        raise ValueError("lists differ in length")
    for i in range(start, n):
        ra = a[i]
        rb = b[i]
        if ra.offset != rb.offset or ra.type != rb.type or ra.addend != rb.addend:
            return i
        sa = ra.symbol
        sb = rb.symbol
        if sa.type == _SECTION or sb.type == _SECTION:
            return i
        if sa.name != sb.name:
            return i
        sec = sa.section
        if sec is not None and (<long>sec.flags) & _BY_CONTENT:
            return i
        sec = sb.section
        if sec is not None and (<long>sec.flags) & _BY_CONTENT:
            return i
    return -1


def retarget_bundled(list relocs, dict bundled):
    """Point relocations against a bundled section's symbol at the one
    symbol of that section (addend made relative to it); return the
    indexes of the other section-symbol relocations, for the slow path."""
    cdef Py_ssize_t i, n = len(relocs)
    cdef object reloc, sym, owner
    cdef list rest = []
    for i in range(n):
        reloc = relocs[i]
        sym = reloc.symbol
        if sym.type != _SECTION:
            continue
        owner = bundled.get(sym.section)
        if owner is None:
            rest.append(i)
        else:
            reloc.symbol = owner
            reloc.addend = reloc.addend - owner.value
    return rest
