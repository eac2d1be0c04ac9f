"""kbuilder.include.special: the entry size of a special section.

The configured size (a *_STRUCT_SIZE) is used when the relocations agree
with it; when they show another layout (a kernel whose struct changed) the
size they show is used, with a warning, rather than mis-slicing the table.
"""

from __future__ import annotations

from types import SimpleNamespace


from kbuilder.elf.constants import SHF, STT
from kbuilder.elf.model import Reloc
from kbuilder.include.special import _entry_size, _layout_fits

R_X86_64_PC32 = 2


def _table(m: SimpleNamespace, size: int, offsets: list[int], name: str = "__bug_table"):  # type: ignore[no-untyped-def]
    """A special section of `size` bytes relocated at `offsets`."""
    sec = m.section(name, b"\0" * size, SHF.ALLOC)
    text = m.section(".text.f", b"\x90" * 64, SHF.ALLOC | SHF.EXECINSTR)
    func = m.symbol("f", text, STT.FUNC)
    m.with_relocations(sec, [Reloc(off, R_X86_64_PC32, func, 0) for off in offsets])
    return sec


def _bug_entries(count: int, size: int = 12) -> list[int]:
    """struct bug_entry (x86_64, 12 bytes): bug_addr_disp at 0, file_disp at 4."""
    return [e * size + field for e in range(count) for field in (0, 4)]


def _pair() -> SimpleNamespace:
    return SimpleNamespace(warnings=[])


def test_layout_fits_the_real_size(elf_model: SimpleNamespace) -> None:
    sec = _table(elf_model, 36, _bug_entries(3))
    assert _layout_fits(sec, 12)
    assert not _layout_fits(sec, 16)   # entries would straddle
    assert not _layout_fits(sec, 6)    # every other "entry" would be unrelocated
    assert not _layout_fits(sec, 4)


def test_layout_allows_a_missing_field_and_a_short_tail(elf_model: SimpleNamespace) -> None:
    m = elf_model
    # The second entry leaves its second field unrelocated (e.g. an empty alternative).
    assert _layout_fits(_table(m, 36, [0, 4, 12, 24, 28]), 12)
    # The last entry is cut short (tail padding missing): 32 bytes, 3 entries of 12.
    assert _layout_fits(_table(m, 32, _bug_entries(3)[:-1] + [28]), 12)


def test_layout_without_relocations_fits(elf_model: SimpleNamespace) -> None:
    assert _layout_fits(_table(elf_model, 24, []), 12)


def test_configured_size_used_when_it_fits(elf_model: SimpleNamespace) -> None:
    pair = _pair()
    assert _entry_size(pair, _table(elf_model, 36, _bug_entries(3)), 12) == 12  # type: ignore[arg-type]
    assert pair.warnings == []


def test_wrong_configured_size_is_corrected(elf_model: SimpleNamespace) -> None:
    pair = _pair()
    sec = _table(elf_model, 36, _bug_entries(3))
    # 36 bytes also split into one 36-byte entry; the size nearest the configured one wins.
    assert _entry_size(pair, sec, 16) == 12  # type: ignore[arg-type]
    assert pair.warnings == ["__bug_table: entries are 12 bytes here, not 16"]


def test_no_configured_size_takes_the_smallest_layout(elf_model: SimpleNamespace) -> None:
    pair = _pair()
    assert _entry_size(pair, _table(elf_model, 36, _bug_entries(3)), None) == 12  # type: ignore[arg-type]
    assert pair.warnings == []


def _jump_table(m: SimpleNamespace, entries: int) -> object:
    """struct jump_entry (relative, 16 bytes): code, target, key at 0, 4, 8."""
    return _table(m, 16 * entries, [e * 16 + f for e in range(entries) for f in (0, 4, 8)], "__jump_table")


def test_jump_table_size_corrected(elf_model: SimpleNamespace) -> None:
    pair = _pair()
    assert _entry_size(pair, _jump_table(elf_model, 3), 24) == 16  # type: ignore[arg-type]
    assert pair.warnings == ["__jump_table: entries are 16 bytes here, not 24"]


def test_jump_table_wrong_size_with_evenly_spaced_fields(elf_model: SimpleNamespace) -> None:
    pair = _pair()
    assert _entry_size(pair, _jump_table(elf_model, 3), 12) == 16  # type: ignore[arg-type]


def test_no_layout_fits(elf_model: SimpleNamespace) -> None:
    # 67 bytes (a prime above 64) relocated where a 12-byte layout cannot be.
    pair = _pair()
    assert _entry_size(pair, _table(elf_model, 67, [0, 30]), 12) is None  # type: ignore[arg-type]
