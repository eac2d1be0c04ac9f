"""Corrupt objects never escape as anything but ElfFormatError.

Small corpus objects are truncated or get a few bytes overwritten (some
flips aimed at the ELF header and the section header table, where the
structure lives). `parse_object` must either succeed or raise
`kbuilder.errors.ElfFormatError`; `kbuild inspect` on the same bytes must
exit 0 or 1 without an internal error. Derandomized: CI sees the same inputs
every run. A failure prints the mutation recipe (object, operations) that
reproduces it.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbuilder.elf import parse_object
from kbuilder.errors import ElfFormatError
from kbuilder.inspect import summarize

pytestmark = pytest.mark.conformance

SMALL_OBJECTS = [
    "x86_64/clang-unnamed.ORIG.o",
    "x86_64/plt32-relocations-issue-975.ORIG.o",
    "x86_64/import-ns.ORIG.o",
    "aarch64/cmdline-patch.ORIG.o",
]

_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

_BYTES: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def originals(corpus: Path) -> dict[str, bytes]:
    if not _BYTES:
        for name in SMALL_OBJECTS:
            data = (corpus / name).read_bytes()
            # The section header table ends the file: any proper prefix is incomplete.
            e_shoff, e_shnum = struct.unpack_from("<Q", data, 0x28)[0], struct.unpack_from("<H", data, 0x3C)[0]
            assert e_shoff + 64 * e_shnum == len(data), name
            _BYTES[name] = data
    return _BYTES


def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shnum = struct.unpack_from("<H", data, 0x3C)[0]
    return {"header": (0, 64), "shdrs": (e_shoff, min(len(data), e_shoff + 64 * e_shnum)),
            "anywhere": (0, len(data))}


# A recipe is (object name, [("flip", region, fraction, byte) ...]) or
# (object name, [("truncate", fraction)]); fractions place an offset inside
# the region, so recipes stay readable and valid for any object size.
_flip = st.tuples(st.just("flip"), st.sampled_from(["shdrs", "shdrs", "header", "anywhere"]),
                  st.floats(0, 1, exclude_max=True), st.integers(0, 255))
flips = st.tuples(st.sampled_from(SMALL_OBJECTS), st.lists(_flip, min_size=1, max_size=4))
truncations = st.tuples(st.sampled_from(SMALL_OBJECTS),
                        st.lists(st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
                                 min_size=1, max_size=1))


def apply_recipe(originals: dict[str, bytes], recipe: tuple[str, list[tuple[Any, ...]]]) -> bytes:
    name, ops = recipe
    data = bytearray(originals[name])
    regions = _regions(originals[name])
    for op in ops:
        if op[0] == "truncate":
            del data[int(op[1] * len(data)):]
        else:
            _, region, fraction, value = op
            lo, hi = regions[region]
            data[lo + int(fraction * (hi - lo))] = value
    return bytes(data)


def _parse_or_format_error(data: bytes) -> None:
    try:
        obj = parse_object(data, "fuzzed.o")
    except ElfFormatError as exc:
        assert str(exc).startswith("fuzzed.o: ")
        return
    summarize(obj)  # whatever parses must also be summarisable


@settings(max_examples=40, **_SETTINGS)
@given(recipe=truncations)
def test_truncated_objects(originals: dict[str, bytes], recipe: Any) -> None:
    data = apply_recipe(originals, recipe)
    with pytest.raises(ElfFormatError):
        parse_object(data, "fuzzed.o")  # every proper prefix of an object is incomplete


@settings(max_examples=70, **_SETTINGS)
@given(recipe=flips)
def test_flipped_bytes(originals: dict[str, bytes], recipe: Any) -> None:
    _parse_or_format_error(apply_recipe(originals, recipe))


@settings(max_examples=40, **_SETTINGS)
@given(recipe=st.one_of(flips, truncations))
def test_cli_inspect_on_corrupt_objects(originals: dict[str, bytes], recipe: Any) -> None:
    from click.testing import CliRunner

    from kbuilder.cli import main

    with tempfile.TemporaryDirectory(prefix="kb-fuzz-") as tmp:
        path = Path(tmp) / "fuzzed.o"
        path.write_bytes(apply_recipe(originals, recipe))
        result = CliRunner().invoke(main, ["inspect", "--json", str(path)], catch_exceptions=False)
    # The group always ends in sys.exit(); nothing else may escape.
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    if result.exit_code == 1:
        assert len(result.stderr.splitlines()) == 1 and str(path) in result.stderr
