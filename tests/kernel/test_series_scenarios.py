"""Cumulative and incremental patch series in the booted test kernel:
upgrade, downgrade, unload, stack order, and klp_state versions.

The example series (examples/series) makes each fix visible in one /proc
file, so every step can check exactly which fixes are live."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kbuilder.build import BuildOptions, build_livepatch
from kbuilder.build_series import build_series
from kbuilder.kernel import testkernel, vm
from kbuilder.kernel.vm import Check, Disable, Load, Unload, WaitTransition

pytestmark = pytest.mark.kernel

SERIES = Path(__file__).resolve().parents[2] / "examples" / "series" / "series.toml"
FIX1 = "grep -q fix1=nft /proc/cmdline"
FIX2 = "grep -q '^Fix2:' /proc/meminfo"
FIX3 = "grep -q fix3=ptrace /proc/version"


@pytest.fixture(scope="module")
def kernel() -> testkernel.TestKernel:
    from helpers import test_kernel_or_skip

    return test_kernel_or_skip()


@pytest.fixture(scope="module")
def base(kernel: testkernel.TestKernel, tmp_path_factory: pytest.TempPathFactory) -> BuildOptions:
    return BuildOptions(source=kernel.source, config=kernel.config_file, patches=(),
                        output=tmp_path_factory.mktemp("series"))


def _run(kernel: testkernel.TestKernel, steps: list[vm.Step], tmp_path: Path) -> None:
    result = vm.run_steps(kernel.bzimage, steps, log=tmp_path / "console.log", timeout=180)
    assert result.ok, f"{result.failure} (log: {result.log})"


def _load(module: Path) -> list[vm.Step]:
    return [Load(module), WaitTransition(vm.module_name(module))]


_NAMES = {FIX1: "fix1", FIX2: "fix2", FIX3: "fix3"}


def _checks(*pairs: tuple[str, bool]) -> list[vm.Step]:
    return [Check(cmd, must_pass=want, name=f"{'has' if want else 'lacks'}-{_NAMES[cmd]}") for cmd, want in pairs]


def test_cumulative_upgrade_downgrade_and_unload(kernel: testkernel.TestKernel, base: BuildOptions,
                                                 tmp_path: Path) -> None:
    level1 = build_series(SERIES, base, mode="cumulative", level=1, min_severity=None, progress=print)[0]
    level2 = build_series(SERIES, base, mode="cumulative", level=2, min_severity=None, progress=print)[0]
    assert level2.report["metadata"]["mode"]["kind"] == "cumulative"
    l1, l2 = level1.module, level2.module
    n1, n2 = vm.module_name(l1), vm.module_name(l2)
    steps: list[vm.Step] = [
        *_checks((FIX1, False), (FIX2, False)),
        *_load(l1), *_checks((FIX1, True), (FIX2, False)),
        # Upgrade: level 2 replaces level 1 atomically, which can then go.
        *_load(l2), *_checks((FIX1, True), (FIX2, True)),
        Check(f"test ! -d /sys/kernel/livepatch/{n1}", must_pass=True, name="level-1-replaced"),
        Unload(n1),
        # Downgrade: loading level 1 again replaces level 2: fix 2 is gone.
        *_load(l1), *_checks((FIX1, True), (FIX2, False)),
        Unload(n2),
        # Unpatch everything: the original behaviour is back.
        Disable(n1), Unload(n1), *_checks((FIX1, False), (FIX2, False)),
    ]
    _run(kernel, steps, tmp_path)


def test_incremental_stack_order(kernel: testkernel.TestKernel, base: BuildOptions, tmp_path: Path) -> None:
    built = build_series(SERIES, base, mode="incremental", level=3, min_severity=None, progress=print)
    one, two, three = (r.module for r in built)
    assert [r.report["metadata"]["mode"]["kind"] for r in built] == ["incremental"] * 3
    n1, n2, n3 = (vm.module_name(m) for m in (one, two, three))
    steps: list[vm.Step] = [
        *_load(one), *_checks((FIX1, True), (FIX2, False)),
        # 3 needs 2 below it: the module loader refuses it.
        Load(three, must_fail=True),
        *_load(two), *_load(three), *_checks((FIX1, True), (FIX2, True), (FIX3, True)),
        # 2 cannot be taken from under 3.
        Check(f"rmmod {n2}", must_pass=False, name="middle-unload-refused"),
        # The top of the stack goes first; then the next one.
        Disable(n3), Unload(n3), *_checks((FIX1, True), (FIX2, True), (FIX3, False)),
        Disable(n2), Unload(n2), Disable(n1), Unload(n1), *_checks((FIX1, False), (FIX2, False)),
    ]
    _run(kernel, steps, tmp_path)


def test_older_state_version_is_refused_by_the_kernel(kernel: testkernel.TestKernel, base: BuildOptions,
                                                       tmp_path: Path) -> None:
    patch = SERIES.parent / "0001-cmdline.patch"
    state = 0x6B6100FF
    newer = build_livepatch(dataclasses.replace(base, patches=(patch,), name="livepatch-state-v2",
                                                states=((state, 2),)), print).module
    older = build_livepatch(dataclasses.replace(base, patches=(patch,), name="livepatch-state-v1",
                                                states=((state, 1),)), print).module
    steps: list[vm.Step] = [
        *_load(newer), *_checks((FIX1, True),),
        # A cumulative patch must keep (at least) every system state version.
        Load(older, must_fail=True),
        Disable(vm.module_name(newer)), Unload(vm.module_name(newer)), *_checks((FIX1, False),),
    ]
    _run(kernel, steps, tmp_path)


def test_min_severity_leaves_out_lower_patches(base: BuildOptions, kernel: testkernel.TestKernel) -> None:
    (result,) = build_series(SERIES, base, mode="cumulative", level=None, min_severity="high", progress=print)
    left = {x["patch"]: x["reason"] for x in result.report["selection"]["left_out"]}
    assert set(left) == {"ptrace", "sched"}
    assert all("below the minimum high" in why for why in left.values())
    fixed = {fix["id"] for fix in result.report["metadata"]["fixes"] for fix in [fix] if "id" in fix}
    assert "CVE-2099-0003" not in str(result.report["metadata"]["fixes"])
    assert "CVE-2099-0001" in str(result.report["metadata"]["fixes"]) or fixed
