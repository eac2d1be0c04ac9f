"""kbuilder.correlate.names: which names denote the same entity across two
compilations (kpatch's kpatch_mangled_strcmp), which statics are never
correlated, and which functions are pieces of another."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kbuilder.correlate.names import (
    child_parent_name, correlation_key, is_normal_static_local, is_special_static,
)
from kbuilder.elf.constants import SHF, STB, STT


@pytest.mark.parametrize("name,key", [
    ("foo.isra.3", "foo.isra"),
    ("foo.cold.12", "foo.cold"),
    ("foo.cold", "foo.cold"),
    ("counter.12", "counter"),
    ("foo.constprop.0", "foo.constprop"),
    ("foo.part.5", "foo.part"),
    ("foo.isra.0.cold.7", "foo.isra.cold"),
    (".text.foo.isra.2", ".text.foo.isra"),
    ("plain_name", "plain_name"),
    ("", ""),
    # String sections keep their numbers: .str1.1 and .str1.8 hold different alignments.
    (".rodata.foo.str1.1", ".rodata.foo.str1.1"),
    (".rodata.str1.8", ".rodata.str1.8"),
    (".rodata.foo.str.4", ".rodata.foo.str.4"),
])
def test_correlation_key(name: str, key: str) -> None:
    assert correlation_key(name) == key


@pytest.mark.parametrize("a,b", [
    ("foo.isra.0", "foo.isra.7"),
    ("foo.constprop.3", "foo.constprop.12"),
    ("foo.part.5", "foo.part.6"),
    ("foo.cold.140", "foo.cold"),
    ("var.12345", "var.23456"),
    ("__UNIQUE_ID_ddebug1131.186", "__UNIQUE_ID_ddebug1132.187"),
    ("__UNIQUE_ID_addressable_foo123", "__UNIQUE_ID_addressable_foo456"),
])
def test_same_entity(a: str, b: str) -> None:
    assert correlation_key(a) == correlation_key(b)


@pytest.mark.parametrize("a,b", [
    # A change of clone kind makes a new function (kpatch: same rule).
    ("foo.isra.0", "foo.constprop.0"),
    ("foo.isra.0", "foo"),
    ("foo.part.1", "foo.cold.1"),
    ("counter.1", "counters.1"),
    (".rodata.foo.str1.1", ".rodata.foo.str1.8"),
])
def test_different_entities(a: str, b: str) -> None:
    assert correlation_key(a) != correlation_key(b)


@pytest.mark.parametrize("name,parent", [
    ("foo.cold", "foo"),
    ("foo.cold.12", "foo"),
    ("foo.part.3", "foo"),
    # The caller (bundle.find_children) handles `.part.N.cold` itself.
    ("foo.part.3.cold", "foo.part.3"),
    ("foo", None),
    ("foo.isra.0", None),
    ("foo.constprop.2", None),
    (".cold", None),
    ("foo.partial", None),
])
def test_child_parent_name(name: str, parent: str | None) -> None:
    assert child_parent_name(name) == parent


# --- statics -----------------------------------------------------------------

def _object(m: SimpleNamespace, name: str, section: str, bind: int = STB.LOCAL, type_: int = STT.OBJECT):  # type: ignore[no-untyped-def]
    return m.symbol(name, m.section(section, b"\0" * 8, SHF.ALLOC | SHF.WRITE), type_, bind, 0, 4)


@pytest.mark.parametrize("name,section", [
    ("__key.12", ".bss.__key.12"),                # lockdep class key
    ("__warned.3", ".data.once"),                 # WARN_ONCE flag
    ("__already_done.7", ".data.once"),
    ("__func__.5", ".rodata.__func__.5"),
    ("_rs.2", ".data._rs.2"),                     # printk_ratelimit state
    ("CSWTCH.41", ".rodata.CSWTCH.41"),           # switch lookup table
    ("__print_once.9", ".data.once"),
    ("descriptor.4", "__dyndbg"),
    ("my_func.__warned", ".bss.x"),               # clang names them <function>.<name>
    ("my_func._rs", ".bss.y"),
    ("anything", ".data..once"),                  # any object in the once sections
    ("__UNIQUE_ID_ddebug12.3", "__dyndbg"),
    ("unnamed", ".data..L__unnamed_1"),
])
def test_special_static(elf_model: SimpleNamespace, name: str, section: str) -> None:
    sym = _object(elf_model, name, section)
    assert is_special_static(sym)
    assert not is_normal_static_local(sym)


@pytest.mark.parametrize("name,section,bind,type_", [
    ("counter.12", ".bss.counter.12", STB.LOCAL, STT.OBJECT),   # a normal function-scope static
    ("global_table", ".data.global_table", STB.GLOBAL, STT.OBJECT),
    ("__key.12", ".text.__key.12", STB.LOCAL, STT.FUNC),        # a function, whatever its name
    ("keyboard.3", ".bss.keyboard.3", STB.LOCAL, STT.OBJECT),
])
def test_not_special_static(elf_model: SimpleNamespace, name: str, section: str, bind: int, type_: int) -> None:
    assert not is_special_static(_object(elf_model, name, section, bind, type_))


def test_global_in_once_section_is_special(elf_model: SimpleNamespace) -> None:
    assert is_special_static(_object(elf_model, "flag", ".data.once", STB.GLOBAL))


def test_section_symbol_of_special_section(elf_model: SimpleNamespace) -> None:
    m = elf_model
    once = m.section(".data.once", b"\0", SHF.ALLOC | SHF.WRITE)
    plain = m.section(".bss.counter.3", b"\0", SHF.ALLOC | SHF.WRITE)
    assert is_special_static(m.section_symbol(once))
    assert is_special_static(m.section_symbol(m.section(".bss.__key.7", b"\0")))
    assert not is_special_static(m.section_symbol(plain))


def test_normal_static_local(elf_model: SimpleNamespace) -> None:
    m = elf_model
    assert is_normal_static_local(_object(m, "counter.12", ".bss.counter.12"))
    assert not is_normal_static_local(_object(m, "counter", ".bss.counter"))  # file-scope static
    assert not is_normal_static_local(_object(m, "counter.12", ".bss.counter.12", STB.GLOBAL))
    assert not is_normal_static_local(m.symbol(".LC0", m.section(".rodata.cst8"), STT.NOTYPE))
