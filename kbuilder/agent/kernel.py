"""The agent's view of the running kernel, behind one small seam.

`Kernel` is what the agent needs: the running release, build id and
architecture, the loaded livepatches, and insmod / disable / rmmod / wait
for a transition. `SysfsKernel` reads them under a root directory (`/` on a
real machine; a fake tree in tests, or a guest's root) and runs the module
tools, so the same code runs on a host, in a booted test guest
(`python -m kbuilder agent --sysfs-root / ...`) and in unit tests with a
fake sysfs tree and a fake loader.

Paths under the root:

    proc/sys/kernel/osrelease     the release (uname -r)
    sys/kernel/notes              the kernel's ELF notes: NT_GNU_BUILD_ID is the vmlinux build id
    proc/sys/kernel/arch          the architecture (else uname -m of this process)
    sys/kernel/livepatch/NAME/    enabled, transition (and replace, stack_order on newer kernels)
    sys/module/NAME/              a loaded module
"""

from __future__ import annotations

import os
import shlex
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kbuilder.agent.errors import AgentError
from kbuilder.metadata.plan import LoadedPatch, read_loaded

NT_GNU_BUILD_ID = 3


def parse_build_id(notes: bytes) -> str | None:
    """The GNU build id (hex) among ELF notes as /sys/kernel/notes holds
    them (4-byte aligned namesz, descsz, type, name, desc), or None."""
    offset = 0
    while offset + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, offset)
        offset += 12
        name_end = offset + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > len(notes) or namesz > 1 << 16 or descsz > 1 << 16:
            return None
        name = notes[offset:offset + namesz].rstrip(b"\0")
        if name == b"GNU" and kind == NT_GNU_BUILD_ID and descsz:
            return notes[name_end:name_end + descsz].hex()
        offset = desc_end
    return None


def build_note(build_id: str) -> bytes:
    """An ELF note section holding `build_id` (for tests and fake roots)."""
    desc = bytes.fromhex(build_id)
    name = b"GNU\0"
    pad = b"\0" * ((4 - len(desc) % 4) % 4)
    return struct.pack("<III", len(name), len(desc), NT_GNU_BUILD_ID) + name + desc + pad


@dataclass(frozen=True, slots=True)
class KernelIdentity:
    release: str
    build_id: str | None
    arch: str

    def to_json(self) -> dict[str, str | None]:
        return {"kernel_release": self.release, "vmlinux_build_id": self.build_id, "arch": self.arch}

    def describe(self) -> str:
        return f"{self.release} {self.arch}, build id {self.build_id or 'unknown'}"


class Kernel:
    """The seam: everything the agent asks of the kernel."""

    def identity(self) -> KernelIdentity:
        raise NotImplementedError

    def livepatches(self) -> list[LoadedPatch]:
        raise NotImplementedError

    def module_loaded(self, name: str) -> bool:
        raise NotImplementedError

    def load(self, module: Path) -> None:
        raise NotImplementedError

    def disable(self, name: str) -> None:
        raise NotImplementedError

    def unload(self, name: str) -> None:
        raise NotImplementedError

    def wait_transition(self, name: str, timeout: float) -> bool:
        """True once `name` has no transition in progress (or is gone)."""
        raise NotImplementedError


class SysfsKernel(Kernel):
    def __init__(self, root: str | Path = "/", *, insmod: Sequence[str] | str = "insmod",
                 rmmod: Sequence[str] | str = "rmmod", sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, poll: float = 0.1) -> None:
        self.root = Path(root)
        self.insmod = shlex.split(insmod) if isinstance(insmod, str) else list(insmod)
        self.rmmod = shlex.split(rmmod) if isinstance(rmmod, str) else list(rmmod)
        self.sleep = sleep
        self.clock = clock
        self.poll = poll

    @property
    def livepatch_dir(self) -> Path:
        return self.root / "sys/kernel/livepatch"

    def _read(self, relpath: str) -> bytes | None:
        try:
            return (self.root / relpath).read_bytes()
        except OSError:
            return None

    def identity(self) -> KernelIdentity:
        release = self._read("proc/sys/kernel/osrelease")
        if release is None:
            raise AgentError(f"cannot read the kernel release from {self.root / 'proc/sys/kernel/osrelease'} "
                             "(is /proc mounted?)")
        notes = self._read("sys/kernel/notes")
        arch = self._read("proc/sys/kernel/arch")
        return KernelIdentity(release.decode("utf-8", "replace").strip(),
                              parse_build_id(notes) if notes is not None else None,
                              arch.decode().strip() if arch else os.uname().machine)

    def livepatches(self) -> list[LoadedPatch]:
        if not self.livepatch_dir.is_dir():
            return []
        return read_loaded(self.livepatch_dir)

    def module_loaded(self, name: str) -> bool:
        return (self.root / "sys/module" / name).is_dir()

    def _run(self, argv: list[str], what: str) -> None:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        except FileNotFoundError:
            raise AgentError(f"{argv[0]} not found (set insmod/rmmod in the agent configuration)") from None
        except subprocess.TimeoutExpired:
            raise AgentError(f"{what}: {argv[0]} did not finish in 300 s") from None
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise AgentError(f"{what} failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'}")

    def load(self, module: Path) -> None:
        self._run([*self.insmod, str(module)], f"insmod {module.name}")

    def disable(self, name: str) -> None:
        path = self.livepatch_dir / name / "enabled"
        try:
            path.write_text("0\n")
        except OSError as exc:
            raise AgentError(f"cannot disable livepatch {name}: {path}: {exc.strerror}") from None

    def unload(self, name: str) -> None:
        self._run([*self.rmmod, name], f"rmmod {name}")

    def wait_transition(self, name: str, timeout: float) -> bool:
        deadline = self.clock() + timeout
        flag = self.livepatch_dir / name / "transition"
        while True:
            try:
                busy = flag.read_text().strip() == "1"
            except OSError:
                return True          # the patch is gone: a disabled patch is freed after its transition
            if not busy:
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(self.poll)
