"""Architecture registry: one module per architecture, found by e_machine."""

from __future__ import annotations

import importlib

from kbuilder.arch.base import Arch, SpecialSection

__all__ = ["ARCHES", "Arch", "SpecialSection", "find_arch", "get_arch"]

# e_machine -> module under kbuilder.arch
ARCHES: dict[int, str] = {62: "x86_64", 183: "aarch64"}


def find_arch(machine: int) -> Arch | None:
    module = ARCHES.get(machine)
    if module is None:
        return None
    arch: Arch = importlib.import_module(f"kbuilder.arch.{module}").ARCH
    return arch


def get_arch(machine: int) -> Arch:
    arch = find_arch(machine)
    if arch is None:
        raise LookupError(f"unsupported machine {machine}")
    return arch
