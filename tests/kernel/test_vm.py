"""Booting the test kernel under QEMU and testing livepatch modules in it
(kbuilder.kernel.vm, .initramfs).

Tests marked `kernel` build the test kernel on first use (cached) and boot
it under QEMU TCG (a few seconds each). The initramfs and log-parsing tests
need neither.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from kbuilder.errors import InputError
from kbuilder.kernel import initramfs, testkernel, vm

kernel = pytest.mark.kernel
PATCHED = "grep -q 'this has been live patched' /proc/cmdline"


@pytest.fixture(scope="session")
def built_kernel() -> testkernel.TestKernel:
    from helpers import test_kernel_or_skip

    return test_kernel_or_skip()


def _explain(result: vm.TestLoadResult) -> str:
    return f"{result.failure} (log: {result.log})"


# ---- in QEMU ----------------------------------------------------------------

@kernel
def test_kernel_boots(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    release = built_kernel.release
    steps = [vm.Check(f'test "$(uname -r)" = {release}', must_pass=True, name="release"),
             vm.Check("test -d /sys/kernel/livepatch", must_pass=True, name="livepatch-sysfs"),
             vm.Check("test $(grep -c ^processor /proc/cpuinfo) = 2", must_pass=True, name="two-cpus"),
             # Bytes that are not text reach the host as '?' (the console is decoded as text).
             vm.Check(r"printf 'kbt-\377-\033-\n'; exit 3", must_pass=False, name="binary-output")]
    result = vm.run_steps(built_kernel.bzimage, steps, log=tmp_path / "boot.log")
    assert result.ok, _explain(result)
    assert [o.status for o in result.outcomes] == [0, 0, 0, 3]
    assert "kbt-?-?-" in result.boot.output
    assert result.boot.has_marker("done") and not result.boot.timed_out


@kernel
def test_livepatch_sample_loads_patches_and_unloads(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    result = vm.test_load(built_kernel.bzimage, [built_kernel.sample_module], PATCHED, log=tmp_path / "sample.log")
    assert result.ok, _explain(result)
    assert [(o.label, o.status) for o in result.outcomes] == [
        ("before", 1), ("load:livepatch_sample", 0), ("transition:livepatch_sample", 0), ("after", 0),
        ("disable:livepatch_sample", 0), ("unload:livepatch_sample", 0), ("unloaded", 1)]
    assert result.problems == ()
    text = result.log.read_text()
    assert "livepatch: enabling patch 'livepatch_sample'" in text  # from the dmesg dump


@kernel
def test_a_hung_guest_is_killed_at_the_timeout(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    steps = [vm.Check("true", must_pass=True, name="first"), vm.Check("sleep 600", must_pass=True, name="hang")]
    result = vm.run_steps(built_kernel.bzimage, steps, timeout=15, log=tmp_path / "hang.log")
    assert result.boot.timed_out and result.boot.seconds < 30
    assert result.failure.startswith("step 'hang': no result marker: QEMU was killed after"), result.failure
    assert result.status("first") == 0


@kernel
def test_test_load_refuses_a_module_that_is_not_a_livepatch(built_kernel: testkernel.TestKernel,
                                                           tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a livepatch module"):
        vm.test_load(built_kernel.bzimage, [built_kernel.obj / "fs" / "binfmt_misc.ko"], "true",
                     log=tmp_path / "log")
    assert vm.is_livepatch(built_kernel.sample_module)
    assert vm.module_name(built_kernel.sample_module) == "livepatch_sample"


@kernel
def test_wrong_expectation_fails_the_before_step(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    result = vm.test_load(built_kernel.bzimage, [built_kernel.sample_module], "true", log=tmp_path / "wrong.log")
    assert not result.ok
    assert result.failure.startswith("step 'before': the check passed but should fail"), result.failure
    assert result.status("before") == 0
    assert result.outcomes[1].status is None  # the guest stopped there


@kernel
def test_insmod_failure_is_reported_with_the_guest_error(built_kernel: testkernel.TestKernel,
                                                         tmp_path: Path) -> None:
    module = built_kernel.obj / "fs" / "binfmt_misc.ko"
    # Loading a module twice: the second insmod fails ("File exists").
    result = vm.run_steps(built_kernel.bzimage, [vm.Load(module), vm.Load(module)], log=tmp_path / "twice.log")
    assert not result.ok
    # busybox insmod exits with the errno (EEXIST) and says why.
    assert result.failure == ("step 'load:binfmt_misc#2': insmod binfmt_misc.ko failed (exit 17): insmod: can't "
                              "insert '/kbuilder/modules/0/binfmt_misc.ko': File exists"), result.failure
    # ... which is what an expected load failure looks for.
    steps = [vm.Load(module), vm.Load(module, must_fail=True), vm.Unload("binfmt_misc"),
             vm.Check("grep -q binfmt_misc /proc/modules", must_pass=False, name="gone")]
    result = vm.run_steps(built_kernel.bzimage, steps, log=tmp_path / "refused.log")
    assert result.ok, _explain(result)


UNKNOWN_SYMBOL_MODULE = """\
#include <linux/module.h>
extern int kbuilder_test_no_such_symbol(void);
static int __init kbt_init(void) { return kbuilder_test_no_such_symbol(); }
module_init(kbt_init);
MODULE_LICENSE("GPL");
"""


@kernel
def test_unknown_symbol_is_reported(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    src = tmp_path / "mod"
    src.mkdir()
    (src / "kbt_unknown.c").write_text(UNKNOWN_SYMBOL_MODULE)
    (src / "Kbuild").write_text("obj-m := kbt_unknown.o\n")
    # modpost would refuse the undefined symbol; as a warning, the .ko is written.
    subprocess.run(["make", "-C", str(built_kernel.obj), f"M={src}", "KBUILD_MODPOST_WARN=1", "modules"],
                   check=True, capture_output=True)
    module = src / "kbt_unknown.ko"
    result = vm.run_steps(built_kernel.bzimage, [vm.Load(module)], log=tmp_path / "unknown.log")
    assert not result.ok
    assert result.failure.startswith("step 'load:kbt_unknown': insmod kbt_unknown.ko failed"), result.failure
    assert result.failure.endswith(": kbt_unknown: Unknown symbol kbuilder_test_no_such_symbol (err -2)"), \
        result.failure
    steps = [vm.Load(module, must_fail=True),
             vm.Check("grep -q kbt_unknown /proc/modules", must_pass=False, name="not-loaded")]
    assert vm.run_steps(built_kernel.bzimage, steps, log=tmp_path / "refused.log").ok


@kernel
def test_cli_testkernel_json(built_kernel: testkernel.TestKernel) -> None:
    import json

    from click.testing import CliRunner

    from kbuilder.cli.testkernel import testkernel as command

    result = CliRunner().invoke(command, ["--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["bzimage"] == str(built_kernel.bzimage)
    assert info["release"] == built_kernel.release
    assert info["source"] == str(built_kernel.source) and info["build_dir"] == str(built_kernel.obj)


@kernel
def test_cli_test_load(built_kernel: testkernel.TestKernel, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kbuilder.cli.testload import test_load as command

    args = ["--kernel", str(built_kernel.bzimage), "--module", str(built_kernel.sample_module)]
    ok = CliRunner().invoke(command, [*args, "--check", PATCHED, "--log", str(tmp_path / "ok.log")])
    assert ok.exit_code == 0, ok.output
    assert "test-load: passed" in ok.output
    bad = CliRunner().invoke(command, [*args, "--check", "false", "--log", str(tmp_path / "bad.log")])
    assert bad.exit_code == 1
    assert "step 'after'" in bad.output and str(tmp_path / "bad.log") in bad.output


# ---- the initramfs (no kernel needed) ---------------------------------------

def _guest(tmp_path: Path) -> vm.Guest:
    return vm.make_guest([vm.Check("true", must_pass=True, name="x"), vm.Unload("a_b")])


def test_initramfs_bytes_are_deterministic(tmp_path: Path) -> None:
    guest = _guest(tmp_path)
    first = vm.guest_initramfs(guest)
    assert first == vm.guest_initramfs(vm.make_guest(guest.steps))
    other = vm.guest_initramfs(vm.make_guest([vm.Check("false", must_pass=True, name="x")]))
    assert other != first
    out = initramfs.write_initramfs(tmp_path / "i.cpio.gz", "#!/bin/sh\n", {"/a": b"1"})
    assert out.read_bytes() == initramfs.build_initramfs("#!/bin/sh\n", {"/a": b"1"})


def test_cpio_layout() -> None:
    raw = initramfs.cpio_newc([initramfs.file("/x/y", b"hello", 0o755), initramfs.symlink("/l", "x/y")])
    assert raw.startswith(b"070701") and len(raw) % 4 == 0
    assert raw.endswith(b"TRAILER!!!\0" + b"\0" * (-(110 + 11) % 4))
    names = []
    pos = 0
    while True:
        head = raw[pos:pos + 110]
        fields = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        name = raw[pos + 110:pos + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            break
        names.append(name)
        pos += 110 + namesize + (-(110 + namesize) % 4)
        pos += size + (-size % 4)
    assert names == ["l", "x", "x/y"]  # sorted; the parent directory was added


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio is not installed")
def test_cpio_tool_reads_the_image(tmp_path: Path) -> None:
    data = vm.guest_initramfs(_guest(tmp_path))
    listing = subprocess.run(["cpio", "-itv"], input=gzip.decompress(data), capture_output=True, check=True)
    lines = listing.stdout.decode().splitlines()
    by_name = {line.split()[-1] if "->" not in line else line.split()[-3]: line for line in lines}
    assert by_name["init"].startswith("-rwxr-xr-x")
    assert by_name["bin/busybox"].startswith("-rwxr-xr-x")
    assert by_name["dev/console"].startswith("crw-------")
    assert by_name["kbuilder/steps.sh"].startswith("-rwxr-xr-x")


def test_missing_busybox_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="busybox-static"):
        initramfs.build_initramfs("#!/bin/sh\n", busybox=tmp_path / "busybox")


# ---- the guest script and the log parser (no kernel needed) -----------------

def test_labels_are_unique_and_checked(tmp_path: Path) -> None:
    guest = vm.make_guest([vm.Check("true", True, "c"), vm.Check("true", True, "c")])
    assert guest.labels == ("c", "c#2")
    assert "sh -c true </dev/null 2>&1 | kb_clean; kb_result c#2 $? 0" in guest.script
    with pytest.raises(InputError, match="step label"):
        vm.make_guest([vm.Check("true", True, "has space")])
    with pytest.raises(InputError, match="module not found"):
        vm.make_guest([vm.Load(tmp_path / "missing.ko")])


def _fake_boot(tmp_path: Path, lines: list[str], *, timed_out: bool = False) -> vm.BootResult:
    return vm.BootResult(tmp_path / "log", "\r\n".join(lines) + "\r\n", 124 if timed_out else 0, timed_out, 1.0)


def test_parse_ok_and_failures(tmp_path: Path) -> None:
    guest = vm.make_guest([vm.Check("c", False, "before"), vm.WaitTransition("p", 2), vm.Check("c", True, "after")])
    good = ["KBUILDER: start", "KBUILDER: before=1", "KBUILDER: transition:p=0", "KBUILDER: after=0",
            "KBUILDER: dmesg-begin", "some kernel line", "KBUILDER: dmesg-end", "KBUILDER: done"]
    assert vm.parse_result(guest, _fake_boot(tmp_path, good)).ok

    stuck = vm.parse_result(guest, _fake_boot(tmp_path, [*good[:2], "KBUILDER: transition:p=1",
                                                         "KBUILDER: stopped=transition:p", "KBUILDER: done"]))
    assert stuck.failure == ("step 'transition:p': stuck transition: /sys/kernel/livepatch/p/transition "
                             "still 1 after 2 s")

    oops = [*good[:5], "BUG: kernel NULL pointer dereference, address: 0000000000000000", *good[5:]]
    result = vm.parse_result(guest, _fake_boot(tmp_path, oops))
    assert result.failure == ("the kernel reported a problem: BUG: kernel NULL pointer dereference, "
                              "address: 0000000000000000")

    hung = vm.parse_result(guest, _fake_boot(tmp_path, good[:2], timed_out=True))
    assert hung.failure.startswith("step 'transition:p': no result marker: QEMU was killed after")

    no_done = vm.parse_result(guest, _fake_boot(tmp_path, good[:4]))
    assert no_done.failure == "no 'done' marker: the guest did not finish"

    panic = vm.parse_result(guest, _fake_boot(tmp_path, ["KBUILDER: start", "Kernel panic - not syncing: x"]))
    assert panic.failure == "step 'before': no result marker: the kernel reported: Kernel panic - not syncing: x"


def test_parse_reports_the_unknown_symbol_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ko = tmp_path / "lp.ko"
    ko.write_bytes(b"x")
    monkeypatch.setattr(vm, "modinfo", lambda module: {"name": "lp", "vermagic": "6.1.192 SMP mod_unload"})
    guest = vm.make_guest([vm.Load(ko)])
    lines = ["KBUILDER: start", "KBUILDER-ERR: insmod: can't insert '/kbuilder/modules/0/lp.ko': unknown symbol "
             "in module, or unknown parameter", "KBUILDER-ERR: lp: Unknown symbol cmdline_proc_show (err -2)",
             "KBUILDER: load:lp=1", "KBUILDER: stopped=load:lp", "KBUILDER: done"]
    result = vm.parse_result(guest, _fake_boot(tmp_path, lines))
    assert result.failure == "step 'load:lp': insmod lp.ko failed (exit 1): lp: Unknown symbol cmdline_proc_show " \
                             "(err -2)"
    assert result.outcomes[0].guest_lines[1].startswith("lp: Unknown symbol")


def test_parse_reports_the_rmmod_error(tmp_path: Path) -> None:
    guest = vm.make_guest([vm.Unload("lp")])
    lines = ["KBUILDER: start", "KBUILDER-ERR: rmmod: can't unload module 'lp': No such file or directory",
             "KBUILDER: unload:lp=2", "KBUILDER: stopped=unload:lp", "KBUILDER: done"]
    result = vm.parse_result(guest, _fake_boot(tmp_path, lines))
    assert result.failure == ("step 'unload:lp': rmmod lp failed (exit 2): rmmod: can't unload module 'lp': "
                              "No such file or directory")
