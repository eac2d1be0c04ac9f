"""Correlate sections and symbols of the two objects by name.

One hash index of the patched object per kind, keyed by the correlation key
(clone digits dropped): linear time, where kpatch compares every pair.
Among equal keys the first unpaired candidate in table order wins, which is
kpatch's rule too.
"""

from __future__ import annotations

from kbuilder.correlate.names import (
    correlation_key, is_arm_mapping_symbol, is_local_label, is_normal_static_local, is_special_static,
    is_ubsan_section,
)
from kbuilder.elf.constants import SHT
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectPair, ObjectView


def _skip_section(view: ObjectView, sec: Section) -> bool:
    if sec.type in (SHT.RELA, SHT.GROUP):
        return True
    if is_ubsan_section(sec.name) or sec.name.startswith((".data..L__unnamed_", ".data.__unnamed_")):
        return True
    owner = view.bundled.get(sec)
    if owner is not None and (is_special_static(owner) or is_normal_static_local(owner)):
        return True  # correlated by reference (statics.py) or never
    return sec.symbol is not None and is_special_static(sec.symbol)


def correlate_sections(pair: ObjectPair) -> None:
    index: dict[str, list[Section]] = {}
    for sec in pair.patched.obj.sections:
        if not _skip_section(pair.patched, sec):
            index.setdefault(correlation_key(sec.name), []).append(sec)
    for osec in pair.orig.obj.sections:
        if _skip_section(pair.orig, osec):
            continue
        for psec in index.get(correlation_key(osec.name), ()):
            if psec not in pair.twin and psec.type == osec.type:
                correlate_section_pair(pair, osec, psec)
                break
    _correlate_groups(pair)


def correlate_section_pair(pair: ObjectPair, osec: Section, psec: Section) -> None:
    pair.correlate(osec, psec)
    if osec.rela is not None and psec.rela is not None:
        pair.correlate(osec.rela, psec.rela)
    if osec.symbol is not None and psec.symbol is not None:
        pair.twin[osec.symbol] = psec.symbol
        pair.twin[psec.symbol] = osec.symbol


def _correlate_groups(pair: ObjectPair) -> None:
    """COMDAT groups are all named `.group`: pair them by signature."""
    groups: dict[str, list[Section]] = {}
    for sec in pair.patched.obj.sections:
        if sec.type == SHT.GROUP and sec.signature is not None:
            groups.setdefault(correlation_key(sec.signature.name), []).append(sec)
    for osec in pair.orig.obj.sections:
        if osec.type != SHT.GROUP or osec.signature is None:
            continue
        for psec in groups.get(correlation_key(osec.signature.name), ()):
            if psec not in pair.twin:
                pair.correlate(osec, psec)
                break


def _skip_symbol(sym: Symbol) -> bool:
    if sym.type == 3 or not sym.name:  # STT_SECTION: paired with their sections
        return True
    return (is_local_label(sym) or is_arm_mapping_symbol(sym) or is_special_static(sym)
            or is_normal_static_local(sym))


def correlate_symbols(pair: ObjectPair) -> None:
    index: dict[tuple[str, int], list[Symbol]] = {}
    for sym in pair.patched.obj.symbols[1:]:
        if not _skip_symbol(sym):
            index.setdefault((correlation_key(sym.name), sym.type), []).append(sym)
    for osym in pair.orig.obj.symbols[1:]:
        if _skip_symbol(osym):
            continue
        for psym in index.get((correlation_key(osym.name), osym.type), ()):
            if psym in pair.twin:
                continue
            # Members of section groups pair only when their groups did.
            if (osym.section is not None and psym.section is not None
                    and osym.section.flags & 0x200 and pair.twin.get(osym.section) is not psym.section):
                continue
            pair.correlate(osym, psym)
            break
