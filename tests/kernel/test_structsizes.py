"""Special-section entry sizes measured in the test kernel's build tree."""

from __future__ import annotations


import pytest

from kbuilder.errors import InputError
from kbuilder.kernel.structsizes import probe_source, struct_sizes

pytestmark = pytest.mark.kernel


def test_sizes_of_the_test_kernel() -> None:
    from helpers import test_kernel_or_skip

    kernel = test_kernel_or_skip()
    sizes = struct_sizes(kernel.build.obj)
    # Linux 6.1 x86_64 with this config: relative jump entries, verbose BUG entries.
    assert sizes["JUMP_STRUCT_SIZE"] == 16
    assert sizes["BUG_STRUCT_SIZE"] == 12
    assert sizes["EX_STRUCT_SIZE"] == 12
    assert sizes["ALT_STRUCT_SIZE"] == 12
    assert sizes["ORC_STRUCT_SIZE"] == 6
    assert struct_sizes(kernel.build.obj) == sizes  # cached


def test_probe_is_guarded_by_config() -> None:
    source = probe_source()
    assert "#ifdef CONFIG_JUMP_LABEL" in source and "sizeof(struct jump_entry)" in source


def test_not_a_build_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="no .config"):
        struct_sizes(tmp_path)
