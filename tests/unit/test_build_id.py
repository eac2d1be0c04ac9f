"""kbuilder.build.build_id: the build id an artifact's metadata names must be
the one the running kernel exports in /sys/kernel/notes (its `.notes`
section), not another build-id note the file happens to hold earlier (the
vDSO image embedded in vmlinux has one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kbuilder.build import build_id

DECOY = "aa" * 20
REAL = "bb" * 20

SOURCE = """
struct note { unsigned int namesz, descsz, type; char name[4]; unsigned char desc[20]; };
#define DESC(b) { b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b }
/* An embedded image's note, in the file ahead of the kernel's own
   (-fno-toplevel-reorder keeps the definitions' order in the file). */
__attribute__((used, section(".rodata.image"), aligned(4))) const struct note decoy = { 4, 20, 3, "GNU", DESC(0xaa) };
__attribute__((used, section(".notes"), aligned(4))) const struct note real = { 4, 20, 3, "GNU", DESC(0xbb) };
"""


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    return gcc


def test_the_notes_section_wins_over_an_earlier_build_id(tmp_path: Path) -> None:
    src = tmp_path / "v.c"
    src.write_text(SOURCE)
    obj = tmp_path / "v.o"
    subprocess.run([_gcc(), "-c", "-O2", "-fno-toplevel-reorder", "-o", str(obj), str(src)], check=True)
    data = obj.read_bytes()
    assert data.find(bytes.fromhex(DECOY)) < data.find(bytes.fromhex(REAL))   # what fooled a byte search
    assert build_id(obj) == REAL


def test_a_linked_build_id_note_without_notes_section(tmp_path: Path) -> None:
    src = tmp_path / "s.c"
    src.write_text("int f(void) { return 1; }\n")
    lib = tmp_path / "s.so"
    subprocess.run([_gcc(), "-shared", "-nostdlib", "-Wl,--build-id=sha1", "-o", str(lib), str(src)], check=True)
    shown = subprocess.run(["readelf", "-n", str(lib)], capture_output=True, text=True, check=True).stdout
    expected = next(line.split(":", 1)[1].strip() for line in shown.splitlines() if "Build ID" in line)
    assert build_id(lib) == expected


def test_no_build_id(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"not an ELF file")
    assert build_id(tmp_path / "x") == ""
