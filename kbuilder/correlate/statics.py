"""Correlate function-scope static variables by how they are referenced.

GCC names `static int counter` inside a function `counter.N`, with N
renumbered by unrelated edits (and two functions may each have a
`counter`). Names cannot pair them; references can: the static used at a
given place of function `f` in the original is the one used at the same
kind of place in the patched `f`. Assumes same-named statics of one
function are referenced in the same order, as kpatch does.
"""

from __future__ import annotations

from kbuilder.correlate.names import correlation_key, is_normal_static_local
from kbuilder.elf.constants import SHT
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectPair


def correlate_static_locals(pair: ObjectPair) -> None:
    unmatched: dict[Symbol, str] = {}
    for orsec in pair.orig.obj.sections:
        if orsec.type != SHT.RELA or orsec.name.startswith(".rela.debug"):
            continue
        prsec = _twin_relocations(pair, orsec)
        for reloc in orsec.relocs:
            osym = reloc.symbol
            if not is_normal_static_local(osym) or osym in pair.twin:
                continue
            if prsec is None:
                continue  # the referencing function is gone: nothing to keep consistent
            psym = _find_static_twin(pair, prsec, osym)
            if psym is None:
                unmatched.setdefault(osym, _describe(orsec))
                continue
            unmatched.pop(osym, None)
            pair.correlate(osym, psym)
            osec, psec = osym.section, psym.section
            if (osec is not None and psec is not None and pair.orig.bundled.get(osec) is osym
                    and pair.patched.bundled.get(psec) is psym):
                from kbuilder.correlate.match import correlate_section_pair

                correlate_section_pair(pair, osec, psec)
    for osym, where in unmatched.items():
        if osym not in pair.twin:
            pair.refuse("static-local-removed",
                        f"reference to static local variable {osym.name} in {where} was removed "
                        "(keep a reference to it: removing one is not supported)")
    _warn_new_statics(pair)


def _twin_relocations(pair: ObjectPair, orsec: Section) -> Section | None:
    prsec = pair.twin.get(orsec)
    if isinstance(prsec, Section):
        return prsec
    # A `.part`/`.cold` piece that vanished: its parent now holds the references.
    base = orsec.info_section
    owner = pair.orig.bundled.get(base) if base is not None else None
    parent = pair.orig.parent.get(owner) if owner is not None else None
    if parent is not None and parent.section is not None and parent.section.rela is not None:
        twin = pair.twin.get(parent.section.rela)
        if isinstance(twin, Section):
            return twin
    return None


def _find_static_twin(pair: ObjectPair, prsec: Section, osym: Symbol) -> Symbol | None:
    key = correlation_key(osym.name)
    for reloc in prsec.relocs:
        psym = reloc.symbol
        if (psym not in pair.twin and is_normal_static_local(psym) and psym.type == osym.type
                and psym.size == osym.size and correlation_key(psym.name) == key):
            return psym
    return None


def _warn_new_statics(pair: ObjectPair) -> None:
    for prsec in pair.patched.obj.sections:
        if prsec.type != SHT.RELA or prsec.name.startswith(".rela.debug"):
            continue
        for reloc in prsec.relocs:
            psym = reloc.symbol
            if is_normal_static_local(psym) and psym not in pair.twin:
                message = (f"unable to correlate static local variable {psym.name} used by "
                           f"{_describe(prsec)}, assuming variable is new")
                if message not in pair.warnings:
                    pair.warnings.append(message)


def _describe(rsec: Section) -> str:
    base = rsec.info_section
    return base.name if base is not None else rsec.name
