"""ELF constants used by the object model (ELF64 relocatable objects).

Values are from the System V gABI and the Linux uapi `elf.h` (for the
livepatch extensions). Only what the model and the differ need is listed.
"""

from __future__ import annotations

import enum
import struct

ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1


class ET(enum.IntEnum):
    NONE = 0
    REL = 1
    EXEC = 2
    DYN = 3
    CORE = 4


class SHT(enum.IntEnum):
    NULL = 0
    PROGBITS = 1
    SYMTAB = 2
    STRTAB = 3
    RELA = 4
    HASH = 5
    DYNAMIC = 6
    NOTE = 7
    NOBITS = 8
    REL = 9
    DYNSYM = 11
    INIT_ARRAY = 14
    FINI_ARRAY = 15
    PREINIT_ARRAY = 16
    GROUP = 17
    SYMTAB_SHNDX = 18


class SHF(enum.IntFlag):
    WRITE = 0x1
    ALLOC = 0x2
    EXECINSTR = 0x4
    MERGE = 0x10
    STRINGS = 0x20
    INFO_LINK = 0x40
    LINK_ORDER = 0x80
    GROUP = 0x200
    TLS = 0x400
    COMPRESSED = 0x800
    # Linux livepatch: a relocation section the module loader leaves to livepatch.
    RELA_LIVEPATCH = 0x00100000
    RO_AFTER_INIT = 0x00200000
    EXCLUDE = 0x80000000


class SHN(enum.IntEnum):
    UNDEF = 0
    LORESERVE = 0xFF00
    # Linux livepatch: symbol resolved by livepatch through kallsyms.
    LIVEPATCH = 0xFF20
    ABS = 0xFFF1
    COMMON = 0xFFF2
    XINDEX = 0xFFFF


class STB(enum.IntEnum):
    LOCAL = 0
    GLOBAL = 1
    WEAK = 2


class STT(enum.IntEnum):
    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4
    COMMON = 5
    TLS = 6


class STV(enum.IntEnum):
    DEFAULT = 0
    INTERNAL = 1
    HIDDEN = 2
    PROTECTED = 3


GRP_COMDAT = 0x1

# Record layouts, little-endian ELF64.
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
RELA = struct.Struct("<QQq")
