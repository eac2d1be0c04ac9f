"""Regenerate special sections: keep only the entries about included code.

The kernel walks these tables (bug sites, exception fixups, static keys,
alternatives, ...) when the patch module loads. An entry is kept when one of
its relocations points into a function the output carries; the rest would
point at code the module does not have. Kept entries are packed together and
their relocations moved with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbuilder.elf.constants import STT
from kbuilder.elf.model import Reloc, Section, Symbol
from kbuilder.include.closure import include_section
from kbuilder.pair import ObjectPair, Status

# Keys of static keys / static calls that may be dropped: tracepoints and
# dynamic debug are disabled in the patched code rather than refused.
_DROPPABLE_KEY_PREFIXES = ("__tracepoint_", "__SCK__tp_func_", "descriptor", "__UNIQUE_ID_ddebug")


@dataclass(frozen=True, slots=True)
class SpecialSizes:
    """Entry sizes by setting name (BUG_STRUCT_SIZE, ...), overriding the arch defaults."""

    sizes: dict[str, int]

    def entry_size(self, pair: ObjectPair, name: str) -> int | None:
        special = pair.arch.special_section(name)
        if special is None:
            return None
        if special.size_key is not None and special.size_key in self.sizes:
            return self.sizes[special.size_key]
        return special.entry_size


# Handled elsewhere or never regenerated entry-wise.
_NOT_ENTRY_TABLES = frozenset({".fixup", ".altinstr_replacement", ".altinstr_aux", "__mcount_loc",
                               "__patchable_function_entries", ".orc_unwind", "__tracepoints",
                               "__tracepoints_strings", "__dyndbg", "__verbose"})


def regenerate_special_sections(pair: ObjectPair, sizes: SpecialSizes) -> None:
    obj = pair.patched.obj
    fixup = obj.find_section(".fixup")
    for sec in list(obj.sections):
        if sec.name in _NOT_ENTRY_TABLES or sec in pair.ignored or sec.rela is None:
            continue
        if pair.arch.special_section(sec.name) is None:
            continue
        if sec.name == "__ex_table" and fixup is not None:
            _regenerate_ex_table_with_fixup(pair, sec, fixup, sizes)
            continue
        if not any(_includes_function(pair, r.symbol) for r in sec.rela.relocs):
            continue  # nothing in it is about included code: dropped whole
        size = _entry_size(pair, sec, sizes.entry_size(pair, sec.name))
        if size is None:
            pair.refuse("special-section", f"{sec.name}: entries of {sizes.entry_size(pair, sec.name)} bytes do "
                        "not match its relocations (set the matching *_STRUCT_SIZE)")
            continue
        keep = _kept_entries(pair, sec, size)
        if sec.name == "__jump_table" or sec.name == ".static_call_sites":
            keep = _check_keys(pair, sec, size, keep)
        _rewrite(pair, sec, size, keep)
        if keep and sec.name == ".altinstructions":
            replacement = obj.find_section(".altinstr_replacement")
            if replacement is not None:
                include_section(pair, replacement)
        if keep and sec.name == ".orc_unwind_ip":
            _rewrite_orc(pair, obj.find_section(".orc_unwind"), keep, sizes)


def _layout_shapes(sec: Section, size: int) -> int | None:
    """How many different relocation layouts the entries show when the table
    is sliced every `size` bytes, or None when that slicing cannot be right:
    some entry has no relocation, or the entries use more distinct places than
    any one entry holds (the last entry may be cut short, as when a table's
    tail padding is missing)."""
    assert sec.rela is not None
    per_entry: dict[int, list[int]] = {}
    for reloc in sec.rela.relocs:
        per_entry.setdefault(reloc.offset // size, []).append(reloc.offset % size)
    if not per_entry:
        return 1
    if len(per_entry) != -(-sec.size // size):
        return None
    places = {p for v in per_entry.values() for p in v}
    if len(places) > max(len(v) for v in per_entry.values()):
        return None
    return len({tuple(sorted(v)) for v in per_entry.values()})


def _layout_fits(sec: Section, size: int) -> bool:
    # An optional field (an empty alternative) allows a second layout; a
    # wrong size slices entries at shifting places and makes more.
    shapes = _layout_shapes(sec, size)
    return shapes is not None and shapes <= 2


def _entry_size(pair: ObjectPair, sec: Section, configured: int | None) -> int | None:
    """The configured entry size, or, when the relocations show that it is
    wrong for this object (a kernel's struct changed), the size they show:
    the most regular slicing, then the one closest to the configured size.
    kpatch would silently mis-slice such a table."""
    if configured and _layout_shapes(sec, configured) == 1:
        return configured
    scored = []
    for n in range(4, 65):
        if sec.size % n == 0 or n == configured:
            shapes = _layout_shapes(sec, n)
            if shapes is not None and shapes <= 2:
                scored.append((shapes, abs(n - (configured or n)), n, n))
    if not scored:
        return None
    best = min(scored)[3]
    if configured and best != configured:
        pair.warnings.append(f"{sec.name}: entries are {best} bytes here, not {configured}")
    return best


def _includes_function(pair: ObjectPair, sym: Symbol) -> bool:
    sec = sym.section
    if sec is None or sec not in pair.included or not sec.flags & 0x4:
        return False
    return sym.type in (STT.FUNC, STT.SECTION)


def _kept_entries(pair: ObjectPair, sec: Section, size: int) -> list[int]:
    keep: set[int] = set()
    assert sec.rela is not None
    for reloc in sec.rela.relocs:
        if _includes_function(pair, reloc.symbol):
            keep.add(reloc.offset // size)
    return sorted(keep)


def _check_keys(pair: ObjectPair, sec: Section, size: int, keep: list[int]) -> list[int]:
    """A key in a module cannot be used before the module's klp relocations
    are applied (late module patching): refuse, except for tracepoints and
    dynamic debug, which are dropped."""
    assert sec.rela is not None
    is_module = pair.notes.get("__objname__", "vmlinux") != "vmlinux"
    kept = []
    for entry in keep:
        relocs = [r for r in sec.rela.relocs if r.offset // size == entry]
        key = relocs[-1].symbol if relocs else None
        if key is None:
            continue
        name = key.name or key.display_name
        if name.startswith(_DROPPABLE_KEY_PREFIXES) and is_module:
            continue
        if is_module and pair.status_of(key) is Status.SAME:
            what = "jump label" if sec.name == "__jump_table" else "static call"
            pair.refuse("module-key", f"{what} key {name} is defined in a module: use "
                        f"{'static_key_enabled()' if what == 'jump label' else 'an indirect call'} instead")
            continue
        kept.append(entry)
    return kept


def _rewrite(pair: ObjectPair, sec: Section, size: int, keep: list[int]) -> None:
    assert sec.rela is not None
    if not keep:
        return
    position = {entry: i for i, entry in enumerate(keep)}
    padded = sec.data + b"\0" * (-len(sec.data) % size)
    data = b"".join(padded[e * size:(e + 1) * size] for e in keep)
    relocs = []
    for reloc in sec.rela.relocs:
        slot = position.get(reloc.offset // size)
        if slot is not None:
            reloc.offset = slot * size + reloc.offset % size
            relocs.append(reloc)
    relocs.sort(key=lambda r: r.offset)
    sec.data, sec.size = data, len(data)
    sec.rela.relocs = relocs
    pair.status[sec] = Status.NEW
    include_section(pair, sec)


def _rewrite_orc(pair: ObjectPair, orc: Section | None, keep: list[int], sizes: SpecialSizes) -> None:
    """`.orc_unwind` is parallel to `.orc_unwind_ip`, with no relocations."""
    if orc is None:
        return
    size = sizes.entry_size(pair, ".orc_unwind") or 6
    orc.data = b"".join(orc.data[e * size:(e + 1) * size] for e in keep)
    orc.size = len(orc.data)
    pair.status[orc] = Status.NEW
    include_section(pair, orc)


def _regenerate_ex_table_with_fixup(pair: ObjectPair, ex: Section, fixup: Section, sizes: SpecialSizes) -> None:
    """Old kernels: `__ex_table` entries point into `.fixup` code, whose
    pieces have no symbols. A piece runs from one referenced offset to the
    next; kept entries take their piece along, packed into a new `.fixup`."""
    size = sizes.entry_size(pair, "__ex_table") or 12
    assert ex.rela is not None
    keep = _kept_entries(pair, ex, size)
    starts = sorted({r.symbol.value + r.addend for r in ex.rela.relocs if r.symbol.section is fixup}
                    | {fixup.size})
    pieces = {start: end for start, end in zip(starts, starts[1:])}
    used = sorted({r.symbol.value + r.addend for r in ex.rela.relocs
                   if r.symbol.section is fixup and r.offset // size in keep})
    moved: dict[int, int] = {}
    data = b""
    for start in used:
        moved[start] = len(data)
        data += fixup.data[start:pieces.get(start, start)]
    if fixup.rela is not None:
        relocs: list[Reloc] = []
        for reloc in fixup.rela.relocs:
            for start in used:
                if start <= reloc.offset < pieces[start]:
                    reloc.offset = moved[start] + reloc.offset - start
                    relocs.append(reloc)
                    break
        fixup.rela.relocs = relocs
    for reloc in ex.rela.relocs:
        if reloc.symbol.section is fixup and reloc.offset // size in keep:
            reloc.addend = moved[reloc.symbol.value + reloc.addend] - reloc.symbol.value
    if used:
        fixup.data, fixup.size = data, len(data)
        pair.status[fixup] = Status.NEW
        include_section(pair, fixup)
    _rewrite(pair, ex, size, keep)
