"""Kernel configurations: the small livepatch-capable test config, and a check
that any config can host livepatch modules.

The test config is `make tinyconfig` plus `LIVEPATCH_FRAGMENT`, settled with
`make olddefconfig`. tinyconfig on an x86 host is a 32-bit config with the
"guess" unwinder, so the fragment switches on 64BIT and ORC (the consistency
model needs reliable stack traces). Every line of the fragment is checked
afterwards: Kconfig silently drops a value whose dependencies are not met, and
a config that lost CONFIG_LIVEPATCH would only show up as a confusing failure
much later, in the VM.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from kbuilder.errors import InputError
from kbuilder.kernel import toolchain

# One `CONFIG_X=value` or `# CONFIG_X is not set` per line, as in a .config.
LIVEPATCH_FRAGMENT: tuple[str, ...] = (
    # A 64-bit kernel that boots on QEMU's serial console from an initramfs.
    "CONFIG_64BIT=y",
    "CONFIG_KERNEL_GZIP=y",
    "CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE=y",
    "CONFIG_SLUB=y",
    "CONFIG_PRINTK=y",
    "CONFIG_EARLY_PRINTK=y",
    "CONFIG_BUG=y",
    "CONFIG_MULTIUSER=y",
    "CONFIG_FUTEX=y",
    "CONFIG_EPOLL=y",
    "CONFIG_SIGNALFD=y",
    "CONFIG_TIMERFD=y",
    "CONFIG_EVENTFD=y",
    "CONFIG_SHMEM=y",
    "CONFIG_TMPFS=y",
    "CONFIG_TTY=y",
    "CONFIG_SERIAL_8250=y",
    "CONFIG_SERIAL_8250_CONSOLE=y",
    "CONFIG_BLK_DEV_INITRD=y",
    "CONFIG_RD_GZIP=y",
    "CONFIG_BINFMT_ELF=y",
    "CONFIG_BINFMT_SCRIPT=y",
    "CONFIG_PROC_FS=y",
    "CONFIG_SYSFS=y",
    "CONFIG_DEVTMPFS=y",
    "CONFIG_DEVTMPFS_MOUNT=y",
    # More than one CPU (QEMU enumerates the others only through ACPI; ACPI
    # also lets the guest power QEMU off), and PCI, as on every real machine.
    "CONFIG_SMP=y",
    "CONFIG_ACPI=y",
    "CONFIG_PCI=y",
    # Code patching the differ must understand: jump labels, retpolines and
    # return thunks (what distribution kernels are built with).
    "CONFIG_JUMP_LABEL=y",
    "CONFIG_CPU_MITIGATIONS=y",
    "CONFIG_RETPOLINE=y",
    "CONFIG_RETHUNK=y",
    # Loadable modules, unloadable, without symbol versions.
    "CONFIG_MODULES=y",
    "CONFIG_MODULE_UNLOAD=y",
    "CONFIG_MODULE_FORCE_UNLOAD=y",
    "# CONFIG_MODVERSIONS is not set",
    # Module signatures checked but not required: an unsigned module loads
    # (and taints the kernel E), a badly signed one does not; booted with
    # module.sig_enforce=1 the kernel takes only modules signed with the key
    # the build generated (certs/signing_key.pem in the build directory),
    # which is how the tests show that `kbuild build --sign-key` output is
    # accepted by an enforcing kernel.
    "CONFIG_MODULE_SIG=y",
    "# CONFIG_MODULE_SIG_FORCE is not set",
    "# CONFIG_MODULE_SIG_ALL is not set",
    "CONFIG_MODULE_SIG_SHA256=y",
    "# CONFIG_TRIM_UNUSED_KSYMS is not set",
    # A module for the tests to patch (module targets, not just vmlinux).
    "CONFIG_BINFMT_MISC=m",
    # Every symbol in kallsyms (KALLSYMS_ALL needs DEBUG_KERNEL): livepatch
    # resolves unexported symbols through it.
    "CONFIG_DEBUG_KERNEL=y",
    "CONFIG_KALLSYMS=y",
    "CONFIG_KALLSYMS_ALL=y",
    # ftrace, which livepatch redirects functions with.
    "CONFIG_FTRACE=y",
    "CONFIG_FUNCTION_TRACER=y",
    "CONFIG_DYNAMIC_FTRACE=y",
    "CONFIG_DYNAMIC_FTRACE_WITH_REGS=y",
    # Reliable stack traces for the consistency model.
    "# CONFIG_UNWINDER_GUESS is not set",
    "CONFIG_UNWINDER_ORC=y",
    "CONFIG_STACKTRACE=y",
    "CONFIG_LIVEPATCH=y",
    # The kernel's own livepatch sample: a known-good module to test with.
    "CONFIG_SAMPLES=y",
    "CONFIG_SAMPLE_LIVEPATCH=m",
    # No DWARF: faster builds, and nothing here needs it.
    "CONFIG_DEBUG_INFO_NONE=y",
    # The host's filesystem shared read-only over 9p on virtio-pci (what
    # virtme-ng does), so a guest can run the host's Python and the project
    # venv by their absolute paths (kbuilder.kernel.hostfs). 9P_FS needs INET,
    # which needs NET: the kernel gets a network stack but the guest no network
    # device (QEMU runs with -nic none). IPv6 adds nothing here but build time.
    "CONFIG_NET=y",
    "CONFIG_INET=y",
    "# CONFIG_IPV6 is not set",
    "CONFIG_NETWORK_FILESYSTEMS=y",
    "CONFIG_VIRTIO_MENU=y",
    "CONFIG_VIRTIO=y",
    "CONFIG_VIRTIO_PCI=y",
    "CONFIG_NET_9P=y",
    "CONFIG_NET_9P_VIRTIO=y",
    "CONFIG_9P_FS=y",
    # What host programs run in the guest expect of a kernel: flock (the
    # agent's and the repository's lock files) and POSIX timers.
    "CONFIG_FILE_LOCKING=y",
    "CONFIG_POSIX_TIMERS=y",
)

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_line(line: str) -> tuple[str, str | None] | None:
    """(`CONFIG_X`, value) for `CONFIG_X=value`, (`CONFIG_X`, None) for
    `# CONFIG_X is not set`, None for anything else."""
    line = line.strip()
    m = _SET.match(line)
    if m:
        return m.group(1), m.group(2)
    m = _UNSET.match(line)
    if m:
        return m.group(1), None
    return None


def read_config(path: Path) -> dict[str, str | None]:
    """Every option a .config mentions; unset ones map to None."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the kernel config: {exc.strerror}", path=str(path)) from None
    values: dict[str, str | None] = {}
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed:
            values[parsed[0]] = parsed[1]
    return values


