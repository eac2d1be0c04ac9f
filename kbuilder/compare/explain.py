"""Say why a section counts as changed: the first differing instruction
(both sides disassembled), a relocation whose target changed, or a changed
string. Backs `kbuild diff --explain`."""

from __future__ import annotations

from kbuilder.arch import Arch
from kbuilder.compare.relocs import reloc_key
from kbuilder.elf.model import Reloc, Section


def explain_change(arch: Arch, osec: Section | None, psec: Section) -> list[str]:
    if osec is None:
        return [f"{psec.name}: new section"]
    lines = []
    if osec.size != psec.size:
        lines.append(f"{psec.name}: size {osec.size} -> {psec.size} bytes")
    reloc_line = _first_reloc_difference(arch, osec, psec)
    if reloc_line:
        lines.append(reloc_line)
    if psec.flags & 0x4:
        code_line = _first_instruction_difference(arch, osec, psec)
        if code_line:
            lines.append(code_line)
    elif osec.data != psec.data and not psec.is_nobits:
        at = next((i for i, (a, b) in enumerate(zip(osec.data, psec.data)) if a != b),
                  min(len(osec.data), len(psec.data)))
        lines.append(f"{psec.name}+0x{at:x}: data differs")
    return lines or [f"{psec.name}: changed"]


def _describe(arch: Arch, base: Section, reloc: Reloc) -> str:
    key = reloc_key(arch, base, reloc)
    if key[2] == "str":
        return f"string {key[3]!r}"
    if key[2] == "const":
        return f"constant {bytes(key[3]).hex()}"  # type: ignore[arg-type]
    return f"{reloc.symbol.display_name}{reloc.addend:+d} ({arch.reloc_name(reloc.type)})"


def _first_reloc_difference(arch: Arch, osec: Section, psec: Section) -> str | None:
    orelocs = osec.rela.relocs if osec.rela is not None else []
    prelocs = psec.rela.relocs if psec.rela is not None else []
    for a, b in zip(orelocs, prelocs):
        if reloc_key(arch, osec, a) != reloc_key(arch, psec, b):
            if a.offset != b.offset:
                return (f"{psec.name}: relocations moved: +0x{a.offset:x} {_describe(arch, osec, a)} -> "
                        f"+0x{b.offset:x} {_describe(arch, psec, b)}")
            return f"{psec.name}+0x{b.offset:x}: reference {_describe(arch, osec, a)} -> {_describe(arch, psec, b)}"
    if len(orelocs) != len(prelocs):
        return f"{psec.name}: {len(orelocs)} -> {len(prelocs)} relocations"
    return None


def _first_instruction_difference(arch: Arch, osec: Section, psec: Section) -> str | None:
    md = arch.disassembler
    old = list(md.disasm_lite(osec.data, 0))
    new = list(md.disasm_lite(psec.data, 0))
    for a, b in zip(old, new):
        if a[1:] != b[1:] or osec.data[a[0]:a[0] + a[1]] != psec.data[b[0]:b[0] + b[1]] or a[0] != b[0]:
            return (f"{psec.name}+0x{b[0]:x}: first differing instruction: "
                    f"`{a[2]} {a[3]}`  ->  `{b[2]} {b[3]}`")
    if len(old) != len(new):
        return f"{psec.name}: {len(old)} -> {len(new)} instructions"
    return None
