"""Summarise one object: functions (and whether ftrace can patch them), data
objects, special sections with entry counts, relocations. Backs `kbuild inspect`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from kbuilder.arch import get_arch
from kbuilder.elf.constants import SHT, STB
from kbuilder.elf.model import ElfObject

_BIND = {STB.LOCAL: "local", STB.GLOBAL: "global", STB.WEAK: "weak"}


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    name: str
    section: str
    size: int
    binding: str
    patchable: bool


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    section: str
    size: int
    binding: str


@dataclass(frozen=True, slots=True)
class SpecialInfo:
    name: str
    size: int
    entry_size: int | None
    entries: int | None
    relocations: int


@dataclass(frozen=True, slots=True)
class Summary:
    file: str
    arch: str
    sections: int
    symbols: int
    relocations: int
    functions: tuple[FunctionInfo, ...]
    objects: tuple[ObjectInfo, ...]
    special_sections: tuple[SpecialInfo, ...]
    relocations_by_type: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def summarize(obj: ElfObject) -> Summary:
    arch = get_arch(obj.machine)
    patchable = arch.patchable_functions(obj)
    functions = tuple(
        FunctionInfo(s.name, s.section_name, s.size, _BIND.get(s.bind, str(s.bind)),
                     s in patchable)
        for s in obj.symbols[1:] if s.is_func and s.section is not None)
    objects = tuple(
        ObjectInfo(s.name, s.section_name, s.size, _BIND.get(s.bind, str(s.bind)))
        for s in obj.symbols[1:] if s.is_object and s.section is not None)
    specials = []
    for sec in obj.sections:
        special = arch.special_section(sec.name)
        if special is None:
            continue
        entry = special.entry_size
        specials.append(SpecialInfo(sec.name, sec.size, entry, sec.size // entry if entry else None,
                                    len(sec.rela.relocs) if sec.rela is not None else 0))
    by_type: Counter[str] = Counter()
    total = 0
    for sec in obj.sections:
        if sec.type == SHT.RELA:
            total += len(sec.relocs)
            by_type.update(arch.reloc_name(r.type) for r in sec.relocs)
    return Summary(file=obj.path, arch=arch.name, sections=len(obj.sections) + 1,
                   symbols=len(obj.symbols), relocations=total, functions=functions, objects=objects,
                   special_sections=tuple(specials), relocations_by_type=dict(sorted(by_type.items())))
