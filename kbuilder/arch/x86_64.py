"""x86-64: relocation types, ftrace entry convention, special sections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbuilder.arch.base import Arch, InstructionIndex, SpecialSection

if TYPE_CHECKING:
    from kbuilder.elf.model import ElfObject, Section

EM_X86_64 = 62

R_X86_64_NONE = 0
R_X86_64_64 = 1
R_X86_64_PC32 = 2
R_X86_64_PLT32 = 4
R_X86_64_GOTPCREL = 9
R_X86_64_32 = 10
R_X86_64_32S = 11
R_X86_64_PC64 = 24
R_X86_64_GOTPCRELX = 41
R_X86_64_REX_GOTPCRELX = 42

RELOC_NAMES = {
    0: "R_X86_64_NONE", 1: "R_X86_64_64", 2: "R_X86_64_PC32", 3: "R_X86_64_GOT32",
    4: "R_X86_64_PLT32", 5: "R_X86_64_COPY", 6: "R_X86_64_GLOB_DAT", 7: "R_X86_64_JUMP_SLOT",
    8: "R_X86_64_RELATIVE", 9: "R_X86_64_GOTPCREL", 10: "R_X86_64_32", 11: "R_X86_64_32S",
    12: "R_X86_64_16", 13: "R_X86_64_PC16", 14: "R_X86_64_8", 15: "R_X86_64_PC8",
    16: "R_X86_64_DTPMOD64", 17: "R_X86_64_DTPOFF64", 18: "R_X86_64_TPOFF64", 19: "R_X86_64_TLSGD",
    20: "R_X86_64_TLSLD", 21: "R_X86_64_DTPOFF32", 22: "R_X86_64_GOTTPOFF", 23: "R_X86_64_TPOFF32",
    24: "R_X86_64_PC64", 25: "R_X86_64_GOTOFF64", 26: "R_X86_64_GOTPC32", 32: "R_X86_64_SIZE32",
    33: "R_X86_64_SIZE64", 41: "R_X86_64_GOTPCRELX", 42: "R_X86_64_REX_GOTPCRELX",
}

# Entry sizes of Linux 6.1 x86_64 (arch/x86/include/asm/*.h); a kernel build
# tree or command-line options override them: they change across versions.
SPECIAL_SECTIONS = (
    SpecialSection("__bug_table", "BUG_STRUCT_SIZE", 12, "WARN/BUG sites (struct bug_entry)"),
    SpecialSection("__ex_table", "EX_STRUCT_SIZE", 12, "exception fixups (struct exception_table_entry)"),
    SpecialSection(".fixup", None, None, "out-of-line fixup code targeted by __ex_table"),
    SpecialSection("__jump_table", "JUMP_STRUCT_SIZE", 16, "static keys (struct jump_entry, relative)"),
    SpecialSection(".altinstructions", "ALT_STRUCT_SIZE", 12, "alternatives (struct alt_instr)"),
    SpecialSection(".altinstr_replacement", None, None, "replacement code for alternatives"),
    SpecialSection(".altinstr_aux", None, None, "auxiliary alternatives code"),
    SpecialSection(".parainstructions", "PARA_STRUCT_SIZE", 16, "paravirt patch sites"),
    SpecialSection(".smp_locks", None, 4, "LOCK prefix sites"),
    SpecialSection(".static_call_sites", "STATIC_CALL_STRUCT_SIZE", 8, "static call sites"),
    SpecialSection(".call_sites", None, 4, "objtool call sites"),
    SpecialSection(".retpoline_sites", None, 4, "objtool retpoline sites"),
    SpecialSection(".return_sites", None, 4, "objtool return thunk sites"),
    SpecialSection(".ibt_endbr_seal", None, 4, "objtool ENDBR seal sites"),
    SpecialSection(".orc_unwind", "ORC_STRUCT_SIZE", 6, "ORC unwind entries"),
    SpecialSection(".orc_unwind_ip", None, 4, "ORC unwind instruction pointers"),
    SpecialSection(".printk_index", "PRINTK_INDEX_STRUCT_SIZE", 48, "printk format index"),
    SpecialSection("__mcount_loc", None, 8, "ftrace call sites"),
    SpecialSection("__patchable_function_entries", None, 8, "patchable function entries"),
    SpecialSection("__tracepoints", None, None, "tracepoint definitions"),
    SpecialSection("__tracepoints_ptrs", None, 4, "tracepoint pointers"),
    SpecialSection("__tracepoints_strings", None, None, "tracepoint names"),
    SpecialSection("__dyndbg", None, None, "dynamic debug descriptors"),
    SpecialSection("__verbose", None, None, "dynamic debug descriptors (old name)"),
)

# One-byte opcodes with a ModRM operand and no immediate (mov, lea, add,
# cmp, test, xchg, movsxd, inc/dec/push/call/jmp indirect, shifts by 1/cl).
_NO_IMM = frozenset({0x01, 0x03, 0x09, 0x0B, 0x11, 0x13, 0x19, 0x1B, 0x21, 0x23, 0x29, 0x2B, 0x31, 0x33, 0x39,
                     0x3B, 0x63, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8D, 0xD1, 0xD3, 0xFE, 0xFF})
# Two-byte (0F xx) opcodes likewise: movzx/movsx, setcc, cmovcc, bt/bts/btr/btc
# by register, xadd, cmpxchg, imul r,r/m, prefetch, and SSE moves.
_NO_IMM_0F = frozenset({0xB6, 0xB7, 0xBE, 0xBF, *range(0x90, 0xA0), *range(0x40, 0x50), 0xA3, 0xAB, 0xB3, 0xBB,
                        0xC0, 0xC1, 0xB0, 0xB1, 0xAF, 0x18, 0x0D, 0x10, 0x11, 0x28, 0x29, 0x6E, 0x7E, 0x6F, 0x7F,
                        0xD6})
# One-byte opcodes with a ModRM operand and an 8-bit immediate (group 1
# arithmetic, shifts by imm, mov r/m8 imm, imul imm8), and with a 32-bit one
# (group 1, mov r/m imm32, imul imm32; 16 bits under an operand-size prefix).
_IMM8 = frozenset({0x80, 0x83, 0xC0, 0xC1, 0xC6, 0x6B})
_IMM32 = frozenset({0x81, 0xC7, 0x69})
# Two-byte opcodes with an 8-bit immediate: bt/bts/btr/btc imm8, shld/shrd imm8.
_IMM8_0F = frozenset({0xBA, 0xA4, 0xAC})


def _operand_size_prefix(code: bytes, opcode_at: int) -> bool:
    """Whether a 0x66 prefix may precede the opcode (directly or before a
    REX byte). A byte of the previous instruction can look like one: then
    the caller falls back to decoding, which is only slower."""
    before = code[opcode_at - 1] if opcode_at >= 1 else None
    if before is not None and 0x40 <= before <= 0x4F:
        before = code[opcode_at - 2] if opcode_at >= 2 else None
    return before == 0x66


def _unusual_encoding(code: bytes, offset: int) -> bool:
    """Bytes that may be a VEX prefix or a 0F 38 / 0F 3A escape before the
    opcode, where the one-byte opcode tables do not apply."""
    return ((offset >= 4 and (code[offset - 4] == 0xC5 or (code[offset - 4] == 0x0F
                                                          and code[offset - 3] in (0x38, 0x3A))))
            or (offset >= 5 and code[offset - 5] == 0xC4))


_FENTRY_RELOCS = frozenset({R_X86_64_NONE, R_X86_64_PC32, R_X86_64_PLT32})


class X86_64(Arch):
    name = "x86_64"
    machine = EM_X86_64
    reloc_names = RELOC_NAMES
    abs64_reloc = R_X86_64_64
    none_reloc = R_X86_64_NONE
    pc_relative = frozenset({R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX,
                             R_X86_64_REX_GOTPCRELX, R_X86_64_PC64})
    special_sections = SPECIAL_SECTIONS
    ftrace_section = "__mcount_loc"
    capstone_arch = "CS_ARCH_X86"
    capstone_mode = "CS_MODE_64"
    # The call is the first instruction, or follows an ENDBR64 (IBT); its
    # relocation is one byte in.
    ftrace_window = (1, 16)

    extra_absolute_relocs = frozenset({R_X86_64_32S, R_X86_64_32})

    def fast_insn_end(self, code: bytes, offset: int) -> int | None:
        """End of the instruction holding the PC-relative field at `offset`,
        from the few bytes before it, for the forms compilers emit most:
        call/jmp/jcc rel32, and RIP-relative ModRM operands (mod=00 rm=101
        right before the displacement) of opcodes whose immediate size the
        opcode (and for group 3 the ModRM reg field) fixes. Written out
        because decoding whole functions with capstone to learn this costs a
        fifth of a diff; anything unusual (an operand-size prefix before an
        imm32 opcode, a VEX or 0F38/0F3A escape) returns None so that
        capstone decides."""
        if offset < 1:
            return None
        modrm = code[offset - 1]
        if modrm == 0xE8 or modrm == 0xE9 or (0x80 <= modrm <= 0x8F and offset >= 2 and code[offset - 2] == 0x0F):
            return offset + 4  # call/jmp/jcc rel32: the field ends the instruction
        if offset < 2 or (modrm & 0xC7) != 0x05 or _unusual_encoding(code, offset):
            return None
        opcode = code[offset - 2]
        if offset >= 3 and code[offset - 3] == 0x0F:
            if opcode in _NO_IMM_0F:
                return offset + 4
            return offset + 5 if opcode in _IMM8_0F else None
        if opcode in _NO_IMM:
            return offset + 4
        if opcode in _IMM8:
            return offset + 5
        if opcode in _IMM32:
            return None if _operand_size_prefix(code, offset - 2) else offset + 8
        if opcode == 0xF6 or opcode == 0xF7:  # group 3: only test (/0, /1) has an immediate
            if (modrm >> 3) & 7 > 1:
                return offset + 4
            if opcode == 0xF6:
                return offset + 5
            return None if _operand_size_prefix(code, offset - 2) else offset + 8
        return None

    def ftrace_call_site(self, sec: Section, site: int) -> int:
        """The site is the relocation of `call __fentry__`, one byte into the
        call. A NOP left by old -mrecord-mcount builds (R_X86_64_NONE) is
        turned back into the call the kernel's ftrace init expects."""
        if sec.rela is not None:
            for reloc in sec.rela.relocs:
                if reloc.offset == site and reloc.type == R_X86_64_NONE:
                    reloc.type = R_X86_64_PC32
                    reloc.addend = -4
                    sec.data = sec.data[:site - 1] + b"\xe8\0\0\0\0" + sec.data[site + 4:]
                    break
        return site - 1

    def pcrel_place_adjust(self, code_index: InstructionIndex | None, offset: int, rtype: int) -> int:
        if rtype not in self.pc_relative:
            return 0
        end = code_index.end_of(offset) if code_index is not None else None
        # A 32-bit displacement that ends the instruction is the common case.
        return (end - offset) if end is not None else 4

    def is_line_number_load(self, old_mnemonic: str, old_ops: str, new_mnemonic: str, new_ops: str) -> bool:
        """`mov $imm, %esi` / `%edx`: the line argument of (file, line, ...)
        and of (file, line) calls (2nd and 3rd argument registers)."""
        if old_mnemonic != "mov" or new_mnemonic != "mov":
            return False
        old_reg, _, old_imm = old_ops.partition(", ")
        new_reg, _, new_imm = new_ops.partition(", ")
        return (old_reg == new_reg and old_reg in ("esi", "edx", "ecx")
                and _is_imm(old_imm) and _is_imm(new_imm))

    def ftrace_sites(self, obj: ElfObject) -> dict[Section, list[int]]:
        """`call __fentry__` sites (gcc -mfentry; R_X86_64_NONE when
        -mrecord-mcount left it as a NOP on old compilers)."""
        sites: dict[Section, list[int]] = {}
        for sec in obj.sections:
            if sec.type != 4 or sec.info_section is None or not sec.info_section.flags & 0x4:
                continue
            for reloc in sec.relocs:
                if reloc.symbol.name == "__fentry__" and reloc.type in _FENTRY_RELOCS:
                    sites.setdefault(sec.info_section, []).append(reloc.offset)
        for offsets in sites.values():
            offsets.sort()
        return sites


ARCH = X86_64()


def _is_imm(text: str) -> bool:
    try:
        int(text, 0)
    except ValueError:
        return False
    return True
