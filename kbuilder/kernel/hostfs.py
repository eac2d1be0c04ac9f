"""The host's filesystem inside a test guest, read-only over 9p (what
virtme-ng does), so that host programs run in the booted test kernel by
their host paths: the project's venv Python, pytest's tmp_path, a
repository tree.

Two steps for kbuilder.kernel.vm.run_steps:

    MountHost(writable=("/tmp/pytest-of-root/.../guest",))
        mounts the host's `/` at /host (9p over virtio-pci, read-only),
        binds the guest's own /proc, /sys and /dev into it, and puts an
        empty tmpfs on each `writable` directory (each must exist on the
        host, typically empty: the tmpfs hides what is there). Nothing the
        guest does reaches the host's disk.
    HostCommand("python -m kbuilder agent ... update", name="update")
        runs a shell command chrooted into /host with a clean environment;
        its output is kept with its marker (vm.Outcome.output).

The share is QEMU's `-fsdev local,...,readonly=on` + `virtio-9p-pci`; the
guest has no network device. The test kernel's config fragment has what this
needs (kbuilder.kernel.config: VIRTIO_PCI, NET_9P_VIRTIO, 9P_FS, and INET,
without which 9P_FS silently stays off).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kbuilder.errors import InputError
from kbuilder.kernel.vm import Step

TAG = "hostfs"
ROOT = "/host"
# The environment of a command in the host's filesystem: nothing of the
# initramfs's, a PATH that finds the host's tools (Debian's insmod is in
# /usr/sbin), and no bytecode writes (the share is read-only; Python would
# only try and fail on every import).
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
       "PYTHONDONTWRITEBYTECODE=1")
# 9p's default 8 KiB messages make every read of a Python module or a .ko
# many round trips through TCG, so 256 KiB ones. cache=loose lets the guest
# keep what it read (a Python start in the guest takes about half as long:
# 1.4-1.7 s instead of 3.3-3.6 s for `python -m kbuilder agent --help`);
# the price is that a host file changed while the guest runs may be seen
# stale, so everything a guest reads is prepared before it boots.
MOUNT_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144,cache=loose"


def qemu_args(path: str = "/") -> tuple[str, ...]:
    """QEMU's read-only 9p share of the host directory `path`. multidevs=remap
    keeps inode numbers unique although `/` spans several host filesystems."""
    return ("-fsdev", f"local,id={TAG},path={path},security_model=none,readonly=on,multidevs=remap",
            "-device", f"virtio-9p-pci,fsdev={TAG},mount_tag={TAG}")


# Guest side. Status 2-5 of kb_mount_host say which part failed (MountHost.explain).
_MOUNT_HELPERS = rf"""
kb_mount_host() {{  # WRITABLE-DIR...
	mkdir -p {ROOT}
	kb_n=$(dmesg | wc -l)
	if ! mount -t 9p -o {MOUNT_OPTIONS},ro {TAG} {ROOT} 2>/tmp/kb.err; then
		kb_detail /tmp/kb.err $kb_n
		return 2
	fi
	for kb_m in proc sys dev; do
		mount --bind /$kb_m {ROOT}/$kb_m 2>/tmp/kb.err || {{ kb_detail /tmp/kb.err $kb_n; return 3; }}
	done
	for kb_w in "$@"; do
		[ -d "{ROOT}$kb_w" ] || {{ echo "KBUILDER-ERR: no directory $kb_w on the host"; return 5; }}
		mount -t tmpfs -o mode=0755 tmpfs "{ROOT}$kb_w" 2>/tmp/kb.err || {{ kb_detail /tmp/kb.err $kb_n; return 4; }}
	done
	: > /tmp/kb.hostfs
}}
"""

_COMMAND_HELPERS = rf"""
kb_in_host() {{  # SHELL-COMMAND
	[ -e /tmp/kb.hostfs ] || return 125
	env -i {' '.join(ENV)} chroot {ROOT} /bin/sh -c "$1" </dev/null 2>&1 | kb_output
}}
"""


@dataclass(frozen=True, slots=True)
class MountHost(Step):
    """Mount the host's filesystem at /host (read-only), with the guest's
    /proc, /sys, /dev, and a fresh tmpfs on each of the `writable` host
    directories (absolute host paths)."""

    writable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for path in self.writable:
            if not PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
                raise InputError(f"a writable guest directory must be an absolute host path: {path!r}")

    def label(self) -> str:
        return "mount-host"

    def command(self, image_path: dict[Path, str]) -> str:
        return "kb_mount_host" + "".join(" " + shlex.quote(path) for path in self.writable)

    def helpers(self) -> str:
        return _MOUNT_HELPERS

    def qemu_args(self) -> tuple[str, ...]:
        return qemu_args()

    def explain(self, status: int) -> str:
        if status == 2:
            return ("mounting the host's filesystem over 9p failed (does the kernel have CONFIG_9P_FS, "
                    "CONFIG_NET_9P_VIRTIO and CONFIG_VIRTIO_PCI?)")
        if status == 3:
            return f"binding the guest's /proc, /sys or /dev into {ROOT} failed"
        if status == 4:
            return "mounting a tmpfs on a writable directory failed"
        if status == 5:
            return "a writable directory does not exist on the host (create it before booting)"
        return f"exit status {status}"


@dataclass(frozen=True, slots=True)
class HostCommand(Step):
    """Run `shell` (sh -c) chrooted into the host's filesystem; it must
    succeed (`must_pass`) or fail. Its output (stdout and stderr) is kept
    with the step's marker: TestLoadResult.outcome(name).output."""

    shell: str
    name: str
    must_pass: bool = True

    def label(self) -> str:
        return self.name

    def command(self, image_path: dict[Path, str]) -> str:
        return f"kb_in_host {shlex.quote(self.shell)}"

    def helpers(self) -> str:
        return _COMMAND_HELPERS

    def qemu_args(self) -> tuple[str, ...]:
        return qemu_args()

    @property
    def success(self) -> bool:
        return self.must_pass

    def explain(self, status: int) -> str:
        if status == 125:
            return f"the host's filesystem is not mounted (run MountHost before): {self.shell}"
        if self.must_pass:
            return f"the command failed (exit {status}) but should pass: {self.shell}"
        return f"the command succeeded but should fail: {self.shell}"
