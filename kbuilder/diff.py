"""`diff_objects`: the differ's stage driver, one stage per line.

orig and patched are read into separate models; the stages record their
findings in an ObjectPair; the output is assembled from the patched model.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

from kbuilder.arch import get_arch
from kbuilder.compare.annotations import apply_ignore_annotations
from kbuilder.compare.sections import compare_sections, mark_ignored_sections
from kbuilder.compare.symbols import check_correlated_symbols, check_ftrace_entries, mark_symbol_status
from kbuilder.correlate.bundle import bundle_symbols, find_children
from kbuilder.correlate.match import correlate_sections, correlate_symbols
from kbuilder.correlate.normalize import replace_section_symbols
from kbuilder.correlate.statics import correlate_static_locals
from kbuilder.elf import ElfObject, Section, Symbol
from kbuilder.elf.reader import parse_object, read_bytes
from kbuilder.elf.constants import STB, STT
from kbuilder.emit.klp import KlpResolver
from kbuilder.emit.output import OutputFacts, build_output
from kbuilder.emit.parent import ParentSymbols
from kbuilder.errors import MismatchError
from kbuilder.include.closure import (
    include_callbacks, include_changed_functions, include_new_globals, include_standard_elements,
)
from kbuilder.include.special import SpecialSizes, regenerate_special_sections
from kbuilder.include.verify import verify_patchability
from kbuilder.pair import ObjectPair, ObjectView, Refusal, Status


@dataclass(frozen=True, slots=True)
class DiffOptions:
    objname: str = "vmlinux"
    parent: ParentSymbols | None = None
    exports: dict[str, str] | None = None
    struct_sizes: dict[str, int] = field(default_factory=dict)
    explain: bool = False


@dataclass(slots=True)
class DiffResult:
    orig: str
    patched: str
    arch: str
    objname: str
    source: str
    status: str  # "patch" | "no-change" | "unpatchable"
    changed: list[str]
    new: list[str]
    included_functions: list[str]
    callbacks: list[str]
    ignored: list[str]
    refusals: list[Refusal]
    warnings: list[str]
    notes: dict[str, str]
    functions: list[dict[str, object]]
    explanations: dict[str, list[str]]
    facts: OutputFacts | None
    output: ElfObject | None
    pair: ObjectPair | None = None


def diff_files(orig_path: str | os.PathLike[str], patched_path: str | os.PathLike[str],
               options: DiffOptions) -> DiffResult:
    enabled = gc.isenabled()
    gc.disable()
    try:
        orig_bytes, patched_bytes = read_bytes(orig_path), read_bytes(patched_path)
        orig = parse_object(orig_bytes, os.fspath(orig_path))
        if patched_bytes == orig_bytes and not _has_patch_sections(orig):
            # Most pairs of a batch over two build trees are the same file:
            # no functional change, without the second parse and the stages.
            return _identical(orig, os.fspath(patched_path), options)
        return diff_objects(orig, parse_object(patched_bytes, os.fspath(patched_path)), options)
    finally:
        if enabled:
            gc.enable()


# Sections a patch author's macros add (callbacks, ignore annotations): an
# object carrying them is diffed in full even when both files are equal.
_PATCH_SECTION_PREFIXES = (".klp.", ".kpatch.")


def _has_patch_sections(obj: ElfObject) -> bool:
    return any(sec.name.startswith(_PATCH_SECTION_PREFIXES) for sec in obj.sections)


def _identical(orig: ElfObject, patched_path: str, options: DiffOptions) -> DiffResult:
    return DiffResult(orig=orig.path, patched=patched_path, arch=get_arch(orig.machine).name,
                      objname=options.objname, source=source_name(orig), status="no-change", changed=[], new=[],
                      included_functions=[], callbacks=[], ignored=[], refusals=[], warnings=[],
                      notes={"identical": "the two object files are byte for byte the same"}, functions=[],
                      explanations={}, facts=None, output=None)


def diff_objects(orig: ElfObject, patched: ElfObject, options: DiffOptions) -> DiffResult:
    # The stages build many small acyclic records; the cyclic collector's
    # sweeps would cost a fifth of the run and free nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _diff_objects(orig, patched, options)
    finally:
        if enabled:
            gc.enable()


def _diff_objects(orig: ElfObject, patched: ElfObject, options: DiffOptions) -> DiffResult:
    check_pair(orig, patched)
    pair = ObjectPair(prepare_view(orig), prepare_view(patched))
    pair.notes["__objname__"] = options.objname
    correlate_sections(pair)
    correlate_symbols(pair)
    correlate_static_locals(pair)
    mark_ignored_sections(pair)
    compare_sections(pair)
    mark_symbol_status(pair)
    ignored = apply_ignore_annotations(pair)
    check_correlated_symbols(pair)
    check_ftrace_entries(pair)
    include_standard_elements(pair)
    include_changed_functions(pair)
    callbacks = include_callbacks(pair)
    include_new_globals(pair)
    regenerate_special_sections(pair, SpecialSizes(options.struct_sizes))
    verify_patchability(pair)
    return finish(pair, options, callbacks, ignored)


def check_pair(orig: ElfObject, patched: ElfObject) -> None:
    if orig.machine != patched.machine:
        raise MismatchError(f"different architectures: {get_arch(orig.machine).name} and "
                            f"{get_arch(patched.machine).name} ({patched.path})", path=orig.path)
    a, b = source_name(orig), source_name(patched)
    if a and b and a != b:
        raise MismatchError(f"compiled from different source files: {a} and {b} ({patched.path})", path=orig.path)


def source_name(obj: ElfObject) -> str:
    return next((s.name for s in obj.symbols if s.type == STT.FILE), "")


def prepare_view(obj: ElfObject) -> ObjectView:
    arch = get_arch(obj.machine)
    view = ObjectView(obj, arch)
    view.bundled = bundle_symbols(obj)
    view.parent, view.children = find_children(obj)
    view.patchable = arch.patchable_functions(obj)
    replace_section_symbols(view)
    return view


def finish(pair: ObjectPair, options: DiffOptions, callbacks: list[Symbol], ignored: list[str]) -> DiffResult:
    view = pair.patched
    changed, new, included = [], [], []
    for sym in view.obj.symbols[1:]:
        if sym.type != STT.FUNC or sym.section is None or sym.section not in pair.included:
            continue
        included.append(sym.name)
        if sym in view.parent and pair.status_of(view.parent[sym]) is not Status.SAME:
            continue  # a piece of a changed function
        status = pair.status_of(sym)
        if status is Status.CHANGED:
            changed.append(sym.name)
        elif status is Status.NEW:
            new.append(sym.name)
    if pair.refusals:
        state = "unpatchable"
    elif not changed and not any(pair.status_of(s) is Status.NEW and s.bind != STB.LOCAL
                                 for s in view.obj.symbols[1:] if s in pair.included) and not callbacks:
        state = "no-change"
    else:
        state = "patch"
    output = facts = None
    functions: list[dict[str, object]] = []
    explanations = _explain(pair, changed) if options.explain else {}
    if state == "patch":
        resolver = KlpResolver(options.objname, options.parent, options.exports,
                               _file_block(pair, options), pair.warnings)
        functions = _patched_functions(pair, resolver, changed)
        output, facts = build_output(pair, resolver)
    return DiffResult(orig=pair.orig.path, patched=view.path, arch=pair.arch.name, objname=options.objname,
                      source=source_name(pair.orig.obj), status=state, changed=changed, new=new,
                      included_functions=included, callbacks=[s.name for s in callbacks], ignored=ignored,
                      refusals=list(pair.refusals), warnings=list(pair.warnings),
                      notes={k: v for k, v in pair.notes.items() if not k.startswith("__")},
                      functions=functions, explanations=explanations, facts=facts, output=output, pair=pair)


def _explain(pair: ObjectPair, changed: list[str]) -> dict[str, list[str]]:
    """Before the output stage touches the patched sections."""
    from kbuilder.compare.explain import explain_change

    def explain(sec: Section) -> list[str]:
        twin = pair.twin.get(sec)
        return explain_change(pair.arch, twin if isinstance(twin, Section) else None, sec)

    found = {}
    for sym in pair.patched.obj.symbols:
        if sym.type == STT.FUNC and sym.name in changed and sym.section is not None:
            lines = explain(sym.section) if pair.status_of(sym.section) is not Status.SAME else []
            # The change may lie only in an out-of-line piece (foo.cold, foo.part.N).
            for child in pair.patched.children.get(sym, ()):
                if child.section is not None and pair.status_of(child.section) is not Status.SAME:
                    lines += explain(child.section)
            found[sym.name] = lines or explain(sym.section)
    return found


def _file_block(pair: ObjectPair, options: DiffOptions) -> tuple[int, int] | None:
    parent = options.parent
    if parent is None or not parent.has_files:
        return None
    source = source_name(pair.orig.obj)
    locals_ = {s.name for s in pair.orig.obj.symbols
               if s.bind == STB.LOCAL and s.type in (STT.FUNC, STT.OBJECT) and s.section is not None}
    return parent.match_file_block(source, locals_)


def _patched_functions(pair: ObjectPair, resolver: KlpResolver, changed: list[str]) -> list[dict[str, object]]:
    """What each klp_func entry needs: the running kernel's name and sympos."""
    out = []
    for sym in pair.patched.obj.symbols[1:]:
        if sym.type != STT.FUNC or sym.name not in changed or sym.section is None:
            continue
        orig = pair.twin.get(sym)
        bind = orig.bind if orig is not None else sym.bind
        sympos = resolver.decide(sym.name, STB.LOCAL).sympos if bind == STB.LOCAL else 0  # type: ignore[union-attr]
        out.append({"name": sym.name, "objname": resolver.objname, "sympos": sympos,
                    "old_size": getattr(orig, "size", 0), "new_size": sym.size})
    return out
