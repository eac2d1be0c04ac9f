"""A fake kernel for the agent tests: a sysfs/proc tree under a temporary
root (`make_root`) and `FakeKernel`, the agent's Kernel seam over it with
the fake module tools of fake_modtools.py called in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

from fake_modtools import FakeError, insmod, kernel_log, rmmod

from kbuilder.agent.errors import AgentError
from kbuilder.agent.kernel import SysfsKernel, build_note

__all__ = ["FakeKernel", "kernel_log", "make_root"]


def make_root(root: Path, *, release: str, build_id: str | None, arch: str = "x86_64") -> Path:
    (root / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "proc/sys/kernel/arch").write_text(arch + "\n")
    (root / "sys/kernel/livepatch").mkdir(parents=True, exist_ok=True)
    (root / "sys/module").mkdir(parents=True, exist_ok=True)
    if build_id is not None:
        # another note first, as in a real kernel (the Linux version note)
        other = b"\x06\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00Linux\x00\x00\x00\x00\x00\x00\x00"
        (root / "sys/kernel/notes").write_bytes(other + build_note(build_id))
    return root


class FakeKernel(SysfsKernel):
    def __init__(self, root: Path, *, hang: bool = False, refuse: str | None = None) -> None:
        self.now = 0.0

        def sleep(seconds: float) -> None:
            self.now += seconds

        super().__init__(root, sleep=sleep, clock=lambda: self.now)
        self.hang = hang
        self.refuse = refuse

    def load(self, module: Path) -> None:
        if self.refuse:
            raise AgentError(f"insmod {module.name} failed (exit 1): {self.refuse}")
        try:
            insmod(self.root, module, hang=self.hang)
        except FakeError as exc:
            raise AgentError(str(exc)) from None

    def disable(self, name: str) -> None:
        super().disable(name)                      # writes enabled=0 like the real thing
        shutil.rmtree(self.livepatch_dir / name)   # then the transition ends and the patch is freed

    def unload(self, name: str) -> None:
        try:
            rmmod(self.root, name)
        except FakeError as exc:
            raise AgentError(str(exc)) from None
