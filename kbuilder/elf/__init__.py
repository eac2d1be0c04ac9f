"""ELF64 relocatable objects: model, reader and writer."""

from kbuilder.elf.model import ElfModelError, ElfObject, Reloc, Section, Symbol
from kbuilder.elf.reader import parse_object, read_object
from kbuilder.elf.writer import serialize, write_object

__all__ = ["ElfModelError", "ElfObject", "Reloc", "Section", "Symbol", "parse_object", "read_object",
           "serialize", "write_object"]
