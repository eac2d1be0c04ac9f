"""What the model and the differ need to know about an architecture.

Each architecture is one module (`x86_64.py`, `aarch64.py`) that builds one
`Arch` instance; nothing outside `kbuilder/arch/` branches on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True, slots=True)
class SpecialSection:
    """A per-object table the kernel walks at boot or module load.

    `size_key` names the entry size setting (kpatch's *_STRUCT_SIZE names);
    `entry_size` is the default for this architecture's 6.x kernels; None
    means variable-sized entries (`.fixup`, `.altinstr_replacement`).
    """

    name: str
    size_key: str | None
    entry_size: int | None
    why: str


@dataclass(frozen=True, slots=True)
class Arch:
    name: str
    machine: int
    reloc_names: Mapping[int, str]
    # Relocation types of a 64-bit absolute address (used for __mcount_loc).
    abs64_reloc: int
    # Relocation types whose value is relative to the place (need the
    # instruction end to find the target inside a section).
    pc_relative: frozenset[int]
    none_reloc: int
    special_sections: tuple[SpecialSection, ...]
    # Symbol the compiler calls at function entry for ftrace (x86: __fentry__).
    ftrace_call: str | None
    # The section recording ftrace call sites (x86: __mcount_loc).
    ftrace_section: str
    capstone_arch: int = 0
    capstone_mode: int = 0
    extra: Mapping[str, object] = field(default_factory=dict)

    def reloc_name(self, rtype: int) -> str:
        return self.reloc_names.get(rtype, f"R_{self.name.upper()}_{rtype}")

    def special_section(self, name: str) -> SpecialSection | None:
        for special in self.special_sections:
            if special.name == name:
                return special
        return None
