"""How a relocation is compared: by what it means, not by its raw fields.

A relocation's comparison key is (place, type, target, addend) where the
target is the symbol's correlation key, or, for string literals and merged
constants, their content: the same string may sit at another offset (or in
another `.rodata.*.str1.1` section) after an unrelated edit.
"""

from __future__ import annotations

from kbuilder.arch import Arch
from kbuilder.correlate.names import correlation_key, is_mergeable_constant_section, is_string_section
from kbuilder.compare.fastcmp import next_suspect
from kbuilder.elf.model import Reloc, Section

RelocKey = tuple[object, ...]


def string_at(sec: Section, place: int) -> bytes | None:
    data = sec.data
    if not 0 <= place < len(data):
        return None
    end = data.find(b"\0", place)
    return data[place:end if end >= 0 else len(data)]


def target_place(arch: Arch, base: Section | None, reloc: Reloc) -> int:
    """Offset designated inside the target symbol's section. For a
    PC-relative reference from code the displacement usually ends the
    instruction (`lea .LC0(%rip)`): both sides are adjusted alike."""
    adjust = 0
    if base is not None and base.flags & 0x4 and reloc.type in arch.pc_relative:
        adjust = arch.pcrel_place_adjust(None, reloc.offset, reloc.type)
    return reloc.symbol.value + reloc.addend + adjust


def reloc_key(arch: Arch, base: Section | None, reloc: Reloc) -> RelocKey:
    sym = reloc.symbol
    sec = sym.section
    if sec is not None:
        if sec.name == ".altinstr_aux":
            # Out-of-line alternative helpers: where in them a reference lands
            # moves with unrelated edits and is not part of the function.
            return (reloc.offset, reloc.type, ".altinstr_aux")
        if is_string_section(sec):
            text = string_at(sec, target_place(arch, base, reloc))
            if text is not None:
                return (reloc.offset, reloc.type, "str", text)
        elif is_mergeable_constant_section(sec):
            place = target_place(arch, base, reloc)
            size = sec.entsize or 8
            return (reloc.offset, reloc.type, "const", sec.data[place:place + size])
    return (reloc.offset, reloc.type, correlation_key(sym.display_name), reloc.addend)


def reloc_keys(arch: Arch, rsec: Section) -> list[RelocKey]:
    base = rsec.info_section
    return [reloc_key(arch, base, r) for r in rsec.relocs]


def relocs_equal(arch: Arch, orsec: Section, prsec: Section) -> bool:
    """Whether two relocation sections mean the same references, pair by
    pair. The compiled walker skips plainly equal pairs; the rest are
    compared by meaning."""
    a, b = orsec.relocs, prsec.relocs
    if len(a) != len(b):
        return False
    obase, pbase = orsec.info_section, prsec.info_section
    i = next_suspect(a, b, 0)
    while i >= 0:
        if reloc_key(arch, obase, a[i]) != reloc_key(arch, pbase, b[i]):
            return False
        i = next_suspect(a, b, i + 1)
    return True
