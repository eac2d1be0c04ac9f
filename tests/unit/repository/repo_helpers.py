"""Helpers of the repository and agent tests: small synthetic livepatch
modules (a gcc -c object with a .modinfo and the embedded kbuilder
metadata, no kernel needed), keys, and a way to run `kbuild` with the repo
and agent commands whether or not kbuilder/cli/__init__.py registers them."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

BUILD_ID = "8d3f2a9c1b7e4f6a0c2d5e8f1a3b6c9d2e4f7a0b"
OTHER_BUILD_ID = "1111111111111111111111111111111111111111"
RELEASE = "6.1.0-test"
VERMAGIC = "6.1.0-test SMP preempt mod_unload "

# `python -c` program that runs kbuild with the repo and agent groups added.
KBUILD = ("import sys\n"
          "from kbuilder.cli import main\n"
          "from kbuilder.cli.repo import repo\n"
          "from kbuilder.cli.agent import agent\n"
          "for group in (repo, agent):\n"
          "    if group.name not in main.commands:\n"
          "        main.add_command(group)\n"
          "sys.argv[0] = 'kbuild'\n"
          "main()\n")


def kbuild_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", KBUILD, *args]


def kbuild(*args: str, env: dict[str, str] | None = None, check: bool = True,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(kbuild_argv(*args), capture_output=True, text=True, env=full_env, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kbuild {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_main() -> Any:
    """kbuilder.cli.main with the repo and agent groups, for CliRunner."""
    from kbuilder.cli import main
    from kbuilder.cli.agent import agent
    from kbuilder.cli.repo import repo

    for group in (repo, agent):
        if group.name not in main.commands:
            main.add_command(group)
    return main


_OBJECTS: dict[str, bytes] = {}


def _object(kernel_name: str, work: Path, *, livepatch: bool = True) -> bytes:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    lines = [f'name={kernel_name}', f'vermagic={VERMAGIC}', 'license=GPL']
    if livepatch:
        lines.append("livepatch=Y")
    source = "".join(
        f'static const char kb_modinfo_{i}[] __attribute__((section(".modinfo"), used, aligned(1))) = "{text}";\n'
        for i, text in enumerate(lines)) + "int kb_value = 3;\nint kb_fn(int x) { return x + kb_value; }\n"
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _OBJECTS:
        src = work / f"m-{key[:12]}.c"
        obj = src.with_suffix(".o")
        src.write_text(source)
        subprocess.run([gcc, "-c", "-O2", "-fno-pic", "-o", str(obj), str(src)], check=True)
        _OBJECTS[key] = obj.read_bytes()
    return _OBJECTS[key]


def make_module(work: Path, name: str = "livepatch-demo-1", *, level: int | None = 1, series: str | None = "demo",
                kind: str = "cumulative", severity: str | None = "HIGH", release: str = RELEASE,
                build_id: str = BUILD_ID, arch: str = "x86_64", requires: Sequence[tuple[str, int]] = (),
                position: int | None = None, fixes: Sequence[tuple[str, str]] | None = None,
                livepatch: bool = True) -> tuple[Path, Path, dict[str, Any]]:
    """Write NAME.ko and NAME.json into `work` (a new folder per build id
    and name); returns both paths and the full metadata document.

    `fixes` are (patch id, severity) pairs; by default one fix per level
    up to `level`, the top one of `severity`, the others LOW."""
    from kbuilder.elf import parse_object
    from kbuilder.metadata.model import (
        Fix,
        Function,
        Metadata,
        Mode,
        ModuleInfo,
        Provenance,
        Requirement,
        Target,
        finalize,
        pretty_json,
    )

    kernel = name.replace("-", "_")
    if fixes is None:
        top = level or position or 1
        fixes = [(f"p{n}", "LOW") for n in range(1, top)] + [(f"p{top}", severity or "LOW")]
    if kind == "cumulative":
        earlier = [f"{name.rsplit('-', 1)[0]}-{n}".replace("-", "_") for n in range(1, level or 1)]
        mode = Mode("cumulative", level=level, supersedes=earlier, series=series)
    else:
        mode = Mode("incremental", position=position or 1,
                    requires=[Requirement(m, s, None) for m, s in requires], series=series, patch=f"p{position}")
    meta = Metadata(
        target=Target(release, arch, build_id, "a" * 64, "GCC: (Debian 12.2.0-14) 12.2.0"),
        module=ModuleInfo(kernel, f"{name}.ko", VERMAGIC, kind == "cumulative"),
        mode=mode,
        functions=[Function("vmlinux", "cmdline_proc_show", 0, 40, 48)],
        fixes=[Fix("fix", sev, patch, description=f"fix {patch}") for patch, sev in fixes],
        states=[],
        callbacks={},
        provenance=Provenance("kbuilder 0.1.0", []),
    )
    folder = work / f"{build_id[:8]}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    blob, full = finalize(parse_object(_object(kernel, work, livepatch=livepatch), f"{name}.ko"), meta)
    ko = folder / f"{name}.ko"
    ko.write_bytes(blob)
    doc = folder / f"{name}.json"
    doc.write_text(pretty_json(full))
    return ko, doc, full


def keypair(work: Path, name: str = "repo.key") -> tuple[Path, Any]:
    from kbuilder.repository.keys import generate, write_keypair

    key = generate()
    write_keypair(key, work / name)
    return work / name, key


class Repo:
    """A repository in a temporary directory, with its key."""

    def __init__(self, work: Path) -> None:
        from kbuilder.repository import store

        self.work = work
        self.key_path, self.key = keypair(work)
        self.root = work / "repo"
        store.init(self.root, str(self.key_path))

    def module(self, name: str = "livepatch-demo-1", **kw: Any) -> tuple[Path, Path, dict[str, Any]]:
        return make_module(self.work / "build", name, **kw)

    def add(self, name: str = "livepatch-demo-1", channel: str = "dev", **kw: Any) -> Any:
        from kbuilder.repository import store

        ko, doc, _ = self.module(name, **kw)
        return store.add(self.root, ko, doc, channel=channel)
