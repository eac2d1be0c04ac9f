"""Bundling: which sections hold exactly one function or data object, and
which functions are `.cold`/`.part` pieces of another."""

from __future__ import annotations

from kbuilder.correlate.names import child_parent_name
from kbuilder.elf.constants import STT
from kbuilder.elf.model import ElfObject, Section, Symbol

_FUNC_PREFIXES = (".text.", ".text.unlikely.", ".text.hot.")
_DATA_PREFIXES = (".data.", ".data.rel.", ".data.rel.ro.", ".data.rel.ro.local.", ".data.rel.local.",
                  ".rodata.", ".bss.")


def bundle_symbols(obj: ElfObject) -> dict[Section, Symbol]:
    """With -ffunction-sections/-fdata-sections, `foo` lives alone in
    `.text.foo` (`.data.foo`, ...); such a section changes exactly when its
    symbol does. `foo.cold` lives in `.text.unlikely.foo`. A function may
    start past offset 0: x86 call padding (`__pfx_foo`) and arm64 CALL_OPS
    put bytes of their own before it."""
    bundled: dict[Section, Symbol] = {}
    for sym in obj.symbols:
        sec = sym.section
        if sec is None or sec in bundled:
            continue
        name = sec.name
        if sym.type == STT.FUNC:
            prefixes = _FUNC_PREFIXES
            candidates = [sym.name]
            parent = child_parent_name(sym.name)
            if parent is not None and sym.name[len(parent):].startswith(".cold"):
                candidates.append(parent)
        elif sym.type == STT.OBJECT and sym.value == 0:
            prefixes = _DATA_PREFIXES
            candidates = [sym.name]
        else:
            continue
        for prefix in prefixes:
            if name.startswith(prefix) and name[len(prefix):] in candidates:
                bundled[sec] = sym
                break
    return bundled


def find_children(obj: ElfObject) -> tuple[dict[Symbol, Symbol], dict[Symbol, list[Symbol]]]:
    """`foo.cold[.N]` must have its parent `foo`; `foo.part.N` has one when
    `foo` survived in this object."""
    funcs: dict[str, Symbol] = {}
    for sym in obj.symbols:
        if sym.type == STT.FUNC and sym.section is not None:
            funcs.setdefault(sym.name, sym)
    parent: dict[Symbol, Symbol] = {}
    children: dict[Symbol, list[Symbol]] = {}
    for name, sym in funcs.items():
        pname = child_parent_name(name)
        if pname is None:
            continue
        # `foo.part.3.cold` belongs to `foo.part.3`, not `foo`.
        if ".cold" in name:
            pname = name[:name.index(".cold")]
        owner = funcs.get(pname)
        if owner is not None and owner is not sym:
            parent[sym] = owner
            children.setdefault(owner, []).append(sym)
    return parent, children
