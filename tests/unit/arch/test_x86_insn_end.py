"""The x86-64 shortcut that finds where an instruction ends from the bytes
before a PC-relative field must agree with capstone wherever it answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbuilder.arch import get_arch
from kbuilder.arch.base import InstructionIndex
from kbuilder.elf import read_object
from kbuilder.elf.constants import SHF, SHT

X86 = get_arch(62)


def _capstone_end(code: bytes, offset: int) -> int | None:
    return InstructionIndex(X86, code).end_of(offset)


@pytest.mark.parametrize(("code", "field", "end"), [
    (b"\xe8\0\0\0\0", 1, 5),                                   # call rel32
    (b"\x0f\x85\0\0\0\0", 2, 6),                               # jne rel32
    (b"\x48\x8b\x05\0\0\0\0", 3, 7),                           # mov rax, [rip]
    (b"\x80\x3d\0\0\0\0\x00", 2, 7),                           # cmp byte [rip], 0
    (b"\x48\xc7\x05\0\0\0\0\x01\0\0\0", 3, 11),                # mov qword [rip], 1
    (b"\x66\xc7\x05\0\0\0\0\x01\0", 3, None),                  # mov word [rip], 1: prefix -> decode
    (b"\xf6\x05\0\0\0\0\x01", 2, 7),                           # test byte [rip], 1
    (b"\xf7\x1d\0\0\0\0", 2, 6),                               # neg dword [rip]: no immediate
    (b"\x0f\xba\x2d\0\0\0\0\x03", 3, 8),                       # bts dword [rip], 3
    (b"\x66\x0f\x3a\x0b\x05\0\0\0\0\x04", 5, None),            # roundsd: 0F 3A escape -> decode
    (b"\xc4\xe3\x79\x0b\x05\0\0\0\0\x04", 5, None),            # VEX roundsd -> decode
])
def test_shortcut_on_hand_encoded_instructions(code: bytes, field: int, end: int | None) -> None:
    assert X86.fast_insn_end(code, field) == end
    if end is not None:
        assert _capstone_end(code, field) == end


def _x86_objects(corpus: Path, fixture_objects: dict[str, tuple[Path, Path]]) -> list[Path]:
    return [*sorted((corpus / "x86_64").glob("*.o")), *(p for pair in fixture_objects.values() for p in pair)]


def test_shortcut_agrees_with_capstone(corpus: Path, fixture_objects: dict[str, tuple[Path, Path]]) -> None:
    """Every PC-relative reference from code in the x86_64 corpus and the
    fixtures: where the shortcut answers, capstone agrees."""
    paths = _x86_objects(corpus, fixture_objects)
    assert len(paths) > 100
    for path in paths:
        _check_object(path)


def _check_object(path: Path) -> None:
    obj = read_object(path)
    answered = total = 0
    for rsec in obj.sections:
        base = rsec.info_section if rsec.type == SHT.RELA else None
        if base is None or not base.flags & SHF.EXECINSTR or base.name.startswith(".altinstr"):
            continue
        index = InstructionIndex(X86, base.data)
        for reloc in rsec.relocs:
            if reloc.type not in X86.pc_relative:
                continue
            total += 1
            fast = X86.fast_insn_end(base.data, reloc.offset)
            if fast is not None:
                answered += 1
                assert fast == index.end_of(reloc.offset), f"{path.name}: {base.name}+{reloc.offset:#x}"
    # The shortcut is worth having only if it answers for most references.
    assert answered >= 0.75 * total, f"{path.name}: {answered} of {total} answered"
