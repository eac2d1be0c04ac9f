"""Refuse what cannot be live-patched, with the reason a patch author needs."""

from __future__ import annotations

from kbuilder.elf.constants import SHF, SHT
from kbuilder.compare.relocs import reloc_key
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectPair, Status

# Existing data that may be included: only WARN_ONCE-style flags live there.
_DATA_OK = (".data.unlikely", ".data..unlikely", ".data.once", ".data..once")
# Plain ints: `flags & SHF.X` would go through IntFlag.__rand__, Python code
# run for every section.
_GROUP, _EXECINSTR, _STRINGS, _ALLOC = int(SHF.GROUP), int(SHF.EXECINSTR), int(SHF.STRINGS), int(SHF.ALLOC)
_INIT_PREFIXES = (".init.", ".exit.", ".ref.", ".meminit.", ".devinit.", ".cpuinit.")


def verify_patchability(pair: ObjectPair) -> None:
    arch = pair.arch
    for sec in pair.patched.obj.sections:
        if sec in pair.ignored or sec.type in (SHT.SYMTAB, SHT.STRTAB, SHT.SYMTAB_SHNDX):
            continue
        status = pair.status_of(sec)
        base = sec.info_section if sec.type == SHT.RELA else sec
        if base is None:
            continue
        if sec.type == SHT.RELA and (base in pair.ignored or arch.special_section(base.name) is not None):
            continue
        if sec.type == SHT.RELA and pair.status_of(base) is not Status.SAME:
            continue  # reported with its base
        special = arch.special_section(base.name) is not None
        if status is Status.CHANGED and sec not in pair.included and not special and base not in pair.refused:
            _refuse_unselected(pair, base)
        elif sec.flags & _GROUP and status is not Status.SAME and sec in pair.included:
            pair.refuse("section-group", f"changed section {sec.name} is part of a section group (COMDAT)")
        if sec in pair.included and status is not Status.NEW and sec.type != SHT.RELA and _is_data(sec):
            if not sec.name.startswith(_DATA_OK) and not special and sec not in pair.refused:
                pair.refuse("data-changed", f"data section {sec.name} selected for inclusion: the patch "
                            "changes existing data, which cannot be live-patched (use a shadow variable or callback)")


def _is_data(sec: Section) -> bool:
    """Writable data the running kernel already uses. Read-only data may be
    copied: the new code reads its copy, the old code the original."""
    flags = sec.flags
    if flags & _EXECINSTR or flags & _STRINGS or not flags & _ALLOC:
        return False
    return sec.name.startswith((".data", ".bss"))


def _refuse_unselected(pair: ObjectPair, sec: Section) -> None:
    name = sec.name
    funcs = _changed_functions_in(pair, sec)
    where = f" (in {', '.join(funcs)})" if funcs else ""
    if name.startswith(_INIT_PREFIXES):
        pair.refuse("init-code", f"changed section {name} not selected for inclusion{where}: __init code has "
                    "already run and cannot be patched (use a pre-patch callback to redo its effect)")
    elif _is_data(sec) or name.startswith((".data", ".bss", ".rodata")):
        pair.refuse("data-changed", f"changed section {name} not selected for inclusion: existing data "
                    "was changed (initialiser or contents); use a shadow variable or a callback")
    else:
        pair.refuse("unsupported-section", f"changed section {name} not selected for inclusion{where}")


def _changed_functions_in(pair: ObjectPair, sec: Section) -> list[str]:
    """Functions of a shared section whose bytes or relocations differ."""
    osec = pair.twin.get(sec)
    if not isinstance(osec, Section):
        return []
    found = []
    orig_funcs = {s.name: s for s in pair.orig.obj.symbols_in(osec) if s.type == 2}
    for psym in pair.patched.obj.symbols_in(sec):
        osym = orig_funcs.get(psym.name)
        if psym.type != 2:
            continue
        if osym is None or osym.size != psym.size or \
                osec.data[osym.value:osym.value + osym.size] != sec.data[psym.value:psym.value + psym.size] or \
                _reloc_keys_in(pair, osec, osym) != _reloc_keys_in(pair, sec, psym):
            found.append(psym.name)
    return found


def _reloc_keys_in(pair: ObjectPair, sec: Section, func: Symbol) -> list[tuple[object, ...]]:
    if sec.rela is None:
        return []
    return [(r.offset - func.value,) + reloc_key(pair.arch, sec, r)[1:] for r in sec.rela.relocs
            if func.value <= r.offset < func.value + func.size]
