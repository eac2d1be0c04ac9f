"""Patch author annotations carried in the patched object.

`KPATCH_IGNORE_FUNCTION(fn)` (section `.kpatch.ignore.functions`, pointers
to functions) and `KPATCH_IGNORE_SECTION("name")` (`.kpatch.ignore.sections`,
pointers to name strings) declare changes the author knows are harmless,
e.g. a function without an ftrace entry that a patched caller no longer uses.
kbuilder honours the kpatch macros so existing patches keep working.
"""

from __future__ import annotations

from kbuilder.compare.relocs import string_at
from kbuilder.elf.constants import STT
from kbuilder.pair import ObjectPair, Status

IGNORE_FUNCTIONS = ".kpatch.ignore.functions"
IGNORE_SECTIONS = ".kpatch.ignore.sections"


def apply_ignore_annotations(pair: ObjectPair) -> list[str]:
    """Mark annotated functions and sections unchanged; return what was ignored."""
    obj = pair.patched.obj
    ignored: list[str] = []
    funcs = obj.find_section(IGNORE_FUNCTIONS)
    if funcs is not None:
        pair.ignored.add(funcs)
        if funcs.rela is not None:
            pair.ignored.add(funcs.rela)
            for reloc in funcs.rela.relocs:
                sym = reloc.symbol
                if sym.type != STT.FUNC or sym.section is None:
                    continue
                if pair.status_of(sym) is Status.SAME:
                    pair.warnings.append(f"no change detected in function {sym.name}, "
                                         "unnecessary KPATCH_IGNORE_FUNCTION()?")
                for node in (sym, sym.section, sym.section.rela, *pair.patched.children.get(sym, ())):
                    if node is not None:
                        pair.status.pop(node, None)
                ignored.append(sym.name)
    names = obj.find_section(IGNORE_SECTIONS)
    if names is not None:
        pair.ignored.add(names)
        if names.rela is not None:
            pair.ignored.add(names.rela)
            for reloc in names.rela.relocs:
                sec = reloc.symbol.section
                text = string_at(sec, reloc.symbol.value + reloc.addend) if sec is not None else None
                if text is None:
                    continue
                target = obj.find_section(text.decode("utf-8", "replace"))
                if target is not None:
                    pair.ignored.add(target)
                    pair.status.pop(target, None)
                    if target.rela is not None:
                        pair.ignored.add(target.rela)
                        pair.status.pop(target.rela, None)
                    ignored.append(target.name)
    return ignored
