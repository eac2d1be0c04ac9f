"""Architecture registry: one module per architecture, looked up by e_machine."""

from __future__ import annotations

from kbuilder.arch.base import Arch, SpecialSection

__all__ = ["Arch", "SpecialSection", "find_arch", "get_arch", "ARCHES"]

ARCHES: dict[int, str] = {62: "x86_64", 183: "aarch64"}


def find_arch(machine: int) -> Arch | None:
    name = ARCHES.get(machine)
    if name is None:
        return None
    # Imported on demand: capstone is only loaded when an object is read.
    if name == "x86_64":
        from kbuilder.arch.x86_64 import ARCH
    else:
        from kbuilder.arch.aarch64 import ARCH
    return ARCH


def get_arch(machine: int) -> Arch:
    arch = find_arch(machine)
    if arch is None:
        raise LookupError(f"unsupported machine {machine}")
    return arch
