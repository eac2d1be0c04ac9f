"""`kbuild agent ...` end to end, as a guest would run it: a separate
process with --sysfs-root and --state-dir, and insmod/rmmod programs that
act on the fake root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fake_kernel import make_root
from repo_helpers import BUILD_ID, OTHER_BUILD_ID, RELEASE, kbuild, keypair, make_module

FAKE = Path(__file__).with_name("fake_modtools.py")


@pytest.fixture
def setup(tmp_path: Path) -> dict:
    from kbuilder.repository import store

    key_path, key = keypair(tmp_path)
    repo = tmp_path / "repo"
    store.init(repo, str(key_path))
    for level in (1, 2):
        ko, doc, _ = make_module(tmp_path / "build", f"livepatch-demo-{level}", level=level,
                                 severity="LOW" if level == 2 else "HIGH")
        store.add(repo, ko, doc, channel="dev")
    store.promote(repo, "livepatch-demo-1", source="dev", destination="prod")
    root = make_root(tmp_path / "root", release=RELEASE, build_id=BUILD_ID)
    config = tmp_path / "agent.toml"
    config.write_text(f'repository = "file://{repo}"\nkeys = ["{key.public.text}"]\nchannel = "prod"\n'
                      f'insmod = "{sys.executable} {FAKE} insmod"\nrmmod = "{sys.executable} {FAKE} rmmod"\n')
    base = ["agent", "--config", str(config), "--sysfs-root", str(root), "--state-dir", str(tmp_path / "state")]
    return {"base": base, "env": {"FAKE_SYSFS_ROOT": str(root)}, "repo": repo, "root": root, "config": config}


def promote(setup: dict, name: str) -> None:
    from kbuilder.repository import store

    store.promote(setup["repo"], name, source="dev", destination="prod")


def agent(setup: dict, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return kbuild(*setup["base"], *args, env=setup["env"], check=check)


def test_agent_commands(setup: dict) -> None:
    out = agent(setup, "status").stdout
    assert out.startswith(f"kernel: {RELEASE} x86_64, build id {BUILD_ID}\nlivepatches: none\n")
    assert "auto-update on (configuration); pinned level none (configuration)" in out
    out = agent(setup, "check").stdout
    assert out.splitlines()[1:] == ["load level 1", "  load livepatch-demo-1  # load level 1 (newest level in channel prod)"]
    out = agent(setup, "update").stdout
    assert out.splitlines()[-1] == "load level 1"
    status = agent(setup, "status").stdout
    assert "livepatch_demo_1: enabled; cumulative level 1 of demo, severity high, channel prod" in status
    assert "fixes p1" in status
    promote(setup, "livepatch-demo-2")
    assert agent(setup, "update").stdout.splitlines()[-1] == "upgrade from level 1 to 2"
    assert agent(setup, "pin", "1").stdout == "pinned level: 1 (agent pin); agent update applies it\n"
    assert agent(setup, "update").stdout.splitlines()[-1] == "downgrade from level 2 to 1"
    agent(setup, "pin", "none")
    assert agent(setup, "auto-update", "off").stdout == "automatic updates: off (agent auto-update)\n"
    assert agent(setup, "update", "--auto").stdout == "automatic updates are off (agent auto-update): nothing done\n"
    agent(setup, "auto-update", "on")
    assert agent(setup, "update", "--auto").stdout.splitlines()[-1] == "upgrade from level 1 to 2"
    out = agent(setup, "rollback").stdout
    assert "roll back from level 2 to 1" in out and "note: pinned to level 1" in out
    out = agent(setup, "unload", "--all").stdout
    assert "unloaded every livepatch of the agent" in out
    assert not list((setup["root"] / "sys/kernel/livepatch").iterdir())
    assert not list((setup["root"] / "sys/module").iterdir())


def test_refusals_are_one_line(setup: dict, tmp_path: Path) -> None:
    proc = kbuild("agent", "--config", str(tmp_path / "none.toml"), "--state-dir", str(tmp_path / "s"), "check",
                  check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"kbuild: error: {tmp_path / 'none.toml'}: no agent configuration (give --config PATH; " \
                          "docs/agent.md)\n"
    other = make_root(tmp_path / "other", release=RELEASE, build_id=OTHER_BUILD_ID)
    base = [*setup["base"]]
    base[base.index("--sysfs-root") + 1] = str(other)
    proc = kbuild(*base, "update", env={"FAKE_SYSFS_ROOT": str(other)}, check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("kbuild: error: wrong kernel: no artifact in channel prod targets this kernel")
    agent(setup, "update")
    promote(setup, "livepatch-demo-2")
    setup["config"].write_text(setup["config"].read_text() + 'min_severity = "high"\n')
    proc = agent(setup, "update", check=False)
    assert proc.returncode == 1
    assert proc.stderr == ("kbuild: error: severity below policy: livepatch-demo-2 (level 2) brings fixes of severity "
                           "low; the policy needs high or above\n")
    proc = agent(setup, "update", "--auto")
    assert proc.stdout.startswith("skipped: severity below policy: livepatch-demo-2")
