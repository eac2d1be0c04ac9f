"""Check a finished patch module against its target before calling it done:
it is marked as a livepatch, its vermagic is the target's, and every symbol
it leaves undefined resolves (exported by vmlinux, or a livepatch symbol that
the target's symbol table holds at the stated position)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kbuilder.elf.constants import SHN, STT
from kbuilder.elf.model import ElfObject
from kbuilder.elf.symbols import SymbolEntry
from kbuilder.module.post_link import parse_klp_symbol


@dataclass(slots=True)
class ModuleCheck:
    modinfo: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    klp_symbols: int = 0


def read_modinfo(ko: ElfObject) -> dict[str, str]:
    sec = ko.find_section(".modinfo")
    info: dict[str, str] = {}
    if sec is not None:
        for item in sec.data.split(b"\0"):
            key, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep:
                info.setdefault(key, value)
    return info


def check_module(ko: ElfObject, *, release: str, exports: dict[str, str],
                 symbol_tables: dict[str, list[SymbolEntry]]) -> ModuleCheck:
    result = ModuleCheck(modinfo=read_modinfo(ko))
    info = result.modinfo
    if info.get("livepatch") != "Y":
        result.problems.append("modinfo has no 'livepatch: Y': the kernel would not treat it as a livepatch")
    vermagic = info.get("vermagic", "")
    if release and vermagic.split(" ")[0] != release:
        result.problems.append(f"vermagic '{vermagic}' does not match the target kernel release {release}")
    counts: dict[str, dict[str, int]] = {}
    for sym in ko.symbols[1:]:
        if sym.section is not None or not sym.name or sym.type == STT.FILE:
            continue
        if sym.shndx == SHN.LIVEPATCH:
            result.klp_symbols += 1
            parsed = parse_klp_symbol(sym.name)
            if parsed is None:
                result.problems.append(f"malformed livepatch symbol {sym.name}")
                continue
            table = symbol_tables.get(parsed.objname)
            if table is None:
                continue  # a module not built here: resolved when it loads
            per_name = counts.setdefault(parsed.objname, _name_counts(table))
            found = per_name.get(parsed.name, 0)
            if found == 0:
                result.problems.append(f"{sym.name}: {parsed.name} is not in {parsed.objname}'s symbol table")
            elif parsed.sympos == 0 and found > 1:
                result.problems.append(f"{sym.name}: {parsed.name} is ambiguous in {parsed.objname} ({found} symbols)")
            elif parsed.sympos > found:
                result.problems.append(f"{sym.name}: {parsed.objname} has only {found} symbols named {parsed.name}")
        elif sym.shndx == SHN.UNDEF:
            if sym.name.startswith(".klp.sym."):
                result.problems.append(f"{sym.name} was not converted to a livepatch symbol")
            elif sym.name not in exports:
                result.problems.append(f"undefined symbol {sym.name} is not exported by the target kernel")
    return result


def _name_counts(table: list[SymbolEntry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in table:
        if entry.shndx != SHN.UNDEF and entry.type in (STT.FUNC, STT.OBJECT, STT.NOTYPE):
            counts[entry.name] = counts.get(entry.name, 0) + 1
    return counts
