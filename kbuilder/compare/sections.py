"""Compare correlated sections: headers, bytes and relocations.

Gives every patched section a status (SAME, CHANGED, NEW); a changed
relocation section makes its base section changed.
"""

from __future__ import annotations

from kbuilder.compare.lines import only_line_numbers_changed
from kbuilder.compare.relocs import relocs_equal
from kbuilder.elf.constants import SHF, SHT
from kbuilder.elf.model import Section
from kbuilder.pair import ObjectPair, Status

# Regenerated from the included functions, never compared.
_REGENERATED = frozenset({"__mcount_loc", "__patchable_function_entries", ".sframe"})

# A plain int: `flags & SHF.EXECINSTR` would run IntFlag.__rand__ per section.
_EXECINSTR = int(SHF.EXECINSTR)

_IGNORED_PREFIXES = (".discard", ".rela.discard", ".llvm_addrsig", ".llvm.", ".note.GNU-stack", ".comment",
                     ".rela.debug", ".debug", ".eh_frame", ".rela.eh_frame", ".note.gnu.property",
                     ".BTF", ".rela.BTF")


def mark_ignored_sections(pair: ObjectPair) -> None:
    for view in (pair.orig, pair.patched):
        for sec in view.obj.sections:
            name = sec.name
            base = sec.info_section if sec.type == SHT.RELA else sec
            if name.startswith(_IGNORED_PREFIXES) or (base is not None and base.name in _REGENERATED) \
                    or name == ".modinfo" or (base is not None and base.name.startswith(".discard")):
                pair.ignored.add(sec)


def compare_sections(pair: ObjectPair) -> None:
    for psec in pair.patched.obj.sections:
        if psec in pair.ignored or psec.type in (SHT.SYMTAB, SHT.STRTAB, SHT.SYMTAB_SHNDX):
            continue
        osec = pair.twin.get(psec)
        if not isinstance(osec, Section):
            pair.status[psec] = Status.NEW
            continue
        if psec.type == SHT.RELA:
            continue  # compared together with its base
        if psec.type == SHT.GROUP:
            if [m.name for m in osec.members] != [m.name for m in psec.members]:
                pair.status[psec] = Status.CHANGED
            continue
        if not _headers_match(osec, psec):
            pair.refuse("section-header", f"{psec.name} section header details differ "
                        f"(type, flags, entry size or alignment)")
            continue
        changed = _content_changed(pair, osec, psec)
        if changed:
            pair.status[psec] = Status.CHANGED
            if psec.rela is not None:
                pair.status[psec.rela] = Status.CHANGED


def _headers_match(osec: Section, psec: Section) -> bool:
    if osec.type != psec.type or osec.flags != psec.flags or osec.entsize != psec.entsize:
        return False
    # Code alignment may change with the function's shape.
    return bool(osec.flags & _EXECINSTR) or osec.addralign == psec.addralign


def _content_changed(pair: ObjectPair, osec: Section, psec: Section) -> bool:
    if osec.size != psec.size:
        return True
    if (osec.rela is None) != (psec.rela is None):
        return True
    if osec.rela is not None and psec.rela is not None:
        if not relocs_equal(pair.arch, osec.rela, psec.rela):
            return True
    if psec.type == SHT.NOBITS or osec.data == psec.data:
        return False
    if psec.flags & _EXECINSTR and only_line_numbers_changed(pair.arch, osec, psec):
        pair.notes[psec.name] = "only __LINE__ immediates changed"
        return False
    return True
