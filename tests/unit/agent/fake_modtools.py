"""Fake insmod and rmmod acting on a fake sysfs root, standard library
only (they run as programs in the CLI tests, so they must start fast).

insmod creates /sys/module/NAME and /sys/kernel/livepatch/NAME (enabled,
transition, replace, stack_order); an atomic-replace patch frees the other
patches' livepatch directories, as the kernel does once the transition
ends (their modules stay loaded). rmmod refuses a module whose patch is
still enabled and frees a disabled one.

    python fake_modtools.py insmod FILE.ko     (FAKE_SYSFS_ROOT names the root)
    python fake_modtools.py rmmod NAME
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


class FakeError(Exception):
    pass


def _facts(module: Path) -> tuple[str, bool]:
    """The .modinfo name and the metadata's replace flag, read from the
    bytes (the canonical JSON embedded by kbuilder has no spaces)."""
    blob = module.read_bytes()
    start = blob.index(b"name=") + 5
    name = blob[start:blob.index(b"\0", start)].decode()
    return name, b'"replace":true' in blob


def _log(root: Path, line: str, *, bump: bool = False) -> int:
    state = root / "fake-kernel.json"
    data = json.loads(state.read_text()) if state.exists() else {"order": 0, "log": []}
    if bump:
        data["order"] += 1
    data["log"].append(line)
    state.write_text(json.dumps(data))
    return int(data["order"])


def insmod(root: Path, module: Path, *, hang: bool = False) -> None:
    name, replace = _facts(module)
    mod_dir = root / "sys/module" / name
    if mod_dir.exists():
        raise FakeError(f"insmod: ERROR: could not insert module {module}: File exists")
    live = root / "sys/kernel/livepatch"
    order = _log(root, f"insmod {name}", bump=True)
    mod_dir.mkdir(parents=True)
    patch = live / name
    patch.mkdir()
    (patch / "enabled").write_text("1\n")
    (patch / "transition").write_text("1\n" if hang else "0\n")
    (patch / "replace").write_text("1\n" if replace else "0\n")
    (patch / "stack_order").write_text(f"{order}\n")
    if replace and not hang:
        for other in live.iterdir():
            if other.name != name:
                shutil.rmtree(other)


def rmmod(root: Path, name: str) -> None:
    mod_dir = root / "sys/module" / name
    if not mod_dir.exists():
        raise FakeError(f"rmmod: ERROR: Module {name} is not currently loaded")
    patch = root / "sys/kernel/livepatch" / name
    if patch.exists() and (patch / "enabled").read_text().strip() != "0":
        raise FakeError(f"rmmod: ERROR: Module {name} is in use")
    if patch.exists():
        shutil.rmtree(patch)                  # disabled: the kernel has freed it by now
    shutil.rmtree(mod_dir)
    _log(root, f"rmmod {name}")


def kernel_log(root: Path) -> list[str]:
    state = root / "fake-kernel.json"
    return list(json.loads(state.read_text())["log"]) if state.exists() else []


if __name__ == "__main__":
    try:
        if sys.argv[1] == "insmod":
            insmod(Path(os.environ["FAKE_SYSFS_ROOT"]), Path(sys.argv[2]))
        else:
            rmmod(Path(os.environ["FAKE_SYSFS_ROOT"]), sys.argv[2])
    except FakeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
