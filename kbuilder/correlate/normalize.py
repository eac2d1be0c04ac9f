"""Make relocations comparable: point them at the symbol they mean.

Compilers often relocate against a section symbol (`.text.foo + 0x10`,
`.bss.counter.3 - 4`). Two compilations can lay the sections out
differently, and the output must link to the running kernel's symbol, so
each such relocation is rewritten to the function or object it designates,
with the addend made relative to that symbol.
"""

from __future__ import annotations

from bisect import bisect_right

from kbuilder.arch.base import InstructionIndex
from kbuilder.compare.fastcmp import retarget_bundled
from kbuilder.correlate.names import is_mergeable_constant_section, is_string_section
from kbuilder.elf.constants import SHT, STT
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectView

# References into these stay section-relative: the special-section logic
# finds its groups by section offset (kpatch keeps the same list).
_KEEP_SECTION_RELATIVE = (".fixup", ".altinstr_replacement", ".altinstr_aux", ".text..refcount",
                          "__patchable_function_entries", ".toc")


def replace_section_symbols(view: ObjectView) -> None:
    obj, arch = view.obj, view.arch
    by_section: dict[Section, tuple[list[int], list[Symbol]]] = {}
    code_indexes: dict[Section, InstructionIndex] = {}
    for rsec in obj.sections:
        if rsec.type != SHT.RELA or rsec.name.startswith(".rela.debug"):
            continue
        base = rsec.info_section
        for i in retarget_bundled(rsec.relocs, view.bundled):
            reloc = rsec.relocs[i]
            target_sec = reloc.symbol.section
            if target_sec is None or target_sec.name.startswith(_KEEP_SECTION_RELATIVE):
                continue
            if is_string_section(target_sec) or is_mergeable_constant_section(target_sec):
                continue  # compared by content
            if base is not None and base.flags & 0x4 and reloc.type in arch.pc_relative:
                # Decoding the instruction is exact but costly: skip it when
                # every place the reference could designate (the field may be
                # followed by an immediate) lies in one symbol.
                low = reloc.addend + arch.pcrel_place_adjust(None, reloc.offset, reloc.type)
                found = _symbol_at(obj, by_section, target_sec, low)
                high = _symbol_at(obj, by_section, target_sec, low + 4)
                end = arch.fast_insn_end(base.data, reloc.offset) if found is not high else None
                if end is not None:
                    found = _symbol_at(obj, by_section, target_sec, reloc.addend + end - reloc.offset)
                elif found is not high:
                    index = code_indexes.get(base)
                    if index is None:
                        index = code_indexes[base] = InstructionIndex(arch, base.data)
                    place = reloc.addend + arch.pcrel_place_adjust(index, reloc.offset, reloc.type)
                    found = _symbol_at(obj, by_section, target_sec, place)
            else:
                found = _symbol_at(obj, by_section, target_sec, reloc.addend)
            if found is not None:
                reloc.symbol = found
                reloc.addend -= found.value


def _symbol_at(obj, by_section, sec: Section, place: int) -> Symbol | None:  # type: ignore[no-untyped-def]
    table = by_section.get(sec)
    if table is None:
        syms = sorted((s for s in obj.symbols_in(sec) if s.type in (STT.FUNC, STT.OBJECT)),
                      key=lambda s: s.value)
        table = by_section[sec] = ([s.value for s in syms], syms)
    starts, syms = table
    i = bisect_right(starts, place) - 1
    # Prefer the symbol that contains the place; a zero-sized symbol or one
    # that ends exactly there ("pointer to the end of an array") also counts.
    while i >= 0:
        sym = syms[i]
        if place < sym.value + max(sym.size, 1) or (place == sym.value + sym.size):
            return sym
        break
    return None
