"""The agent against a fake kernel and a file:// repository: the
acceptance scenario of the issue, and every refusal."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from agent_helpers import World
from fake_kernel import FakeKernel, kernel_log
from repo_helpers import OTHER_BUILD_ID

from kbuilder.agent.agent import Agent
from kbuilder.agent.errors import AgentError, DependencyMissing, MetadataMismatch, SeverityBelowPolicy, WrongKernel
from kbuilder.agent.journal import Journal
from kbuilder.repository import store
from kbuilder.repository.errors import BadSignature, ExpiredIndex, HashMismatch, IndexRollback, UnknownKey
from kbuilder.repository.index import utcnow
from kbuilder.repository.keys import generate


def test_the_acceptance_scenario(world: World) -> None:
    agent = world.agent()
    # check changes nothing
    decision, _ = agent.check()
    assert decision.summary == "load level 1" and [str(s).split("  #")[0] for s in decision.steps] == \
        ["load livepatch-demo-1"]
    assert world.loaded() == [] and not Path(world.config.state_dir).exists()
    # update loads level 1 (level 2 is only in dev)
    assert agent.update().summary == "load level 1"
    assert world.loaded() == ["livepatch_demo_1"]
    # promotion of level 2 to prod: the next update upgrades, and unloads level 1
    world.promote("livepatch-demo-2")
    assert agent.update().summary == "upgrade from level 1 to 2"
    assert world.loaded() == ["livepatch_demo_2"] and world.modules() == ["livepatch_demo_2"]
    assert agent.update().summary == "nothing to do: level 2 (livepatch-demo-2) is loaded"
    # pin 1 + update downgrades
    agent.pin(1)
    assert agent.update().summary == "downgrade from level 2 to 1"
    assert world.loaded() == ["livepatch_demo_1"]
    agent.pin(None)
    # automatic updates off: the timer's run does nothing
    agent.set_auto_update(False)
    assert agent.update(auto=True).summary == "automatic updates are off (agent auto-update): nothing done"
    assert world.loaded() == ["livepatch_demo_1"]
    agent.set_auto_update(True)
    assert agent.update(auto=True).summary == "upgrade from level 1 to 2"
    # rollback goes to the previous lower level and pins it
    decision = agent.rollback()
    assert decision.summary == "roll back from level 2 to 1" and world.loaded() == ["livepatch_demo_1"]
    assert agent.settings().pinned == 1
    assert agent.update().summary.startswith("nothing to do: level 1")
    # unload --all restores the original kernel and pins level 0
    decision = agent.unload_all()
    assert world.loaded() == [] and world.modules() == []
    assert agent.settings().pinned == 0
    assert agent.update().summary == "nothing to do: pinned level 0 and no livepatch loaded"
    assert kernel_log(world.root) == [
        "insmod livepatch_demo_1", "insmod livepatch_demo_2", "rmmod livepatch_demo_1",
        "insmod livepatch_demo_1", "rmmod livepatch_demo_2", "insmod livepatch_demo_2", "rmmod livepatch_demo_1",
        "insmod livepatch_demo_1", "rmmod livepatch_demo_2", "rmmod livepatch_demo_1"]


def test_status_shows_kernel_patches_and_metadata(world: World) -> None:
    agent = world.agent()
    agent.update()
    (world.root / "sys/kernel/livepatch/foreign").mkdir()
    (world.root / "sys/kernel/livepatch/foreign/enabled").write_text("1\n")
    status = agent.status()
    assert status["kernel"] == {"kernel_release": "6.1.0-test", "vmlinux_build_id": world.kernel.identity().build_id,
                                "arch": "x86_64"}
    by_name = {p["name"]: p for p in status["livepatches"]}
    ours = by_name["livepatch_demo_1"]
    assert ours["by_agent"] and ours["artifact"]["level"] == 1 and ours["metadata"]["mode"]["level"] == 1
    assert not by_name["foreign"]["by_agent"] and "metadata" not in by_name["foreign"]
    assert status["settings"]["pinned_level"] is None and list(status["seen"].values()) == [4]


def test_wrong_kernel_is_refused(world: World, tmp_path: Path) -> None:
    other = World(tmp_path / "other")
    other.add("livepatch-demo-1", level=1, channel="prod", build_id=OTHER_BUILD_ID)
    with pytest.raises(WrongKernel, match=r"^wrong kernel: no artifact in channel prod targets this kernel .* "
                                          r"livepatch-demo-1 is for 6.1.0-test build id 1111"):
        other.agent().update()
    assert other.loaded() == []


def test_artifact_that_lies_about_its_kernel_is_refused(world: World) -> None:
    """The index (signed) says build A but the module's metadata says B:
    the agent checks the downloaded document against the running kernel."""
    raw, index = store.Repository(world.repo).current()
    for a in index.artifacts:
        a.target = dict(a.target, vmlinux_build_id=OTHER_BUILD_ID)
    world.root.joinpath("sys/kernel/notes").write_bytes(
        __import__("kbuilder.agent.kernel", fromlist=["build_note"]).build_note(OTHER_BUILD_ID))
    index.version += 1
    store.Repository(world.repo).publish(world.key, index, raw)
    with pytest.raises(MetadataMismatch, match="target.vmlinux_build_id is '8d3f"):
        world.agent().update()
    assert world.loaded() == []


def test_unreadable_build_id_is_refused(world: World) -> None:
    (world.root / "sys/kernel/notes").unlink()
    with pytest.raises(WrongKernel, match="cannot read the build id of the running kernel"):
        world.agent().update()


def test_severity_below_policy(world: World) -> None:
    world.add("livepatch-demo-3", level=3, severity="LOW", channel="prod")
    agent = world.agent(min_severity="HIGH")
    agent.pin(1)
    agent.update()
    agent.pin(None)
    # level 3 brings fix p2 (LOW) and p3 (LOW) over level 1: below HIGH
    with pytest.raises(SeverityBelowPolicy, match=r"^severity below policy: livepatch-demo-3 \(level 3\) brings fixes "
                                                  r"of severity low; the policy needs high or above"):
        agent.update()
    assert world.loaded() == ["livepatch_demo_1"]
    world.config.min_severity = "LOW"
    assert agent.update().summary == "upgrade from level 1 to 3"


def test_delayed_feed(world: World) -> None:
    world.clock = utcnow()
    agent = world.agent(min_age=timedelta(days=2))
    decision = agent.update()
    assert decision.summary.startswith("nothing to do: level 1 (livepatch-demo-1) waits for the minimum age")
    assert world.loaded() == []
    world.clock = utcnow() + timedelta(days=2, minutes=1)
    assert agent.update().summary == "load level 1"


def test_pinned_level_not_available(world: World) -> None:
    agent = world.agent()
    agent.pin(2)
    with pytest.raises(AgentError, match=r"pinned level 2 is not available in channel prod for this kernel "
                                         r"\(available: 1\)"):
        agent.update()


def test_newer_loaded_level_is_kept_without_pin(world: World) -> None:
    agent = world.agent(channel="dev")
    agent.update()
    assert world.loaded() == ["livepatch_demo_2"]
    world.config.channel = "prod"
    assert agent.update().summary.startswith("nothing to do: level 2 is loaded, newer than level 1")


@pytest.mark.parametrize("damage, error, message", [
    ("artifact", HashMismatch, r"^hash mismatch: file://.*livepatch-demo-1\.ko: sha256"),
    ("index", BadSignature, r"^bad signature: "),
    ("signature", BadSignature, r"^bad signature: "),
])
def test_tampering_is_refused(world: World, damage: str, error: type, message: str) -> None:
    index = store.verify(world.repo).index
    path = {"artifact": world.repo / index.artifacts[0].module.path, "index": world.repo / "index.json",
            "signature": world.repo / "index.json.sig"}[damage]
    blob = bytearray(path.read_bytes())
    offset = blob.index(b'"sig":"') + 20 if damage == "signature" else {"artifact": 200, "index": 40}[damage]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(error, match=message):
        world.agent().update()
    assert world.loaded() == []
    assert not list((Path(world.config.state_dir) / "modules").glob("*.ko"))


def test_unknown_key_and_expired_index(world: World) -> None:
    with pytest.raises(UnknownKey):
        world.agent(keys=[generate().public]).update()
    world.config.keys = [world.key.public]
    store.refresh(world.repo, valid_for=timedelta(minutes=1), now=utcnow() - timedelta(hours=1))
    with pytest.raises(ExpiredIndex):
        world.agent().update()


def test_index_rollback_across_runs(world: World) -> None:
    old = {n: (world.repo / n).read_bytes() for n in ("index.json", "index.json.sig")}
    world.promote("livepatch-demo-2")
    world.agent().update()
    for name, blob in old.items():
        (world.repo / name).write_bytes(blob)
    with pytest.raises(IndexRollback, match="version 4 is older than version 5 already seen"):
        world.agent().check()


def test_dependency_missing(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.add("livepatch-inc-a", kind="incremental", position=1, level=None, severity="LOW")
    world.add("livepatch-inc-b", kind="incremental", position=2, level=None, requires=[("livepatch_inc_a", 1)])
    store.promote(world.repo, "livepatch-inc-a", source="dev", destination="prod")
    store.promote(world.repo, "livepatch-inc-b", source="dev", destination="prod")
    agent = world.agent(min_severity="HIGH")
    with pytest.raises(DependencyMissing, match=r"^dependency missing: livepatch-inc-b requires livepatch_inc_a "
                                                r"\(klp state 1\), which is not loaded and cannot be: of severity low"):
        agent.update()
    world.config.min_severity = None
    decision = agent.update()
    assert [s.module for s in decision.steps] == ["livepatch_inc_a", "livepatch_inc_b"]
    assert world.loaded() == ["livepatch_inc_a", "livepatch_inc_b"]
    decision = agent.rollback()
    assert world.loaded() == ["livepatch_inc_a"] and agent.settings().pinned == 1


def test_kernel_refusal_is_one_line_and_recorded(world: World) -> None:
    world.kernel.refuse = "Key was rejected by service"
    with pytest.raises(AgentError, match="insmod livepatch_demo_1.ko failed|Key was rejected"):
        world.agent().update()
    state = Journal(world.config.state_dir).state()
    assert state.installed == {} and state.pending is None


def test_transition_timeout_reverses(world: World) -> None:
    world.kernel.hang = True
    with pytest.raises(AgentError, match="did not finish in 60 s .*: reversed"):
        world.agent().update()
    assert world.loaded() == [] and world.modules() == []
    assert Journal(world.config.state_dir).state().installed == {}


def test_crash_after_intent_is_settled_by_sysfs(world: World) -> None:
    """A crash after `begin` (journal) and insmod, before `loaded`: the next
    run records what the kernel shows; a crash before insmod: forgotten."""
    agent = world.agent()
    journal = Journal(world.config.state_dir)
    index = store.verify(world.repo).index
    from kbuilder.agent.policy import artifact_record

    record = artifact_record(index.artifacts[0])
    journal.append("begin", action="load", module="livepatch_demo_1", artifact=record)
    assert agent.status()["livepatches"] == []
    state, notes = agent.reconcile()
    assert state.installed == {} and notes == ["an interrupted run did not load livepatch_demo_1: forgotten"]
    journal.append("begin", action="load", module="livepatch_demo_1", artifact=record)
    path = Path(world.config.state_dir) / "x.ko"
    path.write_bytes((world.repo / index.artifacts[0].module.path).read_bytes())
    world.kernel.load(path)
    state, notes = agent.reconcile()
    assert list(state.installed) == ["livepatch_demo_1"] and "had loaded" in notes[0]


def test_a_module_unloaded_behind_the_agents_back_is_forgotten(world: World) -> None:
    agent = world.agent()
    agent.update()
    world.kernel.disable("livepatch_demo_1")
    world.kernel.unload("livepatch_demo_1")
    status = agent.status()
    assert status["livepatches"] == [] and "no longer an enabled livepatch" in status["notes"][0]
    assert agent.update().summary == "load level 1"


def test_leftover_module_is_cleaned(world: World) -> None:
    """A crash after loading level 2 (atomic replace) and before unloading
    level 1's module: the next run records level 2 and unloads level 1."""
    from kbuilder.agent.policy import artifact_record

    agent = world.agent()
    agent.update()
    world.promote("livepatch-demo-2")
    index = store.verify(world.repo).index
    level2 = next(a for a in index.artifacts if a.level == 2)
    journal = Journal(world.config.state_dir)
    journal.append("begin", action="load", module="livepatch_demo_2", artifact=artifact_record(level2))
    world.kernel.load(world.repo / level2.module.path)
    assert world.modules() == ["livepatch_demo_1", "livepatch_demo_2"] and world.loaded() == ["livepatch_demo_2"]
    assert agent.status()["leftovers"] == ["livepatch_demo_1"]
    decision = agent.update()
    assert decision.summary == "nothing to do: level 2 (livepatch-demo-2) is loaded"
    assert [str(s) for s in decision.steps] == ["unload livepatch_demo_1  # left loaded after it was replaced or disabled"]
    assert world.modules() == ["livepatch_demo_2"]
    assert journal.state().installed.keys() == {"livepatch_demo_2"}


