"""What the model and the differ need to know about an architecture.

Each architecture is one module (`x86_64.py`, `aarch64.py`) holding one
`Arch` subclass: its tables are data, its behaviour (ftrace entry detection,
instruction decoding) methods. Nothing outside `kbuilder/arch/` branches on
the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from kbuilder.elf.model import ElfObject, Symbol


@dataclass(frozen=True, slots=True)
class SpecialSection:
    """A per-object table the kernel walks at boot or module load.

    `size_key` names the entry-size setting (kpatch's *_STRUCT_SIZE names);
    `entry_size` is the default for this architecture's 6.1 kernels; None
    means variable-sized entries (`.fixup`, `.altinstr_replacement`).
    """

    name: str
    size_key: str | None
    entry_size: int | None
    why: str


class Arch:
    name: str = ""
    machine: int = 0
    reloc_names: Mapping[int, str] = {}
    abs64_reloc: int = 0
    none_reloc: int = 0
    # Relocation types computed relative to the place.
    pc_relative: frozenset[int] = frozenset()
    special_sections: tuple[SpecialSection, ...] = ()
    # The section recording ftrace call sites.
    ftrace_section: str = "__mcount_loc"
    # capstone constants, by name: capstone is imported only when used.
    capstone_arch: str = ""
    capstone_mode: str = ""

    def reloc_name(self, rtype: int) -> str:
        return self.reloc_names.get(rtype, f"R_{self.name.upper()}_{rtype}")

    def special_section(self, name: str) -> SpecialSection | None:
        return self._special_by_name.get(name)

    @cached_property
    def _special_by_name(self) -> dict[str, SpecialSection]:
        return {s.name: s for s in self.special_sections}

    def has_ftrace_entry(self, obj: ElfObject, func: Symbol) -> bool:
        """Whether ftrace can redirect `func`, i.e. livepatch can replace it."""
        raise NotImplementedError

    @cached_property
    def disassembler(self) -> Any:
        import capstone

        md = capstone.Cs(getattr(capstone, self.capstone_arch), getattr(capstone, self.capstone_mode))
        md.detail = False
        return md

    def __repr__(self) -> str:
        return f"<Arch {self.name}>"
