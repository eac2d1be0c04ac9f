"""Byte-identical pairs (most of a batch over two build trees) are "no
change" without the full diff; an object with a patch author's sections is
still diffed in full."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kbuilder.diff import DiffOptions, diff_files

PLAIN = "int counter;\nint bump(void) { return ++counter; }\n"
WITH_CALLBACK = PLAIN + """
struct klp_object;
static int pre(struct klp_object *obj) { return 0; }
static int (*cb)(struct klp_object *) __attribute__((used, section(".klp.callbacks.pre_patch"))) = pre;
"""


def test_identical_files_are_no_change(compile_units: Callable[..., Path], tmp_path: Path) -> None:
    obj = compile_units("identical", {"plain.c": PLAIN}) / "plain.o"
    copy = tmp_path / "plain.o"
    copy.write_bytes(obj.read_bytes())
    result = diff_files(obj, copy, DiffOptions())
    assert result.status == "no-change" and result.output is None
    assert result.source == "plain.c" and result.arch == "x86_64" and "identical" in result.notes


def test_identical_files_with_patch_sections_get_the_full_diff(compile_units: Callable[..., Path]) -> None:
    obj = compile_units("identical-cb", {"cb.c": WITH_CALLBACK}) / "cb.o"
    result = diff_files(obj, obj, DiffOptions())
    assert "identical" not in result.notes and result.pair is not None