def test_journal_records_are_checksummed(world: World) -> None:
    agent = world.agent()
    agent.update()
    lines = (Path(world.config.state_dir) / "journal.jsonl").read_text().splitlines()
    ops = [json.loads(line)["op"] for line in lines]
    assert ops == ["index", "begin", "loaded"]
    cache = Path(world.config.state_dir) / "modules"
    [ko] = cache.glob("*.ko")
    assert hashlib.sha256(ko.read_bytes()).hexdigest() == ko.stem


def test_rollback_to_level_from_the_repository_when_not_cached(world: World) -> None:
    world.promote("livepatch-demo-2")
    agent = world.agent()
    agent.update()
    assert world.loaded() == ["livepatch_demo_2"]
    decision = agent.rollback(to=1)
    assert decision.summary == "roll back from level 2 to 1" and world.loaded() == ["livepatch_demo_1"]
    with pytest.raises(AgentError, match="nothing to roll back to"):
        agent.rollback()
    agent.rollback(to=0)
    assert world.loaded() == [] and agent.settings().pinned == 0


def test_two_agents_do_not_run_at_once(world: World) -> None:
    from kbuilder.repository.durable import exclusive_lock

    Path(world.config.state_dir).mkdir(parents=True)
    with exclusive_lock(Path(world.config.state_dir) / "lock", "x"), pytest.raises(AgentError, match="busy"):
        world.agent().update()


def test_agent_over_http(world: World) -> None:
    """The same update through `repo serve` on loopback."""
    import subprocess

    from repo_helpers import kbuild_argv

    proc = subprocess.Popen(kbuild_argv("repo", "serve", str(world.repo), "--bind", "127.0.0.1:0"),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[1].split()[0]
        agent = world.agent(repository=url)
        assert agent.update().summary == "load level 1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_fake_kernel_is_a_kernel(world: World) -> None:
    assert isinstance(world.kernel, FakeKernel) and isinstance(world.agent(), Agent)


def test_module_signature_can_be_required(world: World) -> None:
    from kbuilder.agent.errors import UnsignedModule

    with pytest.raises(UnsignedModule, match=r"^unsigned module: .*livepatch-demo-1 carries no kernel module signature"):
        world.agent(require_module_signature=True).update()
    assert world.loaded() == []
