"""Boot a kernel under QEMU and run a scripted module test inside it.

The guest is a busybox initramfs (kbuilder.kernel.initramfs) whose /init runs
a list of steps (load a module, wait for its livepatch transition, run a
check that must pass or fail, disable, unload, ...) and prints one
machine-readable marker per step on the serial console:

    KBUILDER: start
    KBUILDER: before=1                       <- the label of a step, then its exit status
    KBUILDER-ERR: insmod: can't insert ...   <- detail lines for the next marker
    KBUILDER: load:livepatch_sample=0
    KBUILDER-OUT: ...                        <- output a step keeps (kbuilder.kernel.hostfs.HostCommand)
    KBUILDER: agent-update=0
    KBUILDER: stopped=after                  <- the guest stops at the first unexpected outcome
    KBUILDER: dmesg-begin ... KBUILDER: dmesg-end
    KBUILDER: done

The host parses the console log: a step passes when its marker is there with
the expected status, and the whole run passes when every step did, the guest
printed `done`, and the log (which includes the full dmesg, so warnings
below the console loglevel are seen too) has no Oops, BUG:, Call Trace or
panic.

QEMU runs with TCG: /dev/kvm on these machines is a nested virtualisation
device that hangs or crashes an unmodified guest. The serial console is read
through a pipe (a regular file as QEMU's output gets rewound and overwritten),
and the guest ends the run with `reboot -f`, which with `-no-reboot` makes
QEMU exit; panic=-1 turns a panic into the same exit.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kbuilder.errors import InputError, ToolchainError
from kbuilder.kernel import initramfs, toolchain

QEMU = "qemu-system-x86_64"
APPEND = "console=ttyS0 panic=-1 oops=panic quiet loglevel=4"
MARK = "KBUILDER: "
ERR = "KBUILDER-ERR: "
OUT = "KBUILDER-OUT: "
# What in a console log means the kernel went wrong (dmesg is dumped into the
# log at the end, so this also sees messages below the console loglevel).
PROBLEM = re.compile(r"Call Trace|Oops|BUG:|Kernel panic|WARNING: CPU")
_LABEL = re.compile(r"[A-Za-z0-9_.:@+-]+")
_MARKER = re.compile(r"KBUILDER: ([A-Za-z0-9_.:#@+-]+)=(-?\d+)\s*$")


# ---------------------------------------------------------------------------
# Booting
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BootResult:
    """One QEMU run: its console output (also written to `log`)."""

    log: Path
    output: str
    exit_code: int
    timed_out: bool
    seconds: float

    @property
    def lines(self) -> list[str]:
        return [line.rstrip("\r") for line in self.output.split("\n")]

    def has_marker(self, name: str) -> bool:
        return any(line.rstrip().endswith(MARK + name) for line in self.lines)

    def kernel_problems(self) -> list[str]:
        """Log lines that show an oops, a BUG, a warning's call trace or a panic."""
        return [line.strip() for line in self.lines if PROBLEM.search(line)]


def qemu_command(kernel: Path, initrd: Path, *, memory: str = "512M", cpus: int = 2, append: str = APPEND,
                 accel: str = "tcg", extra: Sequence[str] = ()) -> list[str]:
    # -nic none: QEMU would otherwise add a default network card; the guests
    # never have networking (what they need of the host comes from 9p).
    return [QEMU, "-accel", accel, "-m", memory, "-smp", str(cpus), "-nographic", "-no-reboot", "-nic", "none",
            *extra, "-kernel", str(kernel), "-initrd", str(initrd), "-append", append]


