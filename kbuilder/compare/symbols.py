"""Symbol status and the checks that refuse a change outright.

A bundled function or object takes its section's status; sub-functions
carry their change to the parent; then correlated symbols must agree in
kind, binding, size (for data) and home section.
"""

from __future__ import annotations

from kbuilder.elf.constants import STT
from kbuilder.elf.model import Section, Symbol
from kbuilder.pair import ObjectPair, Status

_TEXT_SUBSECTIONS = (".text.unlikely.", ".text.hot.", ".text.")


def mark_symbol_status(pair: ObjectPair) -> None:
    for psym in pair.patched.obj.symbols[1:]:
        if psym.type == STT.SECTION or psym.section is None:
            continue
        if psym not in pair.twin:
            pair.status[psym] = Status.NEW
            continue
        sec = psym.section
        if pair.patched.bundled.get(sec) is psym:
            status = pair.status_of(sec)
            if status is not Status.SAME:
                pair.status[psym] = status if status is Status.CHANGED else Status.CHANGED
    _propagate_to_parents(pair)


def _propagate_to_parents(pair: ObjectPair) -> None:
    """A changed `.cold` piece has no ftrace entry of its own: replacing it
    means replacing the function it belongs to."""
    view = pair.patched
    changed = True
    while changed:
        changed = False
        for child, parent in view.parent.items():
            if (pair.status_of(child) is not Status.SAME and pair.status_of(parent) is Status.SAME
                    and child not in view.patchable):
                pair.status[parent] = Status.CHANGED
                changed = True


def check_correlated_symbols(pair: ObjectPair) -> None:
    for osym in pair.orig.obj.symbols[1:]:
        psym = pair.twin.get(osym)
        if not isinstance(psym, Symbol) or osym.type == STT.SECTION:
            continue
        if osym.type != psym.type or osym.bind != psym.bind:
            pair.refuse("symbol-info", f"symbol info mismatch: {osym.name} "
                        f"(binding or type changed, e.g. static <-> global)")
            continue
        if (osym.section is None) != (psym.section is None):
            if osym.type in (STT.FUNC, STT.OBJECT):
                pair.refuse("symbol-info", f"symbol info mismatch: {osym.name} (defined <-> undefined)")
            continue
        if osym.section is None or psym.section is None:
            continue
        if pair.twin.get(osym.section) is not psym.section and osym.section not in pair.ignored:
            if _moved_between_text_subsections(osym.section, psym.section):
                pair.status[psym] = Status.CHANGED
            else:
                pair.refuse("symbol-moved", f"symbol changed sections: {osym.name} "
                            f"({osym.section.name} -> {psym.section.name})")
            continue
        if osym.type == STT.OBJECT and osym.size != psym.size:
            pair.refuse("object-size", f"object size mismatch: {osym.name} ({osym.size} -> {psym.size} bytes); "
                        "existing data cannot change layout (use a shadow variable)")
            pair.refused.add(psym.section)


def _moved_between_text_subsections(osec: Section, psec: Section) -> bool:
    def stem(name: str) -> str | None:
        for prefix in _TEXT_SUBSECTIONS:
            if name.startswith(prefix):
                return name[len(prefix):]
        return None

    a, b = stem(osec.name), stem(psec.name)
    return a is not None and a == b


def check_ftrace_entries(pair: ObjectPair) -> None:
    """Livepatch redirects a function through its ftrace entry: a changed
    function without one (notrace, inline-implies-notrace, lib/ code) cannot
    be replaced."""
    view = pair.patched
    for psym, status in list(pair.status.items()):
        if status is not Status.CHANGED or not isinstance(psym, Symbol) or psym.type != STT.FUNC:
            continue
        parent = view.parent.get(psym)
        if parent is not None and psym not in view.patchable:
            continue  # travels with its parent
        osym = pair.twin.get(psym)
        if isinstance(osym, Symbol) and osym not in pair.orig.patchable:
            hint = ""
            if psym.name.startswith("__do_sys_"):
                hint = ("; it is a system call body: write KLP_SYSCALL_DEFINEn (kbuilder-patch.h) "
                        "in place of SYSCALL_DEFINEn")
            pair.refuse("no-ftrace", f"function {psym.name} has no ftrace entry (notrace?), unable to patch it{hint}")
