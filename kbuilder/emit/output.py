"""Build the output object from what inclusion selected.

Sections and symbols are taken from the patched object (which the earlier
stages already renamed to the original's names); what was referenced but not
included becomes an undefined symbol, named for livepatch where needed
(klp.py). Changed functions become local, as the running kernel's callers
must not bind to them through the module. The ftrace call-site table is
rebuilt for the included functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kbuilder.elf.constants import SHF, SHN, SHT, STB, STT
from kbuilder.elf.model import ElfObject, Reloc, Section, Symbol
from kbuilder.emit.klp import KlpResolver, klp_symbol_name
from kbuilder.pair import ObjectPair, Status


@dataclass(slots=True)
class KlpSymbol:
    symbol: str
    name: str
    objname: str
    sympos: int
    bind: str
    type: str


@dataclass(slots=True)
class OutputFacts:
    klp_symbols: list[KlpSymbol] = field(default_factory=list)
    klp_relocations: list[dict[str, object]] = field(default_factory=list)
    ftrace_sites: int = 0


_TYPE = {STT.FUNC: "func", STT.OBJECT: "object", STT.NOTYPE: "notype"}


def build_output(pair: ObjectPair, resolver: KlpResolver) -> tuple[ElfObject, OutputFacts]:
    src = pair.patched.obj
    facts = OutputFacts()
    kept_sections = [s for s in src.sections if s in pair.included]
    kept = set(kept_sections)
    kept_sections = [s for s in kept_sections if not (s.flags & SHF.LINK_ORDER and s.link not in kept)]
    for sec in kept_sections:
        if sec.flags & SHF.GROUP:
            sec.flags &= ~SHF.GROUP  # its group is not carried over
    symbols = [src.symbols[0]]
    klp_by_name: dict[str, Symbol] = {}
    aliases: dict[Symbol, Symbol] = {}
    for sym in src.symbols[1:]:
        if sym not in pair.included:
            continue
        if sym.type == STT.SECTION:
            if sym.section in kept:
                symbols.append(sym)
            continue
        if sym.section is not None and sym.section not in kept:
            _make_undefined(sym)
        if sym.section is None and sym.shndx == SHN.UNDEF and sym.name:
            sym = _name_for_livepatch(sym, resolver, facts, klp_by_name, aliases)
            if sym in symbols:
                continue
        elif sym.section is not None and sym.type == STT.FUNC and pair.status_of(sym) is Status.CHANGED:
            sym.bind = STB.LOCAL
        symbols.append(sym)
    _retarget_to_merged(kept_sections, aliases)
    _retarget_function_pointers(pair, kept_sections, resolver, facts, symbols, klp_by_name)
    out = ElfObject(path="", machine=src.machine, flags=src.flags, osabi=src.osabi, abiversion=src.abiversion,
                    sections=kept_sections, symbols=symbols)
    facts.ftrace_sites = _rebuild_ftrace_table(pair, out)
    _carry_import_namespaces(src, out)
    _record_klp_relocations(out, facts)
    return out, facts


def _make_undefined(sym: Symbol) -> None:
    sym.section = None
    sym.shndx = SHN.UNDEF
    sym.value = 0
    sym.size = 0
    sym.other = 0


def _name_for_livepatch(sym: Symbol, resolver: KlpResolver, facts: OutputFacts,
                        klp_by_name: dict[str, Symbol], aliases: dict[Symbol, Symbol]) -> Symbol:
    orig_bind = sym.bind
    target = resolver.decide(sym.name, orig_bind)
    sym.bind = STB.GLOBAL  # an undefined symbol cannot be local
    if target is None:
        return sym
    name = klp_symbol_name(target.objname, target.name, target.sympos)
    existing = klp_by_name.get(name)
    if existing is not None:
        # Two local symbols of the object named alike would be one kernel symbol.
        aliases[sym] = existing
        return existing
    facts.klp_symbols.append(KlpSymbol(name, target.name, target.objname, target.sympos,
                                       "local" if orig_bind == STB.LOCAL else "global",
                                       _TYPE.get(sym.type, str(sym.type))))
    sym.name = name
    klp_by_name[name] = sym
    return sym


def _retarget_to_merged(sections: list[Section], aliases: dict[Symbol, Symbol]) -> None:
    if not aliases:
        return
    for sec in sections:
        if sec.type == SHT.RELA:
            for reloc in sec.relocs:
                merged = aliases.get(reloc.symbol)
                if merged is not None:
                    reloc.symbol = merged


def _retarget_function_pointers(pair: ObjectPair, sections: list[Section], resolver: KlpResolver,
                                facts: OutputFacts, symbols: list[Symbol], klp_by_name: dict[str, Symbol]) -> None:
    """A pointer taken to an existing function must keep pointing at the
    running kernel's copy (ftrace redirects it while the patch is on, and
    it stays valid after the module is gone), not at the module's."""
    arch = pair.arch
    absolute = {arch.abs64_reloc, *arch.extra_absolute_relocs}
    for rsec in sections:
        if rsec.type != SHT.RELA or rsec.info_section is None or rsec.info_section.name in ("__mcount_loc",):
            continue
        if arch.special_section(rsec.info_section.name) is not None:
            continue
        for reloc in rsec.relocs:
            target = reloc.symbol
            # Only a pointer to the function itself: references into its body
            # (the jump tables of a switch) belong to the new copy.
            if (reloc.type in absolute and target.type == STT.FUNC and target.section is not None
                    and reloc.addend == 0 and pair.status_of(target) is Status.CHANGED and "." not in target.name):
                orig = pair.twin.get(target)
                bind = orig.bind if isinstance(orig, Symbol) else target.bind
                decided = resolver.decide(target.name, bind) or None
                sympos = decided.sympos if decided is not None else 0
                name = klp_symbol_name(resolver.objname, target.name, sympos)
                pointer = klp_by_name.get(name)
                if pointer is None:
                    pointer = Symbol(name, STB.GLOBAL, STT.FUNC)
                    klp_by_name[name] = pointer
                    symbols.append(pointer)
                    facts.klp_symbols.append(KlpSymbol(name, target.name, resolver.objname, sympos,
                                                       "local" if bind == STB.LOCAL else "global", "func"))
                reloc.addend += target.value
                reloc.symbol = pointer