def boot(kernel: Path, initramfs_path: Path, *, timeout: float = 120, memory: str = "512M", cpus: int = 2,
         log: Path, append: str = APPEND, accel: str = "tcg", extra: Sequence[str] = ()) -> BootResult:
    """Boot `kernel` with `initramfs_path` until the guest reboots (QEMU then
    exits) or `timeout` seconds pass (QEMU is then killed). `extra` are more
    QEMU arguments (devices such as the host share of kbuilder.kernel.hostfs)."""
    for path, what in ((kernel, "kernel image"), (initramfs_path, "initramfs")):
        if not Path(path).is_file():
            raise InputError(f"{what} not found", path=str(path))
    if shutil.which(QEMU) is None:
        raise ToolchainError(f"{QEMU} not found (Debian package qemu-system-x86)")
    cmd = qemu_command(Path(kernel), Path(initramfs_path), memory=memory, cpus=cpus, append=append, accel=accel,
                       extra=extra)
    # coreutils timeout kills QEMU (TERM, then KILL) and still lets us read
    # what the console printed so far from the pipe.
    wrapped = ["timeout", "-k", "5", f"{timeout:g}", *cmd]
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    proc = toolchain.run(wrapped, capture=True, check=False, timeout=timeout + 30, what="qemu")
    seconds = time.monotonic() - start
    timed_out = proc.returncode in (124, 137)
    output = proc.stdout or ""
    with open(log, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n")
        fh.write(output.replace("\r\n", "\n"))
        if proc.stderr:
            fh.write(f"\n--- qemu stderr ---\n{proc.stderr}")
        fh.write(f"\n--- qemu exit {proc.returncode}" + (f", killed after {timeout:g} s" if timed_out else "")
                 + f", {seconds:.1f} s ---\n")
    if proc.returncode not in (0, 124, 137) and MARK + "start" not in output:
        detail = (proc.stderr or output).strip().splitlines()
        raise ToolchainError(f"qemu failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'} "
                             f"(log: {log})")
    return BootResult(log, output, proc.returncode, timed_out, seconds)


# ---------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------

def modinfo(module: Path) -> dict[str, str]:
    """The `.modinfo` key=value pairs of a .ko (the first value of a key)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(module, "rb") as fh:
            section = ELFFile(fh).get_section_by_name(".modinfo")
            data = section.data() if section is not None else b""
    except OSError as exc:
        raise InputError(f"cannot read the module: {exc.strerror}", path=str(module)) from None
    except ELFError as exc:
        raise InputError(f"not a kernel module: {exc}", path=str(module)) from None
    info: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep and key not in info:
            info[key] = value
    return info


def module_name(module: Path) -> str:
    """The name the kernel gives the module (its livepatch directory too)."""
    name = modinfo(module).get("name")
    return name or Path(module).name.removesuffix(".ko").replace("-", "_")


def is_livepatch(module: Path) -> bool:
    return modinfo(module).get("livepatch") == "Y"


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Expect:
    """A marker the guest prints: `label`=status; `success` says whether
    status 0 is the expected outcome."""

    label: str
    success: bool


class Step:
    """One action in the guest: `command` is a shell command (it may use the
    helpers in _HELPERS, and the shell functions its `helpers` returns) whose
    exit status is the step's result; `success` says whether 0 is the
    expected status. `qemu_args` are QEMU arguments the step needs (a device)."""

    def label(self) -> str:
        raise NotImplementedError

    def command(self, image_path: dict[Path, str]) -> str:
        raise NotImplementedError

    def helpers(self) -> str:
        return ""

    def qemu_args(self) -> tuple[str, ...]:
        return ()

    @property
    def success(self) -> bool:
        return True

    def modules(self) -> tuple[Path, ...]:
        return ()

    def explain(self, status: int) -> str:
        """One line saying what the unexpected `status` means."""
        return f"exit status {status}, expected {'0' if self.success else 'non-zero'}"


@dataclass(frozen=True, slots=True)
class Check(Step):
    """Run a shell command (`sh -c`); it must succeed (`must_pass`) or fail."""

    shell: str
    must_pass: bool
    name: str = "check"

    def label(self) -> str:
        return self.name

    def command(self, image_path: dict[Path, str]) -> str:
        return f"sh -c {shlex.quote(self.shell)} </dev/null 2>&1 | kb_clean"

    @property
    def success(self) -> bool:
        return self.must_pass

    def explain(self, status: int) -> str:
        if self.must_pass:
            return f"the check failed (exit {status}) but should pass: {self.shell}"
        return f"the check passed but should fail: {self.shell}"


@dataclass(frozen=True, slots=True)
class Load(Step):
    """insmod a module; with `must_fail`, insmod must refuse it."""

    module: Path
    must_fail: bool = False

    def label(self) -> str:
        return f"{'load-fails' if self.must_fail else 'load'}:{module_name(self.module)}"

    def command(self, image_path: dict[Path, str]) -> str:
        return f"kb_insmod {image_path[_key(self.module)]}"

    @property
    def success(self) -> bool:
        return not self.must_fail

    def modules(self) -> tuple[Path, ...]:
        return (_key(self.module),)

    def explain(self, status: int) -> str:
        if self.must_fail:
            return f"insmod {Path(self.module).name} succeeded but should have been refused"
        return f"insmod {Path(self.module).name} failed (exit {status})"


@dataclass(frozen=True, slots=True)
class WaitTransition(Step):
    """Wait until /sys/kernel/livepatch/NAME/transition reads 0."""

    name: str
    timeout: float = 30.0

    def label(self) -> str:
        return f"transition:{self.name}"

    def command(self, image_path: dict[Path, str]) -> str:
        return f"kb_wait_transition {self.name} {_tenths(self.timeout)}"

    def explain(self, status: int) -> str:
        if status == 2:
            return f"no /sys/kernel/livepatch/{self.name}: the module is not a livepatch or is named differently"
        return f"stuck transition: /sys/kernel/livepatch/{self.name}/transition still 1 after {self.timeout:g} s"


@dataclass(frozen=True, slots=True)
class Disable(Step):
    """echo 0 > /sys/kernel/livepatch/NAME/enabled, then wait until the
    unpatch transition ends (the directory disappears)."""

    name: str
    timeout: float = 30.0

    def label(self) -> str:
        return f"disable:{self.name}"

    def command(self, image_path: dict[Path, str]) -> str:
        return f"kb_disable {self.name} {_tenths(self.timeout)}"

    def explain(self, status: int) -> str:
        if status == 2:
            return f"no /sys/kernel/livepatch/{self.name} to disable"
        if status == 3:
            return f"writing 0 to /sys/kernel/livepatch/{self.name}/enabled failed"
        return (f"stuck transition while disabling {self.name}: /sys/kernel/livepatch/{self.name} still there "
                f"after {self.timeout:g} s")


@dataclass(frozen=True, slots=True)
class Unload(Step):
    """rmmod a module by name."""

    name: str

    def label(self) -> str:
        return f"unload:{self.name}"

    def command(self, image_path: dict[Path, str]) -> str:
        return f"kb_rmmod {self.name}"

    def explain(self, status: int) -> str:
        return f"rmmod {self.name} failed (exit {status})"


def _key(module: Path) -> Path:
    return Path(module).resolve()


def _tenths(seconds: float) -> int:
    return max(1, round(seconds * 10))


def load_livepatch(module: Path, *, transition_timeout: float = 30.0) -> list[Step]:
    """Load a livepatch module and wait until its transition is complete."""
    return [Load(Path(module)), WaitTransition(module_name(module), transition_timeout)]


def unload_livepatch(module: Path, *, transition_timeout: float = 30.0) -> list[Step]:
    """Disable a livepatch, wait for the unpatch transition, then rmmod it."""
    name = module_name(module)
    return [Disable(name, transition_timeout), Unload(name)]


def load_test_steps(modules: Sequence[Path], check: str, *, transition_timeout: float = 30.0) -> list[Step]:
    """The `test_load` sequence: check fails; load each livepatch and wait
    for its transition; check passes; disable and unload them in reverse
    order; check fails again."""
    steps: list[Step] = [Check(check, must_pass=False, name="before")]
    for module in modules:
        steps += load_livepatch(module, transition_timeout=transition_timeout)
    steps.append(Check(check, must_pass=True, name="after"))
    for module in reversed(modules):
        steps += unload_livepatch(module, transition_timeout=transition_timeout)
    steps.append(Check(check, must_pass=False, name="unloaded"))
    return steps


# The guest side. kb_result prints a step's marker and stops the run at the
# first unexpected outcome (what follows would only be noise); detail lines
# for a failed insmod/rmmod (its own message and the new kernel messages) are
# printed before the marker, prefixed with KBUILDER-ERR.
# Check output and kernel messages are passed through kb_clean, so the
# console carries nothing but ASCII text.
_HELPERS = r"""
set -o pipefail
kb_clean() {  # printable ASCII only: the host decodes the console as text
	tr -c '\11\12\15\40-\176' '?'
}
kb_output() {  # a step's output, marked so that the host keeps it with the step
	kb_clean | sed 's/^/KBUILDER-OUT: /'
}
kb_result() {  # LABEL STATUS WANT(0: success, 1: failure)
	echo "KBUILDER: $1=$2"
	if [ "$3" = 0 ] && [ "$2" != 0 ]; then echo "KBUILDER: stopped=$1"; exit 1; fi
	if [ "$3" = 1 ] && [ "$2" = 0 ]; then echo "KBUILDER: stopped=$1"; exit 1; fi
	return 0
}
kb_detail() {  # FILE DMESG-LINES-BEFORE
	sed 's/^/KBUILDER-ERR: /' "$1" | kb_clean
	dmesg | tail -n +$(($2 + 1)) | sed 's/^/KBUILDER-ERR: /' | kb_clean
}
kb_insmod() {
	kb_n=$(dmesg | wc -l)
	insmod "$1" 2>/tmp/kb.err
	kb_rc=$?
	[ $kb_rc = 0 ] || kb_detail /tmp/kb.err $kb_n
	return $kb_rc
}
kb_rmmod() {
	kb_n=$(dmesg | wc -l)
	rmmod "$1" 2>/tmp/kb.err
	kb_rc=$?
	[ $kb_rc = 0 ] || kb_detail /tmp/kb.err $kb_n
	return $kb_rc
}
kb_wait_transition() {  # NAME TENTHS
	kb_d=/sys/kernel/livepatch/$1
	[ -d $kb_d ] || return 2
	kb_i=0
	while [ "$(cat $kb_d/transition 2>/dev/null)" != 0 ]; do
		kb_i=$((kb_i + 1))
		[ $kb_i -le $2 ] || return 1
		sleep 0.1
	done
	return 0
}
kb_disable() {  # NAME TENTHS
	kb_d=/sys/kernel/livepatch/$1
	[ -d $kb_d ] || return 2
	echo 0 > $kb_d/enabled || return 3
	kb_i=0
	while [ -d $kb_d ]; do
		kb_i=$((kb_i + 1))
		[ $kb_i -le $2 ] || return 1
		sleep 0.1
	done
	return 0
}
"""

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "KBUILDER: start"
sh /kbuilder/steps.sh
echo "KBUILDER: dmesg-begin"
dmesg | tr -c '\11\12\15\40-\176' '?'
echo "KBUILDER: dmesg-end"
echo "KBUILDER: done"
reboot -f
sleep 60
"""


@dataclass(frozen=True, slots=True)
class Guest:
    """What the initramfs runs: labelled steps and the files they need."""

    labels: tuple[str, ...]
    steps: tuple[Step, ...]
    init: str
    script: str
    files: dict[str, Path] = field(default_factory=dict)
    qemu_args: tuple[str, ...] = ()


def make_guest(steps: Iterable[Step]) -> Guest:
    steps = tuple(steps)
    if not steps:
        raise InputError("no steps to run in the guest")
    image_path: dict[Path, str] = {}
    files: dict[str, Path] = {}
    for step in steps:
        for module in step.modules():
            if module not in image_path:
                if not module.is_file():
                    raise InputError("module not found", path=str(module))
                if "vermagic" not in modinfo(module):
                    raise InputError("not a kernel module (no vermagic in .modinfo)", path=str(module))
                target = f"/kbuilder/modules/{len(image_path)}/{module.name}"
                image_path[module] = target
                files[target] = module
    labels: list[str] = []
    seen: dict[str, int] = {}
    body = []
    # Each kind of step brings its helpers and devices once, in first-use order.
    helpers = list(dict.fromkeys(h for h in (step.helpers() for step in steps) if h))
    qemu_args = list(dict.fromkeys(a for a in (step.qemu_args() for step in steps) if a))
    for step in steps:
        base = step.label()
        if not _LABEL.fullmatch(base):
            raise InputError(f"step label {base!r}: use letters, digits and _.:@+- only")
        seen[base] = seen.get(base, 0) + 1
        label = base if seen[base] == 1 else f"{base}#{seen[base]}"
        labels.append(label)
        body.append(f"{step.command(image_path)}; kb_result {label} $? {0 if step.success else 1}")
    script = "#!/bin/sh\n" + _HELPERS + "".join(helpers) + "\n" + "\n".join(body) + "\n"
    return Guest(tuple(labels), steps, _INIT, script, files, tuple(a for args in qemu_args for a in args))


def guest_initramfs(guest: Guest) -> bytes:
    files: dict[str, bytes | Path] = {"/kbuilder/steps.sh": guest.script.encode(), **guest.files}
    return initramfs.build_initramfs(guest.init, files, executables=["/kbuilder/steps.sh"])


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outcome:
    """One step as the guest reported it; `status` None: no marker."""

    label: str
    expected_success: bool
    status: int | None
    ok: bool
    detail: str = ""          # why it is not ok (one line), "" when ok
    guest_lines: tuple[str, ...] = ()   # KBUILDER-ERR lines printed with it
    output: tuple[str, ...] = ()        # KBUILDER-OUT lines: what a step that keeps its output printed


@dataclass(frozen=True, slots=True)
class TestLoadResult:
    __test__ = False  # not a pytest test class

    ok: bool
    failure: str              # one line naming the step that failed, "" when ok
    outcomes: tuple[Outcome, ...]
    problems: tuple[str, ...]  # kernel problem lines found in the log
    boot: BootResult

    @property
    def log(self) -> Path:
        return self.boot.log

    @property
    def seconds(self) -> float:
        return self.boot.seconds

    def outcome(self, label: str) -> Outcome:
        for outcome in self.outcomes:
            if outcome.label == label:
                return outcome
        raise KeyError(label)

    def status(self, label: str) -> int | None:
        return self.outcome(label).status


def _guest_error(lines: Sequence[str], module_hint: str) -> str:
    """The most telling guest line about a failed insmod/rmmod."""
    kernel = [ln for ln in lines if not ln.startswith(("insmod:", "rmmod:"))]
    for pattern in ("Unknown symbol", "disagrees about version", "invalid module format", "livepatch",
                    module_hint):
        for line in kernel:
            if pattern and pattern in line:
                return line
    own = [ln for ln in lines if ln.startswith(("insmod:", "rmmod:"))]
    return (own or kernel or [""])[0]


def parse_result(guest: Guest, boot_result: BootResult) -> TestLoadResult:
    statuses: dict[str, int] = {}
    details: dict[str, tuple[str, ...]] = {}
    outputs: dict[str, tuple[str, ...]] = {}
    pending: list[str] = []
    printed: list[str] = []
    in_dmesg = False
    for raw in boot_result.lines:
        line = raw.strip()
        if line.endswith(MARK + "dmesg-begin"):
            in_dmesg = True
        elif line.endswith(MARK + "dmesg-end"):
            in_dmesg = False
        if in_dmesg:
            continue
        if ERR in line:
            pending.append(line.split(ERR, 1)[1].strip())
            continue
        if OUT in line:
            printed.append(line.split(OUT, 1)[1].rstrip())
            continue
        m = _MARKER.search(line)
        if m and m.group(1) not in statuses:
            statuses[m.group(1)] = int(m.group(2))
            details[m.group(1)] = tuple(pending)
            outputs[m.group(1)] = tuple(printed)
            pending = []
            printed = []
    problems = tuple(boot_result.kernel_problems())
    outcomes = []
    running = _next_label(guest, statuses)
    for label, step in zip(guest.labels, guest.steps):
        status = statuses.get(label)
        lines = details.get(label, ())
        if status is None:
            outcomes.append(Outcome(label, step.success, None, False, "no result marker", lines,
                                    tuple(printed) if label == running else ()))
            continue
        ok = (status == 0) == step.success
        detail = ""
        if not ok:
            detail = step.explain(status)
            hint = (module_name(step.module) if isinstance(step, Load) and not step.must_fail
                    else step.name if isinstance(step, Unload) else None)
            # Other steps print detail lines only about their own failure (a mount): the first says it.
            err = _guest_error(lines, hint) if hint is not None else (lines[0] if lines else "")
            if err:
                detail += f": {err}"
        outcomes.append(Outcome(label, step.success, status, ok, detail, lines, outputs.get(label, ())))
    failure = _first_failure(outcomes, problems, boot_result)
    return TestLoadResult(not failure, failure, tuple(outcomes), problems, boot_result)


def _next_label(guest: Guest, statuses: dict[str, int]) -> str | None:
    """The first step without a marker: the one the guest was running when it stopped."""
    return next((label for label in guest.labels if label not in statuses), None)


def _first_failure(outcomes: Sequence[Outcome], problems: Sequence[str], boot_result: BootResult) -> str:
    also = f"; the kernel reported: {problems[0]}" if problems else ""
    for outcome in outcomes:
        if outcome.ok:
            continue
        if outcome.status is not None:
            return f"step '{outcome.label}': {outcome.detail}{also}"
        if boot_result.timed_out:
            why = f"QEMU was killed after {boot_result.seconds:.0f} s (timeout)"
        elif problems:
            why = f"the kernel reported: {problems[0]}"
            also = ""
        elif not boot_result.has_marker("start"):
            why = "the guest never started /init"
        else:
            why = "the guest stopped before it"
        return f"step '{outcome.label}': no result marker: {why}{also}"
    if problems:
        return f"the kernel reported a problem: {problems[0]}"
    if not boot_result.has_marker("done"):
        why = "QEMU was killed (timeout)" if boot_result.timed_out else "the guest did not finish"
        return f"no 'done' marker: {why}"
    return ""


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

def run_steps(kernel: Path, steps: Iterable[Step], *, timeout: float = 120, log: Path, memory: str = "512M",
              cpus: int = 2, initrd: Path | None = None, append: str = APPEND) -> TestLoadResult:
    """Boot once and run `steps` in order; the initramfs is written next to
    the log (`LOG.initramfs.cpio.gz`) unless `initrd` names another path.
    `append` is the kernel command line."""
    guest = make_guest(steps)
    log = Path(log)
    initrd = Path(initrd) if initrd is not None else log.with_name(log.name + ".initramfs.cpio.gz")
    initrd.parent.mkdir(parents=True, exist_ok=True)
    tmp = initrd.with_name(initrd.name + ".tmp")
    tmp.write_bytes(guest_initramfs(guest))
    tmp.replace(initrd)
    result = boot(kernel, initrd, timeout=timeout, memory=memory, cpus=cpus, log=log, extra=guest.qemu_args,
                  append=append)
    return parse_result(guest, result)


def test_load(kernel: Path, modules: Sequence[Path], check: str, *, timeout: float = 120, log: Path,
              transition_timeout: float = 30.0) -> TestLoadResult:
    """In one boot: `check` fails; the modules load (in order) and their
    transitions complete; `check` passes; they are disabled and unloaded
    (in reverse order); `check` fails again."""
    if not modules:
        raise InputError("test_load needs at least one module")
    for module in modules:
        if "vermagic" in (info := modinfo(Path(module))) and info.get("livepatch") != "Y":
            raise InputError("not a livepatch module (its .modinfo has no livepatch=Y)", path=str(module))
    steps = load_test_steps([Path(m) for m in modules], check, transition_timeout=transition_timeout)
    return run_steps(kernel, steps, timeout=timeout, log=log)


test_load.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function
