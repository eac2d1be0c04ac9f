"""AArch64: relocation types, ftrace entry convention, special sections.

Functions are made patchable with -fpatchable-function-entry: the ftrace
sites are recorded in `__patchable_function_entries`, not `__mcount_loc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbuilder.arch.base import Arch, SpecialSection

if TYPE_CHECKING:
    from kbuilder.elf.model import ElfObject, Section

EM_AARCH64 = 183

RELOC_NAMES = {
    0: "R_AARCH64_NONE", 257: "R_AARCH64_ABS64", 258: "R_AARCH64_ABS32", 259: "R_AARCH64_ABS16",
    260: "R_AARCH64_PREL64", 261: "R_AARCH64_PREL32", 262: "R_AARCH64_PREL16",
    263: "R_AARCH64_MOVW_UABS_G0", 264: "R_AARCH64_MOVW_UABS_G0_NC", 265: "R_AARCH64_MOVW_UABS_G1",
    266: "R_AARCH64_MOVW_UABS_G1_NC", 267: "R_AARCH64_MOVW_UABS_G2", 268: "R_AARCH64_MOVW_UABS_G2_NC",
    269: "R_AARCH64_MOVW_UABS_G3", 273: "R_AARCH64_LD_PREL_LO19", 274: "R_AARCH64_ADR_PREL_LO21",
    275: "R_AARCH64_ADR_PREL_PG_HI21", 276: "R_AARCH64_ADR_PREL_PG_HI21_NC",
    277: "R_AARCH64_ADD_ABS_LO12_NC", 278: "R_AARCH64_LDST8_ABS_LO12_NC", 279: "R_AARCH64_TSTBR14",
    280: "R_AARCH64_CONDBR19", 282: "R_AARCH64_JUMP26", 283: "R_AARCH64_CALL26",
    284: "R_AARCH64_LDST16_ABS_LO12_NC", 285: "R_AARCH64_LDST32_ABS_LO12_NC",
    286: "R_AARCH64_LDST64_ABS_LO12_NC", 299: "R_AARCH64_LDST128_ABS_LO12_NC",
    311: "R_AARCH64_ADR_GOT_PAGE", 312: "R_AARCH64_LD64_GOT_LO12_NC",
}

SPECIAL_SECTIONS = (
    SpecialSection("__bug_table", "BUG_STRUCT_SIZE", 12, "WARN/BUG sites"),
    SpecialSection("__ex_table", "EX_STRUCT_SIZE", 12, "exception fixups"),
    SpecialSection("__jump_table", "JUMP_STRUCT_SIZE", 16, "static keys"),
    SpecialSection(".altinstructions", "ALT_STRUCT_SIZE", 12, "alternatives"),
    SpecialSection(".altinstr_replacement", None, None, "replacement code for alternatives"),
    SpecialSection(".printk_index", "PRINTK_INDEX_STRUCT_SIZE", 48, "printk format index"),
    SpecialSection("__patchable_function_entries", None, 8, "ftrace call sites"),
    SpecialSection("__mcount_loc", None, 8, "ftrace call sites (mcount)"),
    SpecialSection("__tracepoints", None, None, "tracepoint definitions"),
    SpecialSection("__tracepoints_ptrs", None, 4, "tracepoint pointers"),
    SpecialSection("__tracepoints_strings", None, None, "tracepoint names"),
    SpecialSection("__dyndbg", None, None, "dynamic debug descriptors"),
)



class AArch64(Arch):
    name = "aarch64"
    machine = EM_AARCH64
    reloc_names = RELOC_NAMES
    abs64_reloc = 257
    none_reloc = 0
    pc_relative = frozenset({261, 273, 274, 275, 276, 279, 280, 282, 283})
    special_sections = SPECIAL_SECTIONS
    ftrace_section = "__patchable_function_entries"
    capstone_arch = "CS_ARCH_ARM64"
    capstone_mode = "CS_MODE_ARM"
    # With CALL_OPS the recorded entry sits two NOPs before the symbol.
    ftrace_window = (-8, 1)

    ftrace_section_writable = True

    def is_line_number_load(self, old_mnemonic: str, old_ops: str, new_mnemonic: str, new_ops: str) -> bool:
        """`mov w2, #imm`: the line argument of __warn_printk(file, line, ...)."""
        return (old_mnemonic == new_mnemonic == "mov" and old_ops.startswith("w2, #")
                and new_ops.startswith("w2, #"))

    def ftrace_sites(self, obj: ElfObject) -> dict[Section, list[int]]:
        """Entries of the `__patchable_function_entries` sections."""
        sites: dict[Section, list[int]] = {}
        for sec in obj.sections:
            if sec.type != 4 or sec.info_section is None:
                continue
            if sec.info_section.name != "__patchable_function_entries":
                continue
            for reloc in sec.relocs:
                target = reloc.symbol
                if target.section is not None:
                    sites.setdefault(target.section, []).append(target.value + reloc.addend)
        for offsets in sites.values():
            offsets.sort()
        return sites


ARCH = AArch64()
