"""The in-memory model of an ELF64 relocatable object.

Graph nodes (`Section`, `Symbol`, `Reloc`) are mutable slots dataclasses with
identity semantics: links between them are object references, never indexes,
so sections and symbols can be added, dropped and reordered freely; indexes
are assigned only when the object is written (see `writer.py`).

Tables that the writer regenerates from the graph (`.symtab`, `.strtab`,
`.shstrtab`, `SHT_SYMTAB_SHNDX`, relocation and group contents) are still kept
as `Section` nodes so that their position in the file is preserved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from kbuilder.elf.constants import SHF, SHN, SHT, STB, STT


class ElfModelError(Exception):
    """An edit would leave the object inconsistent (e.g. a dangling reference)."""


# Plain ints: `flags & SHF.X` would run IntFlag.__rand__ (Python code) per test.
_EXECINSTR, _STRINGS = int(SHF.EXECINSTR), int(SHF.STRINGS)


@dataclass(slots=True, eq=False)
class Reloc:
    offset: int
    type: int
    symbol: Symbol
    addend: int

    def __repr__(self) -> str:
        return f"Reloc(0x{self.offset:x}, type={self.type}, {self.symbol.name or self.symbol.section_name}{self.addend:+d})"


@dataclass(slots=True, eq=False)
class Section:
    name: str
    type: int
    flags: int = 0
    data: bytes = b""
    # sh_size; equals len(data) except for SHT_NOBITS.
    size: int = 0
    addralign: int = 1
    entsize: int = 0
    addr: int = 0
    # sh_link / sh_info when they name another section (relocation base,
    # SHF_LINK_ORDER partner, the symbol table); raw values otherwise.
    link: Section | None = None
    info_section: Section | None = None
    link_raw: int = 0
    info_raw: int = 0
    # SHT_RELA: the relocations; base sections point back through `rela`.
    relocs: list[Reloc] = field(default_factory=list)
    rela: Section | None = None
    # SHT_GROUP: flag word, members and the signature symbol (sh_info).
    group_flags: int = 0
    members: list[Section] = field(default_factory=list)
    signature: Symbol | None = None
    # The STT_SECTION symbol of this section, if the object has one.
    symbol: Symbol | None = None
    # Position in the section header table: valid after reading or writing.
    index: int = 0

    @property
    def base(self) -> Section | None:
        """The section a relocation section applies to."""
        return self.info_section if self.type == SHT.RELA else None

    @property
    def is_rela(self) -> bool:
        return self.type == SHT.RELA

    @property
    def is_text(self) -> bool:
        return bool(self.flags & _EXECINSTR)

    @property
    def is_strings(self) -> bool:
        return bool(self.flags & _STRINGS)

    @property
    def is_nobits(self) -> bool:
        return self.type == SHT.NOBITS

    def __repr__(self) -> str:
        return f"Section({self.index}, {self.name!r})"


@dataclass(slots=True, eq=False)
class Symbol:
    name: str
    bind: int = STB.LOCAL
    type: int = STT.NOTYPE
    other: int = 0
    # Defining section, or None with `shndx` holding UNDEF/ABS/COMMON/LIVEPATCH.
    section: Section | None = None
    shndx: int = SHN.UNDEF
    value: int = 0
    size: int = 0
    index: int = 0

    @property
    def is_local(self) -> bool:
        return self.bind == STB.LOCAL

    @property
    def is_func(self) -> bool:
        return self.type == STT.FUNC

    @property
    def is_object(self) -> bool:
        return self.type == STT.OBJECT

    @property
    def is_section(self) -> bool:
        return self.type == STT.SECTION

    @property
    def is_undefined(self) -> bool:
        return self.section is None and self.shndx == SHN.UNDEF

    @property
    def visibility(self) -> int:
        return self.other & 0x3

    @property
    def section_name(self) -> str:
        return self.section.name if self.section is not None else ""

    @property
    def display_name(self) -> str:
        """Section symbols have no name of their own; show their section's."""
        if self.type == STT.SECTION and self.section is not None:
            return self.section.name
        return self.name

    def __repr__(self) -> str:
        return f"Symbol({self.index}, {self.display_name!r})"


