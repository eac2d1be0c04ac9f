"""The host's filesystem in the test guest (kbuilder.kernel.hostfs): what the
guest script and QEMU get (no kernel needed), and one boot that runs the
host's venv Python in the guest."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from kbuilder.errors import InputError
from kbuilder.kernel import hostfs, testkernel, vm
from kbuilder.kernel.hostfs import HostCommand, MountHost


def test_steps_bring_their_helpers_and_the_share_once() -> None:
    guest = vm.make_guest([MountHost(writable=("/tmp/x y",)), HostCommand("true", name="a"),
                           HostCommand("false", name="b", must_pass=False), vm.Check("true", True)])
    assert guest.labels == ("mount-host", "a", "b", "check")
    assert guest.script.count("kb_mount_host() {") == 1 and guest.script.count("kb_in_host() {") == 1
    assert "kb_mount_host '/tmp/x y'; kb_result mount-host $? 0" in guest.script
    assert "kb_in_host false; kb_result b $? 1" in guest.script
    assert guest.qemu_args == hostfs.qemu_args()
    share = guest.qemu_args[guest.qemu_args.index("-fsdev") + 1]
    assert "readonly=on" in share and "path=/," in share
    # No network: QEMU's default card is switched off, and no step adds one.
    cmd = vm.qemu_command(Path("bzImage"), Path("initrd"), extra=guest.qemu_args)
    assert cmd[cmd.index("-nic") + 1] == "none"
    assert not any(arg in ("-netdev", "-net") for arg in cmd)


def test_guests_without_host_steps_get_no_share() -> None:
    guest = vm.make_guest([vm.Check("true", True)])
    assert guest.qemu_args == () and "kb_in_host" not in guest.script


def test_writable_directories_are_absolute_host_paths() -> None:
    with pytest.raises(InputError, match="absolute host path"):
        MountHost(writable=("relative",))
    with pytest.raises(InputError, match="absolute host path"):
        MountHost(writable=("/tmp/../etc",))


def _boot(guest: vm.Guest, console: str) -> vm.TestLoadResult:
    result = vm.BootResult(Path("log"), console, 0, False, 1.0)
    return vm.parse_result(guest, result)


def test_command_output_is_kept_with_its_step() -> None:
    guest = vm.make_guest([MountHost(), HostCommand("echo hi", name="a"), HostCommand("x", name="b")])
    console = ("KBUILDER: start\nKBUILDER: mount-host=0\nKBUILDER-OUT: hi\nKBUILDER: a=0\n"
               "KBUILDER-OUT: sh: x: not found\nKBUILDER: b=127\nKBUILDER: stopped=b\nKBUILDER: done\n")
    result = _boot(guest, console)
    assert result.outcome("a").output == ("hi",)
    assert result.outcome("b").output == ("sh: x: not found",)
    assert result.failure == "step 'b': the command failed (exit 127) but should pass: x"


def test_a_failed_mount_says_why() -> None:
    guest = vm.make_guest([MountHost(), HostCommand("true", name="a")])
    console = ("KBUILDER: start\nKBUILDER-ERR: mount: mounting hostfs on /host failed: No such device\n"
               "KBUILDER: mount-host=2\nKBUILDER: stopped=mount-host\nKBUILDER: done\n")
    failure = _boot(guest, console).failure
    assert failure.startswith("step 'mount-host': mounting the host's filesystem over 9p failed"), failure
    assert failure.endswith(": mount: mounting hostfs on /host failed: No such device"), failure


@pytest.mark.kernel
def test_host_python_runs_in_the_guest(tmp_path: Path) -> None:
    from helpers import test_kernel_or_skip

    kernel: testkernel.TestKernel = test_kernel_or_skip()
    rw = tmp_path / "rw"
    rw.mkdir()
    (tmp_path / "ro.txt").write_text("from the host\n")
    python = shlex.quote(sys.executable)
    steps: list[vm.Step] = [
        MountHost(writable=(str(rw),)),
        HostCommand(f"{python} -c 'import kbuilder, platform; print(\"release\", platform.release())'",
                    name="venv-python"),
        HostCommand(f"cat {tmp_path}/ro.txt", name="read"),
        HostCommand(f"touch {tmp_path}/new", name="share-is-read-only", must_pass=False),
        HostCommand(f"echo x > {rw}/new && cat {rw}/new", name="tmpfs-is-writable"),
        # The guest's own /proc and /sys, and no network device besides loopback.
        HostCommand(f'test "$(uname -r)" = {kernel.release} && test -d /sys/kernel/livepatch', name="own-kernel"),
        HostCommand('test "$(ls /sys/class/net)" = lo', name="no-network"),
    ]
    result = vm.run_steps(kernel.bzimage, steps, log=tmp_path / "console.log")
    assert result.ok, f"{result.failure} (log: {result.log})"
    assert result.outcome("venv-python").output == (f"release {kernel.release}",)
    assert result.outcome("read").output == ("from the host",)
    assert "Read-only file system" in "\n".join(result.outcome("share-is-read-only").output)
    assert not (tmp_path / "new").exists() and not (rw / "new").exists()
