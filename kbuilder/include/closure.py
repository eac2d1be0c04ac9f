"""Decide what goes into the output: the changed and new functions and,
transitively, what their code references.

A referenced function or object that did not change is included only as a
symbol: it becomes an undefined reference, resolved against the running
kernel (by the module loader or through a livepatch relocation). Sections
are included whole; a section with a changed or new symbol, or referenced
through its section symbol, brings its relocations and their targets.
"""

from __future__ import annotations

from kbuilder.correlate.names import is_string_section
from kbuilder.elf.constants import SHT, STB, STT
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectPair, Status

CALLBACK_SECTION_PREFIXES = (".kpatch.callbacks.", ".klp.callbacks.")


def include_standard_elements(pair: ObjectPair) -> None:
    obj = pair.patched.obj
    pair.included.add(obj.symbols[0])
    for sec in obj.sections:
        if sec.type in (SHT.SYMTAB, SHT.STRTAB, SHT.SYMTAB_SHNDX):
            pair.included.add(sec)
        elif is_string_section(sec) and sec not in pair.ignored:
            include_section(pair, sec)
    for sym in obj.symbols:
        if sym.type == STT.FILE:
            pair.included.add(sym)


def include_changed_functions(pair: ObjectPair) -> None:
    for sym, status in list(pair.status.items()):
        if isinstance(sym, Symbol) and sym.type == STT.FUNC and status is Status.CHANGED:
            include_symbol(pair, sym)


def include_new_globals(pair: ObjectPair) -> None:
    """New global functions and data are part of the patch even when no
    changed code references them (another patched object may)."""
    for sym in pair.patched.obj.symbols[1:]:
        if (sym.bind != STB.LOCAL and sym.section is not None and pair.status_of(sym) is Status.NEW
                and sym.section not in pair.ignored):
            include_symbol(pair, sym)


def include_callbacks(pair: ObjectPair) -> list[Symbol]:
    found = []
    for sec in pair.patched.obj.sections:
        if sec.name.startswith(CALLBACK_SECTION_PREFIXES) and sec.type != SHT.RELA:
            include_section(pair, sec)
            if sec.rela is not None:
                found.extend(r.symbol for r in sec.rela.relocs if r.symbol.type == STT.FUNC)
    return found


def include_symbol(pair: ObjectPair, sym: Symbol) -> None:
    stack = [sym]
    included = pair.included
    while stack:
        sym = stack.pop()
        if sym in included:
            continue
        included.add(sym)
        sec = sym.section
        if sec is None or sec in included or sec in pair.ignored:
            continue
        if sym.type == STT.SECTION or pair.status_of(sym) is not Status.SAME:
            stack.extend(_include_section_only(pair, sec))


def include_section(pair: ObjectPair, sec: Section) -> None:
    for sym in _include_section_only(pair, sec):
        include_symbol(pair, sym)


def _include_section_only(pair: ObjectPair, sec: Section) -> list[Symbol]:
    """Mark `sec` (and its relocations) included; return the symbols that
    must follow: its own symbols and every relocation target."""
    if sec in pair.included:
        return []
    pair.included.add(sec)
    follow: list[Symbol] = []
    if sec.symbol is not None:
        follow.append(sec.symbol)
    owner = pair.patched.bundled.get(sec)
    if owner is not None:
        follow.append(owner)
    if sec.rela is not None and sec.rela not in pair.ignored:
        pair.included.add(sec.rela)
        follow.extend(r.symbol for r in sec.rela.relocs)
    return follow
