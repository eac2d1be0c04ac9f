"""Turn a linked patch module into a livepatch module.

The linker cannot produce livepatch relocations (a second relocation section
per target section, symbols in SHN_LIVEPATCH), so the diff outputs name the
symbols livepatch must resolve `.klp.sym.<obj>.<name>,<sympos>`; here, after
kbuild linked the module, those symbols are marked SHN_LIVEPATCH and every
relocation against them moves to `.klp.rela.<obj>.<section>`
(SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH), as
Documentation/livepatch/module-elf-format.rst specifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbuilder.elf.constants import SHF, SHN, SHT
from kbuilder.elf.model import ElfObject, Reloc, Section
from kbuilder.emit.klp import KLP_RELA_PREFIX, KLP_SYM_PREFIX


@dataclass(frozen=True, slots=True)
class KlpSymbolName:
    objname: str
    name: str
    sympos: int


def parse_klp_symbol(name: str) -> KlpSymbolName | None:
    if not name.startswith(KLP_SYM_PREFIX):
        return None
    rest = name[len(KLP_SYM_PREFIX):]
    objname, _, tail = rest.partition(".")
    symbol, _, pos = tail.rpartition(",")
    if not objname or not symbol or not pos.isdigit():
        return None
    return KlpSymbolName(objname, symbol, int(pos))


def convert_to_livepatch(ko: ElfObject) -> int:
    """Rewrite `ko` in place; return the number of livepatch relocations."""
    klp_objname = {}
    for sym in ko.symbols[1:]:
        parsed = parse_klp_symbol(sym.name)
        if parsed is not None and sym.section is None:
            sym.shndx = SHN.LIVEPATCH
            klp_objname[sym] = parsed.objname
    if not klp_objname:
        return 0
    symtab = ko.symtab
    moved = 0
    new_sections: dict[tuple[str, Section], Section] = {}
    for rsec in list(ko.sections):
        if rsec.type != SHT.RELA or rsec.info_section is None or rsec.flags & SHF.RELA_LIVEPATCH:
            continue
        keep: list[Reloc] = []
        for reloc in rsec.relocs:
            objname = klp_objname.get(reloc.symbol)
            if objname is None:
                keep.append(reloc)
                continue
            base = rsec.info_section
            klp = new_sections.get((objname, base))
            if klp is None:
                klp = Section(f"{KLP_RELA_PREFIX}{objname}.{base.name.lstrip('.')}", SHT.RELA,
                              SHF.ALLOC | SHF.INFO_LINK | SHF.RELA_LIVEPATCH, b"", 0, 8, 24)
                klp.link = symtab
                klp.info_section = base
                new_sections[(objname, base)] = klp
                ko.add_section(klp, before=symtab)
            klp.relocs.append(reloc)
            moved += 1
        rsec.relocs = keep
    for rsec in [s for s in ko.sections if s.type == SHT.RELA and not s.relocs and not s.flags & SHF.RELA_LIVEPATCH]:
        ko.sections.remove(rsec)
        if rsec.info_section is not None and rsec.info_section.rela is rsec:
            rsec.info_section.rela = None
    ko.invalidate()
    return moved
