"""Build the patch module with the target's own kbuild, then rewrite it."""

from __future__ import annotations

import shutil
from pathlib import Path

from kbuilder.elf import read_object, write_object
from kbuilder.elf.model import ElfObject
from kbuilder.kernel import toolchain
from kbuilder.module.generate import ModuleSpec, kbuild_file, livepatch_source
from kbuilder.module.post_link import convert_to_livepatch


def build_module(spec: ModuleSpec, diff_outputs: list[tuple[str, ElfObject]], kernel_obj: Path, moddir: Path,
                 *, jobs: int, log: Path) -> tuple[ElfObject, int]:
    """`diff_outputs` are (file name, object) pairs; returns the rewritten
    module and the number of livepatch relocations it carries. `moddir` is
    rebuilt from scratch, at a stable path: the module records no path of
    its own, and a stable one keeps it that way."""
    shutil.rmtree(moddir, ignore_errors=True)
    moddir.mkdir(parents=True)
    for name, obj in diff_outputs:
        # kbuild copies `X_shipped` to X: prebuilt objects in a module.
        write_object(obj, moddir / f"{name}_shipped")
    spec.diff_objects = [name for name, _ in diff_outputs]
    (moddir / "livepatch.c").write_text(livepatch_source(spec))
    (moddir / "Kbuild").write_text(kbuild_file(spec))
    toolchain.run(["make", "-C", str(kernel_obj), f"M={moddir}", f"-j{jobs}", "KBUILD_MODPOST_WARN=1",
                   "modules"], log=log, what="patch module build")
    ko = read_object(moddir / f"{spec.name}.ko")
    moved = convert_to_livepatch(ko)
    return ko, moved
