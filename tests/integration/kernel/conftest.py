"""Fixtures of the livepatch integration suite (tests marked `kernel`).

* `test_kernel`: the test kernel (kbuilder.kernel.testkernel), built once
  and cached under KBUILDER_CACHE (else ~/.cache/kbuilder); skips the suite
  when the kernel tarball or QEMU is missing.
* `module_builder`: builds each set of patches once per session.
* `case_logs`: where the guests' console logs go.

The cases come from cases.toml (see livepatch_cases.py); the per-case build
and boot times are printed at the end of the run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kbuilder.kernel import testkernel

# livepatch_cases.py sits next to this file (also under --import-mode=importlib).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from livepatch_cases import TIMINGS, ModuleBuilder


@pytest.fixture(scope="session")
def test_kernel() -> testkernel.TestKernel:
    from helpers import test_kernel_or_skip

    return test_kernel_or_skip()


@pytest.fixture(scope="session")
def module_builder(test_kernel: testkernel.TestKernel, tmp_path_factory: pytest.TempPathFactory) -> ModuleBuilder:
    out = tmp_path_factory.mktemp("kbt-modules")
    return ModuleBuilder(test_kernel.source, test_kernel.config_file, out, os.cpu_count() or 1)


@pytest.fixture(scope="session")
def case_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kbt-logs")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    tr = terminalreporter
    tr.section("livepatch cases: seconds")
    tr.write_line(f"{'module / case':40} {'build':>7} {'boot':>7}")
    for name, t in TIMINGS.items():
        build = f"{t['build']:.1f}" if "build" in t else "-"
        boot = f"{t['boot']:.1f}" if "boot" in t else "-"
        tr.write_line(f"{name:40} {build:>7} {boot:>7}")
    total_build = sum(t.get("build", 0.0) for t in TIMINGS.values())
    total_boot = sum(t.get("boot", 0.0) for t in TIMINGS.values())
    tr.write_line(f"{'total':40} {total_build:7.1f} {total_boot:7.1f}")