def _rebuild_ftrace_table(pair: ObjectPair, out: ElfObject) -> int:
    """One call-site entry per included function ftrace can patch: the
    kernel's ftrace init turns each into a NOP until a patch enables it."""
    arch = pair.arch
    view = pair.patched
    sites = arch.ftrace_sites(view.obj)
    entries: list[Reloc] = []
    for sym in out.symbols:
        if sym.type != STT.FUNC or sym.section is None or sym not in view.patchable:
            continue
        if pair.status_of(sym) is Status.SAME:
            continue
        lo, hi = arch.ftrace_window
        offsets = [o for o in sites.get(sym.section, ()) if sym.value + lo <= o < sym.value + max(hi, 1)]
        if not offsets:
            continue
        site = arch.ftrace_call_site(sym.section, offsets[0])
        entries.append(Reloc(len(entries) * 8, arch.abs64_reloc, sym, site - sym.value))
    for sec in [s for s in out.sections if s.name == arch.ftrace_section or
                (s.type == SHT.RELA and s.info_section is not None and s.info_section.name == arch.ftrace_section)]:
        out.sections.remove(sec)
    if not entries:
        return 0
    table = Section(arch.ftrace_section, SHT.PROGBITS, SHF.ALLOC | (SHF.WRITE if arch.ftrace_section_writable else 0),
                    b"\0" * (8 * len(entries)), 8 * len(entries), 8)
    rela = Section(".rela" + arch.ftrace_section, SHT.RELA, SHF.INFO_LINK, b"", 0, 8, 24)
    rela.link = out.symtab
    rela.info_section = table
    rela.relocs = entries
    table.rela = rela
    out.add_section(table)
    out.add_section(rela)
    return len(entries)


def _carry_import_namespaces(src: ElfObject, out: ElfObject) -> None:
    """The patched code may use namespaced exports: keep the object's
    `import_ns=` tags so the patch module imports the same namespaces."""
    modinfo = src.find_section(".modinfo")
    if modinfo is None:
        return
    # Built-in objects prefix their tags with the module name (`proc.import_ns=`).
    tags = [t for t in modinfo.data.split(b"\0") if t.split(b".", 1)[-1].startswith(b"import_ns=")
            or t.startswith(b"import_ns=")]
    if tags:
        blob = b"\0".join(tags) + b"\0"
        out.add_section(Section(".modinfo", SHT.PROGBITS, SHF.ALLOC, blob, len(blob), 1))


def _record_klp_relocations(out: ElfObject, facts: OutputFacts) -> None:
    names = {k.symbol for k in facts.klp_symbols}
    for rsec in out.sections:
        if rsec.type != SHT.RELA or rsec.info_section is None:
            continue
        for reloc in rsec.relocs:
            if reloc.symbol.name in names:
                facts.klp_relocations.append({
                    "section": rsec.info_section.name, "offset": reloc.offset, "type": reloc.type,
                    "symbol": reloc.symbol.name, "addend": reloc.addend})
