"""Callbacks become klp_callbacks entries: one function of each kind per
object, so a second one is refused with a clear reason, not a crash."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kbuilder.elf.constants import SHF, STB, STT
from kbuilder.elf.model import ElfObject, Reloc
from kbuilder.errors import UnpatchableError
from kbuilder.module.generate import ModuleSpec, add_aliases

R_X86_64_64 = 1


def _output(elf_model: SimpleNamespace, callbacks: list[str]) -> ElfObject:
    text = elf_model.section(".text.cb", b"\xc3" * 16, SHF.ALLOC | SHF.EXECINSTR)
    funcs = [elf_model.symbol(name, text, STT.FUNC, STB.LOCAL, value=i, size=1) for i, name in enumerate(callbacks)]
    table = elf_model.section(".klp.callbacks.pre_patch", b"\0" * 8 * len(funcs), SHF.ALLOC)
    rela = elf_model.with_relocations(table, [Reloc(8 * i, R_X86_64_64, f, 0) for i, f in enumerate(funcs)])
    obj = ElfObject(path="cb.o", machine=62)
    obj.sections = [text, table, rela]
    obj.symbols = [elf_model.symbol(""), *funcs]
    return obj


def test_one_callback_gets_an_alias(elf_model: SimpleNamespace) -> None:
    spec = ModuleSpec("p", replace=True, description="")
    add_aliases(spec, _output(elf_model, ["fix_up"]), [], "vmlinux", "kernel/cb.c")
    assert spec.callbacks == {"vmlinux": {"pre_patch": "__kbuilder_cb_0"}}


def test_two_callbacks_of_one_kind_are_refused(elf_model: SimpleNamespace) -> None:
    spec = ModuleSpec("p", replace=True, description="")
    with pytest.raises(UnpatchableError, match="more than one pre-patch callback for vmlinux .also second"):
        add_aliases(spec, _output(elf_model, ["first", "second"]), [], "vmlinux", "kernel/cb.c")
