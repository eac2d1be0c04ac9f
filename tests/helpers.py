"""Plain helpers shared by test modules and conftest (importable: tests/ is on sys.path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def kbuild_script() -> Path:
    """The installed `kbuild` console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "kbuild"
    if candidate.is_file():
        return candidate
    found = shutil.which("kbuild")
    if found is None:
        pytest.fail("the kbuild console script is not installed (pip install -e .)", pytrace=False)
    return Path(found)


def test_kernel_or_skip():  # type: ignore[no-untyped-def]
    """The cached test kernel (built on first use), or a visible skip when
    this machine lacks its Debian packages."""
    import os

    from kbuilder.kernel import testkernel, vm
    from kbuilder.kernel.cache import cache_root

    if not testkernel.TARBALL.is_file():
        pytest.skip(f"{testkernel.TARBALL} is missing (Debian package linux-source-6.1)")
    if shutil.which(vm.QEMU) is None:
        pytest.skip(f"{vm.QEMU} is missing (Debian package qemu-system-x86)")
    return testkernel.prepare_test_kernel(jobs=os.cpu_count() or 1, cache=cache_root())


test_kernel_or_skip.__test__ = False  # type: ignore[attr-defined]
