"""kbuilder.compare.relocs.reloc_key: relocations compare by what they mean.

Two tiny hand-built "objects" (x86_64) whose literal pools are laid out
differently: references to the same string or constant must give equal
keys, references to different contents different keys.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from kbuilder.arch import get_arch
from kbuilder.compare.relocs import reloc_key, reloc_keys, string_at, target_place
from kbuilder.elf.constants import SHF, STB, STT
from kbuilder.elf.model import Reloc

X86 = get_arch(62)
R_X86_64_64, R_X86_64_PC32, R_X86_64_32S = 1, 2, 11
STRINGS = SHF.ALLOC | SHF.MERGE | SHF.STRINGS
CONSTANTS = SHF.ALLOC | SHF.MERGE


@pytest.fixture
def two_objects(elf_model: SimpleNamespace) -> SimpleNamespace:
    m = elf_model
    text_a = m.section(".text.foo", b"\x90" * 32, SHF.ALLOC | SHF.EXECINSTR)
    text_b = m.section(".text.foo", b"\x90" * 32, SHF.ALLOC | SHF.EXECINSTR)
    # Same strings, another order and another section name in b.
    str_a = m.section(".rodata.foo.str1.1", b"hello\0world\0", STRINGS, entsize=1)
    str_b = m.section(".rodata.bar.str1.1", b"xx\0world\0hello\0", STRINGS, entsize=1)
    cst_a = m.section(".rodata.cst8", struct.pack("<qq", 1, 2), CONSTANTS, entsize=8)
    cst_b = m.section(".rodata.cst8", struct.pack("<qq", 2, 1), CONSTANTS, entsize=8)
    return SimpleNamespace(
        text_a=text_a, text_b=text_b,
        str_a=m.section_symbol(str_a), str_b=m.section_symbol(str_b),
        cst_a=m.section_symbol(cst_a), cst_b=m.section_symbol(cst_b),
        clone_a=m.symbol("helper.isra.3", text_a, STT.FUNC, STB.LOCAL, 0, 16),
        clone_b=m.symbol("helper.isra.7", text_b, STT.FUNC, STB.LOCAL, 0, 16),
        other_b=m.symbol("helper.constprop.3", text_b, STT.FUNC, STB.LOCAL, 0, 16),
        aux=m.section_symbol(m.section(".altinstr_aux", b"\x90" * 64, SHF.ALLOC | SHF.EXECINSTR)),
    )


def test_pc_relative_string_reference_compares_content(two_objects: SimpleNamespace) -> None:
    o = two_objects
    # `lea "world"(%rip)`: the addend is the offset minus the 4 bytes up to the next instruction.
    a = Reloc(3, R_X86_64_PC32, o.str_a, 6 - 4)
    b = Reloc(3, R_X86_64_PC32, o.str_b, 3 - 4)
    assert target_place(X86, o.text_a, a) == 6 and target_place(X86, o.text_b, b) == 3
    assert reloc_key(X86, o.text_a, a) == reloc_key(X86, o.text_b, b) == (3, R_X86_64_PC32, "str", b"world")


def test_absolute_string_reference_compares_content(two_objects: SimpleNamespace) -> None:
    o = two_objects
    a = Reloc(8, R_X86_64_32S, o.str_a, 0)
    b = Reloc(8, R_X86_64_32S, o.str_b, 9)
    assert reloc_key(X86, o.text_a, a) == reloc_key(X86, o.text_b, b)


def test_different_strings_differ(two_objects: SimpleNamespace) -> None:
    o = two_objects
    a = Reloc(3, R_X86_64_PC32, o.str_a, 6 - 4)   # "world"
    b = Reloc(3, R_X86_64_PC32, o.str_b, 9 - 4)   # "hello"
    assert reloc_key(X86, o.text_a, a) != reloc_key(X86, o.text_b, b)


def test_place_and_type_still_count(two_objects: SimpleNamespace) -> None:
    o = two_objects
    base = reloc_key(X86, o.text_a, Reloc(3, R_X86_64_PC32, o.str_a, 2))
    assert reloc_key(X86, o.text_a, Reloc(4, R_X86_64_PC32, o.str_a, 2)) != base
    assert reloc_key(X86, o.text_a, Reloc(3, R_X86_64_32S, o.str_a, 6)) != base


def test_merged_constants_compare_by_value(two_objects: SimpleNamespace) -> None:
    o = two_objects
    # The constant 2 sits at +8 in a and at +0 in b.
    a = Reloc(5, R_X86_64_PC32, o.cst_a, 8 - 4)
    b = Reloc(5, R_X86_64_PC32, o.cst_b, 0 - 4)
    assert reloc_key(X86, o.text_a, a) == reloc_key(X86, o.text_b, b) == (5, R_X86_64_PC32, "const",
                                                                          struct.pack("<q", 2))
    c = Reloc(5, R_X86_64_PC32, o.cst_b, 8 - 4)  # the constant 1
    assert reloc_key(X86, o.text_a, a) != reloc_key(X86, o.text_b, c)


def test_symbols_compare_by_correlation_key_and_addend(two_objects: SimpleNamespace) -> None:
    o = two_objects
    a = Reloc(10, R_X86_64_PC32, o.clone_a, -4)
    assert reloc_key(X86, o.text_a, a) == reloc_key(X86, o.text_b, Reloc(10, R_X86_64_PC32, o.clone_b, -4))
    assert reloc_key(X86, o.text_a, a) != reloc_key(X86, o.text_b, Reloc(10, R_X86_64_PC32, o.clone_b, 0))
    assert reloc_key(X86, o.text_a, a) != reloc_key(X86, o.text_b, Reloc(10, R_X86_64_PC32, o.other_b, -4))


def test_altinstr_aux_targets_are_equal(two_objects: SimpleNamespace) -> None:
    o = two_objects
    a = Reloc(2, R_X86_64_PC32, o.aux, 0x10)
    b = Reloc(2, R_X86_64_PC32, o.aux, 0x30)
    assert reloc_key(X86, o.text_a, a) == reloc_key(X86, o.text_b, b)


def test_string_out_of_range_falls_back_to_name(two_objects: SimpleNamespace) -> None:
    o = two_objects
    key = reloc_key(X86, o.text_a, Reloc(0, R_X86_64_64, o.str_a, 100))
    assert key == (0, R_X86_64_64, ".rodata.foo.str1.1", 100)


def test_string_at(elf_model: SimpleNamespace) -> None:
    sec = elf_model.section(".rodata.str1.1", b"ab\0cd", STRINGS)
    assert string_at(sec, 0) == b"ab"
    assert string_at(sec, 1) == b"b"
    assert string_at(sec, 3) == b"cd"  # unterminated tail
    assert string_at(sec, 5) is None and string_at(sec, -1) is None


def test_reloc_keys_of_a_section(elf_model: SimpleNamespace, two_objects: SimpleNamespace) -> None:
    o = two_objects
    rela_a = elf_model.with_relocations(o.text_a, [Reloc(3, R_X86_64_PC32, o.str_a, 2),
                                                   Reloc(10, R_X86_64_PC32, o.clone_a, -4)])
    rela_b = elf_model.with_relocations(o.text_b, [Reloc(3, R_X86_64_PC32, o.str_b, -1),
                                                   Reloc(10, R_X86_64_PC32, o.clone_b, -4)])
    assert reloc_keys(X86, rela_a) == reloc_keys(X86, rela_b)
