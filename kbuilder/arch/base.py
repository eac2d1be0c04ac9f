"""What the model and the differ need to know about an architecture.

Each architecture is one module (`x86_64.py`, `aarch64.py`) holding one
`Arch` subclass: its tables are data, its behaviour (ftrace entry detection,
instruction decoding) methods. Nothing outside `kbuilder/arch/` branches on
the machine.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from kbuilder.elf.model import ElfObject, Section, Symbol


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
    # Absolute relocation types other than abs64 that can hold a function address.
    extra_absolute_relocs: frozenset[int] = frozenset()
    ftrace_section_writable: bool = False
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

    def ftrace_sites(self, obj: ElfObject) -> dict[Section, list[int]]:
        """Offsets, per section, of the ftrace call sites the compiler emitted."""
        raise NotImplementedError

    # How far after (x86) or before (arm64) a function's start its ftrace site may lie.
    ftrace_window: tuple[int, int] = (0, 16)

    def patchable_functions(self, obj: ElfObject) -> set[Symbol]:
        """Functions ftrace can redirect, i.e. that livepatch can replace."""
        sites = self.ftrace_sites(obj)
        lo, hi = self.ftrace_window
        found = set()
        for sym in obj.symbols:
            if sym.type == 2 and sym.section is not None:  # STT_FUNC
                offsets = sites.get(sym.section)
                if offsets:
                    start = bisect_left(offsets, sym.value + lo)
                    if start < len(offsets) and offsets[start] < sym.value + hi:
                        found.add(sym)
        return found

    def has_ftrace_entry(self, obj: ElfObject, func: Symbol) -> bool:
        return func in self.patchable_functions(obj)

    def fast_insn_end(self, code: bytes, offset: int) -> int | None:
        """End of the instruction whose relocated field starts at `offset`,
        when the bytes before it tell without decoding; None: decode."""
        return None

    def pcrel_place_adjust(self, code_index: InstructionIndex | None, offset: int, rtype: int) -> int:
        """What to add to a PC-relative relocation's addend to get the offset
        it designates in the target section. On x86 the CPU adds the address
        of the next instruction, and the addend compensates for the distance
        from the relocated field to it."""
        return 0

    def ftrace_call_site(self, sec: Section, site: int) -> int:
        """Offset of the instruction ftrace patches, given a recorded site;
        also repairs the site if the compiler left it in an old form."""
        return site

    def is_line_number_load(self, old_mnemonic: str, old_ops: str, new_mnemonic: str, new_ops: str) -> bool:
        """Whether two differing instructions only load a different immediate
        into the register that carries a line number to a reporting call."""
        return False

    @cached_property
    def disassembler(self) -> Any:
        import capstone

        md = capstone.Cs(getattr(capstone, self.capstone_arch), getattr(capstone, self.capstone_mode))
        md.detail = False
        return md

    def __repr__(self) -> str:
        return f"<Arch {self.name}>"


class InstructionIndex:
    """Instruction boundaries of one code section, decoded once with capstone."""

    def __init__(self, arch: Arch, code: bytes) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for address, size, _, _ in arch.disassembler.disasm_lite(code, 0):
            self.starts.append(address)
            self.ends.append(address + size)

    def end_of(self, offset: int) -> int | None:
        """End of the instruction containing `offset`, if it decoded."""
        i = bisect_left(self.starts, offset + 1) - 1
        if i >= 0 and offset < self.ends[i]:
            return self.ends[i]
        return None
