"""The agent in the booted test kernel, reading a signed repository through
file:// from the host's filesystem (shared read-only over 9p; the guest has
no network device).

On the host: cumulative levels 1 and 2 of examples/series are built and put
into a repository (channels dev, prod; the agent follows prod). Level 1 is
promoted to prod; level 2 is added to dev only, and the tree is copied as it
is then ("before"); then level 2 is promoted to prod in the repository
itself ("after"). A second repository, signed by the same key, holds level 1
relabelled for another build of the same kernel release.

In the guest, in one boot, the directory the agent's URL names is a symlink
that the test points at "before" first and at "after" later: what an agent
sees when the publisher runs `kbuild repo promote` on the tree it serves.
The agent runs as an operator or a timer would
(`python -m kbuilder agent --config FILE --sysfs-root / --state-dir DIR ...`,
with the host's venv Python), and every step is checked by its effect on
/proc (examples/series: fix 1 shows in /proc/cmdline, fix 2 in
/proc/meminfo) and on /sys/kernel/livepatch, and by what the agent printed.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbuilder.build import BuildOptions
from kbuilder.build_series import build_series
from kbuilder.kernel import hostfs, testkernel, vm
from kbuilder.kernel.hostfs import HostCommand, MountHost
from kbuilder.kernel.vm import Check

pytestmark = pytest.mark.kernel

SERIES = Path(__file__).resolve().parents[2] / "examples" / "series" / "series.toml"
FIX1 = "grep -q fix1=nft /proc/cmdline"
FIX2 = "grep -q '^Fix2:' /proc/meminfo"
OTHER_BUILD_ID = "deadbeef" * 5


def _kbuild(*args: str) -> str:
    from helpers import kbuild_script

    proc = subprocess.run([str(kbuild_script()), *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"kbuild {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout


def _relabel(module: Path, build_id: str, folder: Path) -> tuple[Path, Path]:
    """The module with its metadata (embedded and NAME.json) saying it was
    built for the kernel build `build_id`: what a build against another
    build of the same release would carry. The agent matches artifacts to
    the running kernel by that metadata, before it downloads anything."""
    from kbuilder.elf.reader import parse_object
    from kbuilder.metadata.model import finalize, load, pretty_json

    doc = load(module)
    doc["target"]["vmlinux_build_id"] = build_id
    blob, full = finalize(parse_object(module.read_bytes(), str(module)), doc)
    folder.mkdir(parents=True)
    ko = folder / module.name
    ko.write_bytes(blob)
    meta = ko.with_suffix(".json")
    meta.write_text(pretty_json(full))
    return ko, meta


def _config(path: Path, url: str, key: str, state: Path) -> Path:
    path.write_text(f'repository = "{url}"\nkeys = ["{key}"]\nchannel = "prod"\nauto_update = true\n'
                    f'state_dir = "{state}"\ntransition_timeout = "60s"\n')
    return path


def _fixes(tag: str, fix1: bool, fix2: bool) -> list[vm.Step]:
    return [Check(FIX1, must_pass=fix1, name=f"{tag}:{'has' if fix1 else 'lacks'}-fix1"),
            Check(FIX2, must_pass=fix2, name=f"{tag}:{'has' if fix2 else 'lacks'}-fix2")]


def _live(tag: str, module: str | None, *gone: str) -> list[vm.Step]:
    """`module` is the one enabled livepatch (None: there is none), and the
    modules in `gone` are unloaded (rmmod'ed, not just replaced)."""
    if module is None:
        steps: list[vm.Step] = [Check('test -z "$(ls /sys/kernel/livepatch)"', must_pass=True, name=f"{tag}:no-patch")]
    else:
        steps = [Check(f'test "$(ls /sys/kernel/livepatch)" = {module} && '
                       f'test "$(cat /sys/kernel/livepatch/{module}/enabled)" = 1', must_pass=True,
                       name=f"{tag}:live-{module}")]
    steps += [Check(f"test ! -d /sys/module/{name}", must_pass=True, name=f"{tag}:unloaded-{name}") for name in gone]
    return steps


@pytest.fixture(scope="module")
def kernel() -> testkernel.TestKernel:
    from helpers import test_kernel_or_skip

    return test_kernel_or_skip()


def test_agent_updates_pins_rolls_back_and_refuses_in_the_guest(kernel: testkernel.TestKernel,
                                                                tmp_path: Path) -> None:
    base = BuildOptions(source=kernel.source, config=kernel.config_file, patches=(), output=tmp_path / "build")
    level1 = build_series(SERIES, base, mode="cumulative", level=1, min_severity=None, progress=print)[0]
    level2 = build_series(SERIES, base, mode="cumulative", level=2, min_severity=None, progress=print)[0]
    l1, l2 = level1.module, level2.module
    n1, n2 = vm.module_name(l1), vm.module_name(l2)
    build_id = level1.report["metadata"]["target"]["vmlinux_build_id"]
    assert build_id and build_id != OTHER_BUILD_ID

    # The repository, as a publisher fills it.
    key = tmp_path / "keys" / "repo.key"
    _kbuild("repo", "keygen", "--out", str(key))
    pinned = key.with_name("repo.key.pub").read_text().strip()
    repo = tmp_path / "repo"
    _kbuild("repo", "init", str(repo), "--key", str(key), "--channels", "dev,prod")
    _kbuild("repo", "add", str(repo), str(l1), "--channel", "dev")
    _kbuild("repo", "promote", str(repo), l1.stem, "--from", "dev", "--to", "prod")
    _kbuild("repo", "add", str(repo), str(l2), "--channel", "dev")
    before = tmp_path / "served-before-promotion"
    shutil.copytree(repo, before, ignore=shutil.ignore_patterns(".kbuilder"))
    _kbuild("repo", "promote", str(repo), l2.stem, "--from", "dev", "--to", "prod")
    listed = json.loads(_kbuild("repo", "list", str(repo), "--json"))
    assert {(a["name"], a["channel"]) for a in listed["artifacts"]} == {(l1.stem, "prod"), (l2.stem, "prod")}

    other = tmp_path / "repo-other-build"
    other_ko, other_meta = _relabel(l1, OTHER_BUILD_ID, tmp_path / "other-build")
    _kbuild("repo", "init", str(other), "--key", str(key), "--channels", "dev,prod")
    _kbuild("repo", "add", str(other), str(other_ko), str(other_meta), "--channel", "prod")
    _kbuild("repo", "verify", str(other), "--key", pinned)

    # The guest writes only into a tmpfs on this (empty) host directory.
    rw = tmp_path / "guest-rw"
    rw.mkdir()
    served = rw / "repo"
    config = _config(tmp_path / "agent.toml", f"file://{served}", pinned, rw / "state")
    config_other = _config(tmp_path / "agent-other.toml", f"file://{other}", pinned, rw / "state-other")

    def agent(name: str, *args: str, cfg: Path = config, must_pass: bool = True) -> HostCommand:
        state = rw / ("state" if cfg == config else "state-other")
        argv = [sys.executable, "-m", "kbuilder", "agent", "--config", str(cfg), "--sysfs-root", "/",
                "--state-dir", str(state), *args]
        return HostCommand(shlex.join(argv), name=name, must_pass=must_pass)

    def serve(tree: Path, name: str) -> Check:
        return Check(f"ln -sfn {shlex.quote(str(tree))} {shlex.quote(hostfs.ROOT + str(served))}", must_pass=True,
                     name=name)

    steps: list[vm.Step] = [
        MountHost(writable=(str(rw),)),
        serve(before, "serve-before-promotion"),
        *_fixes("original", False, False),
        agent("status", "status"),
        # Level 2 is only in dev: the prod agent loads level 1.
        agent("update-1", "update"),
        *_fixes("update-1", True, False), *_live("update-1", n1),
        # The publisher promoted level 2 to prod: it replaces level 1.
        serve(repo, "serve-after-promotion"),
        agent("update-2", "update"),
        *_fixes("update-2", True, True), *_live("update-2", n2, n1),
        agent("status-2", "status"),
        # A pin goes down.
        agent("pin-1", "pin", "1"),
        agent("update-pinned-1", "update"),
        *_fixes("pinned-1", True, False), *_live("pinned-1", n1, n2),
        # Unpinned, an update would go up again; with automatic updates off
        # the timer's `update --auto` does nothing.
        agent("pin-none", "pin", "none"),
        agent("auto-update-off", "auto-update", "off"),
        agent("check-auto-off", "check"),
        agent("update-auto-off", "update", "--auto"),
        *_fixes("auto-off", True, False), *_live("auto-off", n1),
        agent("auto-update-on", "auto-update", "on"),
        agent("update-auto-on", "update", "--auto"),
        *_fixes("auto-on", True, True), *_live("auto-on", n2, n1),
        # Rollback: to the previous level (from the agent's cache), then to none.
        agent("rollback", "rollback"),
        *_fixes("rollback", True, False), *_live("rollback", n1, n2),
        agent("rollback-to-0", "rollback", "--to", "0"),
        *_fixes("rollback-to-0", False, False), *_live("rollback-to-0", None, n1, n2),
        # Back to the newest, then unload everything: the original behaviour,
        # and an update does not bring the patches back (unload pins level 0).
        agent("pin-none-again", "pin", "none"),
        agent("update-again", "update"),
        *_fixes("update-again", True, True), *_live("update-again", n2),
        agent("unload-all", "unload", "--all"),
        *_fixes("unload-all", False, False), *_live("unload-all", None, n1, n2),
        agent("update-after-unload", "update"),
        *_fixes("after-unload", False, False), *_live("after-unload", None),
        # An artifact for another build of this release is refused (a fresh state: nothing pinned).
        agent("update-other-build", "update", cfg=config_other, must_pass=False),
        *_fixes("other-build", False, False), *_live("other-build", None),
    ]
    result = vm.run_steps(kernel.bzimage, steps, log=tmp_path / "console.log", timeout=420)
    assert result.ok, f"{result.failure} (log: {result.log})"

    def out(label: str) -> str:
        return "\n".join(result.outcome(label).output)

    assert f"kernel: {kernel.release} x86_64, build id {build_id}" in out("status")
    assert "livepatches: none" in out("status")
    assert f"loaded {l1.stem}" in out("update-1") and l2.stem not in out("update-1")
    assert f"loaded {l2.stem}" in out("update-2") and f"unloaded {n1}" in out("update-2")
    assert f"{n2}: enabled; cumulative level 2 of demo" in out("status-2")
    assert f"loaded {l1.stem}" in out("update-pinned-1")
    assert l2.stem in out("check-auto-off")     # there was something to do ...
    assert "automatic updates are off (agent auto-update): nothing done" in out("update-auto-off")   # ... not done
    assert f"loaded {l2.stem}" in out("update-auto-on")
    assert "roll back from level 2 to 1" in out("rollback")
    assert out("update-after-unload") == "nothing to do: pinned level 0 and no livepatch loaded"
    refusal = result.outcome("update-other-build")
    assert refusal.status == 1
    lines = [line for line in refusal.output if line.strip()]
    assert lines == [(f"kbuild: error: wrong kernel: no artifact in channel prod targets this kernel "
                      f"({kernel.release} x86_64, build id {build_id}); {l1.stem} is for {kernel.release} build id "
                      f"{OTHER_BUILD_ID}, a different build")], lines
    assert result.problems == ()
