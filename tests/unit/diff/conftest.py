"""Helpers of the differ's unit tests: hand-built model pieces and tiny C
translation units compiled on the spot (gcc, a few milliseconds each)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from kbuilder.elf.constants import SHF, SHN, SHT, STB, STT
from kbuilder.elf.model import Reloc, Section, Symbol

CFLAGS = ("-O2", "-ffunction-sections", "-fdata-sections", "-fno-pic", "-fno-asynchronous-unwind-tables",
          "-fno-stack-protector", "-fno-common")


def make_section(name: str, data: bytes = b"", flags: int = SHF.ALLOC, type_: int = SHT.PROGBITS,
                 entsize: int = 0, size: int | None = None) -> Section:
    return Section(name, type_, flags, data, len(data) if size is None else size, 1, entsize)


def make_symbol(name: str, section: Section | None = None, type_: int = STT.OBJECT, bind: int = STB.LOCAL,
                value: int = 0, size: int = 0) -> Symbol:
    return Symbol(name, bind, type_, 0, section, SHN.UNDEF if section is None else 1, value, size)


def section_symbol(section: Section) -> Symbol:
    sym = make_symbol("", section, STT.SECTION)
    section.symbol = sym
    return sym


def with_relocations(section: Section, relocs: list[Reloc]) -> Section:
    rela = Section(".rela" + section.name, SHT.RELA, SHF.INFO_LINK, b"", 24 * len(relocs), 8, 24)
    rela.info_section = section
    rela.relocs = relocs
    section.rela = rela
    return rela


@pytest.fixture(scope="session")
def elf_model() -> SimpleNamespace:
    """The builders above (test modules cannot import a conftest by name):
    ``section``, ``symbol``, ``section_symbol``, ``with_relocations``."""
    return SimpleNamespace(section=make_section, symbol=make_symbol, section_symbol=section_symbol,
                           with_relocations=with_relocations)


@pytest.fixture(scope="session")
def compile_units(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``compile_units(dir_name, {"a.c": source, ...})`` -> the directory
    holding ``a.o`` ...; each file is compiled in that directory so that its
    STT_FILE symbol is just its base name."""
    root = tmp_path_factory.mktemp("units")

    def compile_(dir_name: str, sources: dict[str, str]) -> Path:
        work = root / dir_name
        work.mkdir(parents=True, exist_ok=True)
        for name, text in sources.items():
            (work / name).write_text(text)
            obj = Path(name).with_suffix(".o").name
            proc = subprocess.run(["gcc", "-c", *CFLAGS, name, "-o", obj], cwd=work, capture_output=True,
                                  text=True)
            assert proc.returncode == 0, proc.stderr
        return work

    return compile_


@pytest.fixture(scope="session")
def link_relocatable() -> Callable[..., Path]:
    """``link_relocatable(out, *objects)``: `ld -r`, a vmlinux stand-in with
    one STT_FILE block per input."""
    def link(out: Path, *objects: Path) -> Path:
        proc = subprocess.run(["ld", "-r", "-o", str(out), *map(str, objects)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return out

    return link
