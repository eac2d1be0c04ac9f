"""The agent's parts: the kernel seam, the journal, the configuration
and the policy."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from fake_kernel import make_root

from kbuilder.agent.config import load_config, parse_config
from kbuilder.agent.errors import AgentError, StateCorrupt
from kbuilder.agent.journal import COMPACT_AFTER, Journal
from kbuilder.agent.kernel import SysfsKernel, build_note, parse_build_id
from kbuilder.agent.policy import below, new_fixes_severity
from kbuilder.repository.keys import generate

BID = "8d3f2a9c1b7e4f6a0c2d5e8f1a3b6c9d2e4f7a0b"


def test_build_id_from_notes() -> None:
    assert parse_build_id(build_note(BID)) == BID
    odd = "abcdef0123"             # 5 bytes: padded
    other = b"\x04\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00Xen\x00\x01\x02\x03\x04"
    assert parse_build_id(other + build_note(odd)) == odd
    assert parse_build_id(other) is None
    assert parse_build_id(b"\xff" * 13) is None
    assert parse_build_id(b"") is None


def test_real_sysfs_notes_if_readable() -> None:
    try:
        notes = Path("/sys/kernel/notes").read_bytes()
    except OSError:
        pytest.skip("/sys/kernel/notes is not readable here")
    found = parse_build_id(notes)
    assert found is None or len(found) >= 16


def test_identity_under_a_root(tmp_path: Path) -> None:
    root = make_root(tmp_path, release="6.1.0-test", build_id=BID, arch="aarch64")
    kernel = SysfsKernel(root)
    identity = kernel.identity()
    assert (identity.release, identity.build_id, identity.arch) == ("6.1.0-test", BID, "aarch64")
    assert kernel.livepatches() == []
    (root / "proc/sys/kernel/osrelease").unlink()
    with pytest.raises(AgentError, match="cannot read the kernel release"):
        kernel.identity()


def test_wait_transition_and_tools(tmp_path: Path) -> None:
    root = make_root(tmp_path, release="r", build_id=BID)
    clock = [0.0]
    kernel = SysfsKernel(root, insmod=["false"], rmmod="sh -c 'echo rmmod: in use >&2; exit 1' x",
                         sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
    patch = root / "sys/kernel/livepatch/p"
    patch.mkdir()
    (patch / "enabled").write_text("1\n")
    (patch / "transition").write_text("1\n")
    assert kernel.wait_transition("p", 2) is False and clock[0] >= 2
    (patch / "transition").write_text("0\n")
    assert kernel.wait_transition("p", 2) is True
    assert kernel.wait_transition("gone", 2) is True
    kernel.disable("p")
    assert (patch / "enabled").read_text() == "0\n"
    with pytest.raises(AgentError, match=r"insmod m.ko failed \(exit 1\)"):
        kernel.load(Path("m.ko"))
    with pytest.raises(AgentError, match="rmmod p failed .*: rmmod: in use"):
        kernel.unload("p")
    with pytest.raises(AgentError, match="cannot disable livepatch q"):
        kernel.disable("q")
    with pytest.raises(AgentError, match="no-such-insmod not found"):
        SysfsKernel(root, insmod="no-such-insmod").load(Path("m.ko"))


def test_journal_replay_torn_tail_and_corruption(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append("index", repository="r", version=3, url="u")
    journal.append("setting", key="pinned_level", value=2)
    journal.append("begin", action="load", module="m", artifact={"module_name": "m"})
    state = journal.state()
    assert state.seen == {"r": 3} and state.settings == {"pinned_level": 2} and state.pending["module"] == "m"
    # a crash while appending leaves a torn line: ignored, and cut before the next append
    with open(journal.path, "ab") as fh:
        fh.write(b'{"seq":4,"op":"loa')
    assert len(journal.records()) == 3
    journal.append("loaded", module="m", artifact={"module_name": "m"})
    assert [r["seq"] for r in journal.records()] == [1, 2, 3, 4]
    assert journal.state().installed.keys() == {"m"} and journal.state().pending is None
    # a changed record before the last one is refused
    lines = journal.path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"value":2', b'"value":3')
    journal.path.write_bytes(b"".join(lines))
    with pytest.raises(StateCorrupt, match="line 2 of the agent journal is damaged"):
        journal.state()


def test_journal_compacts(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for n in range(COMPACT_AFTER + 5):
        journal.append("index", repository="r", version=n + 1, url="u")
    records = journal.records()
    assert len(records) < 10 and records[0]["op"] == "snapshot"
    assert journal.state().seen == {"r": COMPACT_AFTER + 5}
    assert os.stat(journal.path).st_mode & 0o777 == 0o600


def test_config(tmp_path: Path) -> None:
    key = generate()
    pub = tmp_path / "k.pub"
    pub.write_text(key.public.text + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(f'repository = "file:///srv/repo"\nkeys = ["{key.public.text}", "{pub}"]\nchannel = "dev"\n'
                    'auto_update = false\nlevel = 2\nmin_age = "2d"\nmin_severity = "high"\n'
                    'transition_timeout = "90s"\n')
    config = load_config(path)
    assert config.keys == [key.public, key.public] and config.channel == "dev" and config.auto_update is False
    assert config.level == 2 and config.min_age == timedelta(days=2) and config.min_severity == "HIGH"
    assert config.transition_timeout == 90
    assert load_config(tmp_path / "none.toml", required=False).repository is None
    with pytest.raises(AgentError, match="no agent configuration"):
        load_config(tmp_path / "none.toml")


@pytest.mark.parametrize("data, message", [
    ({"repo": "x"}, "unknown setting 'repo'"),
    ({"keys": ["ed25519:AAAA"]}, "keys: .*base64 of 32 bytes"),
    ({"auto_update": "yes"}, "auto_update must be true or false"),
    ({"level": -1}, "level must be a level number"),
    ({"min_age": "soon"}, "min_age: 'soon' is not a duration"),
    ({"min_severity": "urgent"}, "min_severity: unknown severity"),
])
def test_config_errors(data: dict, message: str) -> None:
    with pytest.raises(AgentError, match=message) as info:
        parse_config(data, "agent.toml")
    assert str(info.value).startswith("agent.toml: ")


def test_config_without_repository() -> None:
    with pytest.raises(AgentError, match="no repository URL"):
        parse_config({}, "a.toml").need_repository()
    with pytest.raises(AgentError, match="no pinned public key"):
        parse_config({"repository": "file:///x"}, "a.toml").need_repository()


def test_severity_of_new_fixes() -> None:
    def fix(patch: str, sev: str) -> dict:
        return {"kind": "fix", "description": patch, "patch": patch, "severity": sev}

    level1 = {"fixes": [fix("a", "CRITICAL")]}
    level2 = {"fixes": [fix("a", "CRITICAL"), fix("b", "LOW")]}
    assert new_fixes_severity(level2, level1) == "LOW"
    assert new_fixes_severity(level2, None) == "CRITICAL"
    assert new_fixes_severity(level1, level2) is None
    assert below("LOW", "HIGH") and not below("HIGH", "HIGH") and below(None, "LOW") and not below(None, None)
    assert json.dumps(level1)
