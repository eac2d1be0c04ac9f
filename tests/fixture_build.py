"""Build helpers for the C fixture corpus in ``fixtures/``.

Each fixture is a directory ``fixtures/<name>/`` holding ``orig.c``,
``patched.c`` and ``expect.toml``.  ``compile_fixture`` compiles both sides
with kernel-like flags and caches the objects by content hash, so tests
(and concurrent test workers) can call it freely.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR: Path = REPO_ROOT / "fixtures"
INCLUDE_DIR: Path = FIXTURES_DIR / "include"
MOCK_HEADER: Path = INCLUDE_DIR / "kernel_mock.h"

CC = "gcc"

KERNEL_CFLAGS: tuple[str, ...] = (
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-pic",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-pg",
    "-mfentry",
    "-mrecord-mcount",
    "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector",
    "-fno-common",
)

SIDES = ("orig", "patched")


def fixture_names() -> list[str]:
    """Sorted names of all fixture directories (those with an expect.toml)."""
    return sorted(
        p.name
        for p in FIXTURES_DIR.iterdir()
        if p.is_dir() and (p / "expect.toml").is_file()
    )


def load_expect(name: str) -> dict:
    """Parse ``fixtures/<name>/expect.toml``."""
    with open(FIXTURES_DIR / name / "expect.toml", "rb") as f:
        return tomllib.load(f)


@functools.lru_cache(maxsize=None)
def _compiler_version() -> str:
    try:
        out = subprocess.run(
            [CC, "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"cannot run {CC!r} --version: {exc}") from exc
    return out.splitlines()[0] if out else ""


def _cache_key(source: bytes) -> str:
    h = hashlib.sha256()
    for part in (
        source,
        MOCK_HEADER.read_bytes(),
        "\0".join(KERNEL_CFLAGS).encode(),
        _compiler_version().encode(),
    ):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


def _compile_side(name: str, side: str, cache_dir: Path) -> Path:
    src = FIXTURES_DIR / name / f"{side}.c"
    if not src.is_file():
        raise RuntimeError(f"fixture {name!r}: missing {src}")
    source = src.read_bytes()
    out = cache_dir / f"{name}-{_cache_key(source)}.{side}.o"
    if out.is_file():
        return out

    # Compile a copy named "<name>.c" so both sides get the same STT_FILE
    # symbol and the same __FILE__ string.
    with tempfile.TemporaryDirectory(prefix=f"kb-{name}-{side}-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / f"{name}.c").write_bytes(source)
        cmd = [
            CC,
            "-c",
            *KERNEL_CFLAGS,
            "-I",
            str(INCLUDE_DIR.resolve()),
            f"{name}.c",
            "-o",
            f"{name}.o",
        ]
        proc = subprocess.run(cmd, cwd=tmpdir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"compiling fixture {name!r} ({side}.c) failed "
                f"(exit {proc.returncode}):\n$ {' '.join(cmd)}\n{proc.stderr}"
            )
        fd, tmp_out = tempfile.mkstemp(
            prefix=f".{out.name}.", suffix=".tmp", dir=cache_dir
        )
        os.close(fd)
        try:
            shutil.copyfile(tmpdir / f"{name}.o", tmp_out)
            os.replace(tmp_out, out)
        except BaseException:
            try:
                os.unlink(tmp_out)
            except FileNotFoundError:
                pass
            raise
    return out


def compile_fixture(name: str, cache_dir: Path) -> tuple[Path, Path]:
    """Compile fixture ``name``; return ``(orig.o, patched.o)`` paths."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    orig, patched = (_compile_side(name, side, cache_dir) for side in SIDES)
    return orig, patched
