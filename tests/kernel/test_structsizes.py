"""Special-section entry sizes measured in the test kernel's build tree."""

from __future__ import annotations

import os

import pytest

from kbuilder.errors import InputError
from kbuilder.kernel import testkernel
from kbuilder.kernel.cache import cache_root
from kbuilder.kernel.structsizes import probe_source, struct_sizes

pytestmark = pytest.mark.kernel


def test_sizes_of_the_test_kernel() -> None:
    if not testkernel.TARBALL.is_file():
        pytest.skip(f"{testkernel.TARBALL} is missing (Debian package linux-source-6.1)")
    kernel = testkernel.prepare_test_kernel(jobs=os.cpu_count() or 1, cache=cache_root())
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