def _fragment_values(fragment: Iterable[str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for line in fragment:
        parsed = parse_line(line)
        if parsed is None:
            raise InputError(f"not a config line: {line!r} (expected CONFIG_X=value or '# CONFIG_X is not set')")
        values[parsed[0]] = parsed[1]
    return values


def merge_fragment(config: Path, fragment: Sequence[str]) -> None:
    """Replace, in `config`, every option the fragment names by the
    fragment's line (what scripts/kconfig/merge_config.sh does)."""
    wanted = _fragment_values(fragment)
    kept = []
    for line in Path(config).read_text(encoding="utf-8", errors="replace").splitlines():
        parsed = parse_line(line)
        if parsed is None or parsed[0] not in wanted:
            kept.append(line)
    tmp = Path(str(config) + ".tmp")
    tmp.write_text("\n".join([*kept, *(line.strip() for line in fragment)]) + "\n")
    os.replace(tmp, config)


def verify_fragment(config: Path, fragment: Sequence[str]) -> None:
    """Raise InputError naming the first fragment option the config lost."""
    actual = read_config(config)
    for option, value in _fragment_values(fragment).items():
        got = actual.get(option)
        if value is None:
            if got is not None and got != "n":
                raise InputError(f"{option} should not be set but olddefconfig set it to {got} "
                                 "(another option selects it)", path=str(config))
        elif got != value:
            shown = "not set" if got is None else f"{option}={got}"
            raise InputError(f"{option}={value} did not stick (the result has {shown}): a dependency is "
                             "missing from the fragment or the option does not exist in this kernel",
                             path=str(config))


def write_config(src_dir: Path, obj_dir: Path, fragment: Sequence[str], *, log: Path) -> Path:
    """tinyconfig + `fragment` + olddefconfig in the `O=` directory `obj_dir`;
    returns its .config once every fragment line is verified to be in it."""
    src_dir = Path(src_dir).resolve()
    obj_dir = Path(obj_dir).resolve()
    obj_dir.mkdir(parents=True, exist_ok=True)
    make = ["make", "-C", str(src_dir), f"O={obj_dir}"]
    toolchain.run([*make, "tinyconfig"], log=log, what="make tinyconfig")
    config = obj_dir / ".config"
    merge_fragment(config, fragment)
    toolchain.run([*make, "olddefconfig"], log=log, what="make olddefconfig")
    verify_fragment(config, fragment)
    return config


# What a kernel needs to load livepatch modules, and why.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("CONFIG_LIVEPATCH", "livepatch modules cannot load"),
    ("CONFIG_MODULES", "no module can load"),
    ("CONFIG_MODULE_UNLOAD", "a livepatch module can never be removed"),
    ("CONFIG_KALLSYMS_ALL", "livepatch cannot resolve unexported data symbols"),
    ("CONFIG_FUNCTION_TRACER", "livepatch has no ftrace to redirect functions with"),
)
# What breaks livepatch module builds from source diffs (as in kpatch-build).
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("CONFIG_GCC_PLUGIN_LATENT_ENTROPY", "the plugin makes every build's code different"),
    ("CONFIG_GCC_PLUGIN_RANDSTRUCT", "structure layouts are randomised per build"),
    ("CONFIG_RANDSTRUCT", "structure layouts are randomised per build"),
    ("CONFIG_LTO_CLANG", "link-time optimisation hides changes across translation units"),
    ("CONFIG_LD_DEAD_CODE_DATA_ELIMINATION", "the linker drops sections a patch may need"),
)


def check_livepatch_config(config_path: Path) -> list[str]:
    """One line per problem that keeps this kernel from hosting livepatch
    modules built by kbuilder; [] when there is none."""
    values = read_config(config_path)

    def on(option: str) -> bool:
        return values.get(option) == "y"

    problems = [f"{option} is not set: {why}" for option, why in REQUIRED if not on(option)]
    if not (on("CONFIG_DYNAMIC_FTRACE_WITH_REGS") or on("CONFIG_DYNAMIC_FTRACE_WITH_ARGS")):
        problems.append("neither CONFIG_DYNAMIC_FTRACE_WITH_REGS nor CONFIG_DYNAMIC_FTRACE_WITH_ARGS is set: "
                        "livepatch cannot redirect a function's callers")
    problems += [f"{option} is set: {why}" for option, why in FORBIDDEN if values.get(option) in ("y", "m")]
    return problems
