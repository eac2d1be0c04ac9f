"""Pure-Python twin of `_fastcmp.pyx` (same function, same results)."""

from __future__ import annotations

from kbuilder.elf.model import Reloc

_SECTION = 3
_BY_CONTENT = 0x10 | 0x20  # SHF_MERGE | SHF_STRINGS


def next_suspect(a: list[Reloc], b: list[Reloc], start: int) -> int:
    """Index >= start of the first pair that is not plainly equal, or -1."""
    if len(a) != len(b):
        raise ValueError("lists differ in length")
    for i in range(start, len(a)):
        ra, rb = a[i], b[i]
        if ra.offset != rb.offset or ra.type != rb.type or ra.addend != rb.addend:
            return i
        sa, sb = ra.symbol, rb.symbol
        if sa.type == _SECTION or sb.type == _SECTION or sa.name != sb.name:
            return i
        if (sa.section is not None and sa.section.flags & _BY_CONTENT) or \
                (sb.section is not None and sb.section.flags & _BY_CONTENT):
            return i
    return -1


def retarget_bundled(relocs: list[Reloc], bundled: dict) -> list[int]:  # type: ignore[type-arg]
    """Point relocations against a bundled section's symbol at the one
    symbol of that section (addend made relative to it); return the
    indexes of the other section-symbol relocations, for the slow path."""
    rest = []
    for i, reloc in enumerate(relocs):
        sym = reloc.symbol
        if sym.type != _SECTION:
            continue
        owner = bundled.get(sym.section)
        if owner is None:
            rest.append(i)
        else:
            reloc.symbol = owner
            reloc.addend -= owner.value
    return rest