@dataclass(slots=True, eq=False)
class ElfObject:
    """One relocatable object: header facts, sections and symbols.

    `symbols[0]` is always the null symbol. `sections` excludes the null
    section at index 0.
    """

    path: str
    machine: int
    flags: int = 0
    osabi: int = 0
    abiversion: int = 0
    sections: list[Section] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    _by_name: dict[str, Section] | None = field(default=None, repr=False)
    _syms_by_name: dict[str, list[Symbol]] | None = field(default=None, repr=False)
    _syms_by_sec: dict[int, list[Symbol]] | None = field(default=None, repr=False)

    # ---- indexes ------------------------------------------------------
    def invalidate(self) -> None:
        """Forget the lookup indexes after an edit."""
        self._by_name = self._syms_by_name = self._syms_by_sec = None

    def find_section(self, name: str) -> Section | None:
        if self._by_name is None:
            index: dict[str, Section] = {}
            for sec in self.sections:
                index.setdefault(sec.name, sec)
            self._by_name = index
        return self._by_name.get(name)

    def find_symbols(self, name: str) -> list[Symbol]:
        if self._syms_by_name is None:
            index: dict[str, list[Symbol]] = {}
            for sym in self.symbols[1:]:
                if sym.name:
                    index.setdefault(sym.name, []).append(sym)
            self._syms_by_name = index
        return self._syms_by_name.get(name, [])

    def find_symbol(self, name: str) -> Symbol | None:
        found = self.find_symbols(name)
        return found[0] if found else None

    def symbols_in(self, sec: Section) -> list[Symbol]:
        """Symbols defined in `sec` (section symbol included), in table order."""
        if self._syms_by_sec is None:
            index: dict[int, list[Symbol]] = {}
            for sym in self.symbols[1:]:
                if sym.section is not None:
                    index.setdefault(id(sym.section), []).append(sym)
            self._syms_by_sec = index
        return self._syms_by_sec.get(id(sec), [])

    def iter_relocs(self) -> Iterator[tuple[Section, Reloc]]:
        for sec in self.sections:
            if sec.type == SHT.RELA:
                for reloc in sec.relocs:
                    yield sec, reloc

    @property
    def symtab(self) -> Section | None:
        for sec in self.sections:
            if sec.type == SHT.SYMTAB:
                return sec
        return None

    # ---- edits --------------------------------------------------------
    def add_section(self, sec: Section, *, before: Section | None = None) -> Section:
        if before is None:
            # Keep the symbol and string tables last, as compilers do.
            tail = next((i for i, s in enumerate(self.sections)
                         if s.type in (SHT.SYMTAB, SHT.STRTAB, SHT.SYMTAB_SHNDX)), len(self.sections))
            self.sections.insert(tail, sec)
        else:
            self.sections.insert(self.sections.index(before), sec)
        self.invalidate()
        return sec

    def add_symbol(self, sym: Symbol) -> Symbol:
        self.symbols.append(sym)
        self.invalidate()
        return sym

    def references_to(self, targets: set[int]) -> list[tuple[Section, Reloc]]:
        """Relocations whose symbol is one of `targets` (a set of `id(sym)`)."""
        return [(rsec, r) for rsec, r in self.iter_relocs() if id(r.symbol) in targets]

    def remove_symbol(self, sym: Symbol) -> None:
        refs = self.references_to({id(sym)})
        if refs:
            raise ElfModelError(f"symbol {sym.display_name} is still referenced by {refs[0][0].name}")
        if any(g.signature is sym for g in self.sections if g.type == SHT.GROUP):
            raise ElfModelError(f"symbol {sym.display_name} is a section group signature")
        self.symbols.remove(sym)
        if sym.section is not None and sym.section.symbol is sym:
            sym.section.symbol = None
        self.invalidate()

    def remove_section(self, sec: Section) -> None:
        """Drop a section with its relocation section and the symbols it defines.

        Refuses when a remaining relocation still points at one of those
        symbols: silently dropping it would corrupt the referencing code.
        """
        doomed = {id(sec)}
        if sec.rela is not None:
            doomed.add(id(sec.rela))
        dead_syms = {id(s) for s in self.symbols if s.section is not None and id(s.section) in doomed}
        for rsec, reloc in self.iter_relocs():
            if id(rsec) not in doomed and id(reloc.symbol) in dead_syms:
                raise ElfModelError(
                    f"section {sec.name} is still referenced from {rsec.name} at 0x{reloc.offset:x}")
        for other in self.sections:
            if id(other) in doomed:
                continue
            if other.link is not None and id(other.link) in doomed:
                raise ElfModelError(f"section {sec.name} is linked from {other.name}")
            if other.type == SHT.GROUP and other.signature is not None and id(other.signature) in dead_syms:
                raise ElfModelError(f"section {sec.name} holds the signature of group {other.name}")
        # Every check passed: only now change anything.
        for other in self.sections:
            if other.type == SHT.GROUP:
                other.members = [m for m in other.members if id(m) not in doomed]
        if sec.type == SHT.RELA and sec.info_section is not None and sec.info_section.rela is sec:
            sec.info_section.rela = None
        self.sections = [s for s in self.sections if id(s) not in doomed]
        self.symbols = [s for s in self.symbols if id(s) not in dead_syms]
        self.invalidate()
