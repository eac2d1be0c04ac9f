"""kbuilder.metadata.plan: reading what is loaded and planning loads,
disables and unloads for cumulative and incremental series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from metadata_helpers import build_report

from kbuilder.elf import read_object
from kbuilder.errors import InputError
from kbuilder.metadata.model import finalize, for_series_build
from kbuilder.metadata.plan import Action, LoadedPatch, plan, plan_json, read_loaded, read_loaded_json
from kbuilder.metadata.series import Series, load_series, select


@pytest.fixture
def series(series_file: Path) -> Series:
    return load_series(series_file)


def _strs(actions: list[Action]) -> list[str]:
    return [str(a) for a in actions]


def _loaded(*names: str, **flags: Any) -> list[LoadedPatch]:
    return [LoadedPatch(n, **flags) for n in names]


# ---- cumulative -------------------------------------------------------------

def test_cumulative_from_nothing(series: Series) -> None:
    actions = plan(series, [], 2, "cumulative")
    assert _strs(actions) == ["load livepatch-demo-2.ko"]
    assert actions[0].command == "insmod livepatch-demo-2.ko"


def test_cumulative_upgrade_and_downgrade_are_one_load(series: Series) -> None:
    up = plan(series, _loaded("livepatch_demo_2"), 4, "cumulative")
    assert _strs(up) == ["load livepatch-demo-4.ko", "unload livepatch_demo_2"]
    assert "upgrade from level 2 to 4" in up[0].reason
    down = plan(series, _loaded("livepatch_demo_4"), 1, "cumulative")
    assert _strs(down) == ["load livepatch-demo-1.ko", "unload livepatch_demo_4"]
    assert "downgrade from level 4 to 1" in down[0].reason
    assert down[1].command == "rmmod livepatch_demo_4"


def test_cumulative_already_there(series: Series) -> None:
    assert plan(series, _loaded("livepatch_demo_3"), 3, "cumulative") == []


def test_cumulative_to_level_zero_removes_everything(series: Series) -> None:
    actions = plan(series, _loaded("livepatch_demo_3"), 0, "cumulative")
    assert _strs(actions) == ["disable livepatch_demo_3", "unload livepatch_demo_3"]
    assert actions[0].command == "echo 0 > /sys/kernel/livepatch/livepatch_demo_3/enabled"


def test_cumulative_reloads_a_disabled_target_and_warns_about_others(series: Series) -> None:
    loaded = [LoadedPatch("livepatch_demo_2", enabled=False), LoadedPatch("livepatch_demo_1"),
              LoadedPatch("vendor_fix")]
    actions = plan(series, loaded, 2, "cumulative")
    assert _strs(actions) == ["unload livepatch_demo_2", "load livepatch-demo-2.ko", "unload livepatch_demo_1",
                              "unload vendor_fix"]
    assert "also disables vendor_fix" in actions[1].reason


def test_cumulative_recognises_modules_by_metadata(series: Series) -> None:
    meta = {"mode": {"kind": "cumulative", "level": 3, "series": "demo", "supersedes": []}}
    actions = plan(series, [LoadedPatch("renamed_module", metadata=meta)], 1, "cumulative")
    assert _strs(actions) == ["load livepatch-demo-1.ko", "unload renamed_module"]
    assert "downgrade from level 3 to 1" in actions[0].reason


def test_transition_and_bad_levels_refuse(series: Series) -> None:
    with pytest.raises(InputError, match="livepatch_demo_2 is in transition"):
        plan(series, [LoadedPatch("livepatch_demo_2", transition=True)], 3, "cumulative")
    with pytest.raises(InputError, match="level 9 is not in the series"):
        plan(series, [], 9, "cumulative")
    with pytest.raises(InputError, match="unknown mode"):
        plan(series, [], 1, "sideways")


# ---- incremental ------------------------------------------------------------

def test_incremental_loads_missing_in_order(series: Series) -> None:
    actions = plan(series, _loaded("livepatch_demo_nft_verdict"), 3, "incremental")
    assert _strs(actions) == ["load livepatch-demo-leak.ko", "load livepatch-demo-cleanup.ko"]
    assert "needs livepatch_demo_leak below it" in actions[1].reason


def test_incremental_goes_down_from_the_top(series: Series) -> None:
    stack = _loaded("livepatch_demo_nft_verdict", "livepatch_demo_leak", "livepatch_demo_cleanup",
                    "livepatch_demo_sack")
    assert _strs(plan(series, stack, 1, "incremental")) == [
        "disable livepatch_demo_sack", "unload livepatch_demo_sack",
        "disable livepatch_demo_cleanup", "unload livepatch_demo_cleanup",
        "disable livepatch_demo_leak", "unload livepatch_demo_leak"]
    assert _strs(plan(series, stack, 0, "incremental"))[-2:] == [
        "disable livepatch_demo_nft_verdict", "unload livepatch_demo_nft_verdict"]
    assert plan(series, stack, 4, "incremental") == []


def test_incremental_never_removes_from_the_middle(series: Series) -> None:
    # The stack skipped 'leak': reaching level 4 unwinds 'cleanup' and 'sack'
    # first, then loads leak, cleanup and sack in order.
    stack = _loaded("livepatch_demo_nft_verdict", "livepatch_demo_cleanup", "livepatch_demo_sack")
    actions = plan(series, stack, 4, "incremental")
    assert _strs(actions) == [
        "disable livepatch_demo_sack", "unload livepatch_demo_sack",
        "disable livepatch_demo_cleanup", "unload livepatch_demo_cleanup",
        "load livepatch-demo-leak.ko", "load livepatch-demo-cleanup.ko", "load livepatch-demo-sack.ko"]
    assert "out of series order" in actions[0].reason


def test_incremental_with_min_severity(series: Series) -> None:
    # Built with --min-severity high: only nft-verdict and sack exist.
    actions = plan(series, _loaded("livepatch_demo_nft_verdict"), 4, "incremental", min_severity="high")
    assert _strs(actions) == ["load livepatch-demo-sack.ko"]


def test_incremental_stack_order_from_sysfs(series: Series, tmp_path: Path) -> None:
    root = tmp_path / "livepatch"
    for name, order in (("livepatch_demo_leak", "2"), ("livepatch_demo_nft_verdict", "1")):
        d = root / name
        (d / "vmlinux").mkdir(parents=True)
        (d / "enabled").write_text("1\n")
        (d / "transition").write_text("0\n")
        (d / "replace").write_text("0\n")
        (d / "stack_order").write_text(order + "\n")
    loaded = read_loaded(root)
    assert [(p.name, p.stack_order, p.replace, p.enabled) for p in loaded] == [
        ("livepatch_demo_nft_verdict", 1, False, True), ("livepatch_demo_leak", 2, False, True)]
    assert _strs(plan(series, loaded, 1, "incremental")) == ["disable livepatch_demo_leak",
                                                             "unload livepatch_demo_leak"]
    with pytest.raises(InputError, match="no livepatch sysfs directory"):
        read_loaded(tmp_path / "nope")


def test_read_loaded_finds_metadata_in_module_files(series: Series, tmp_path: Path,
                                                    module_object: Callable[[], Path]) -> None:
    selection = select(series, None, 3)
    meta = for_series_build(build_report("livepatch-demo-3"), series, selection, mode="cumulative", arch="x86_64")
    blob, _ = finalize(read_object(module_object()), meta)
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "livepatch-demo-3.ko").write_bytes(blob)
    root = tmp_path / "sys"
    (root / "livepatch_demo_3").mkdir(parents=True)
    (root / "livepatch_demo_3" / "enabled").write_text("1\n")
    loaded = read_loaded(root, (modules,))
    assert loaded[0].metadata is not None and loaded[0].metadata["mode"]["level"] == 3


def test_read_loaded_json(series: Series, tmp_path: Path) -> None:
    path = tmp_path / "loaded.json"
    path.write_text(json.dumps({"loaded": [{"name": "livepatch-demo-2", "enabled": True, "stack_order": 1}]}))
    loaded = read_loaded_json(path)
    assert loaded == [LoadedPatch("livepatch_demo_2", True, False, None, 1, None)]
    out = plan_json(plan(series, loaded, 3, "cumulative"), series=series, target_level=3, mode="cumulative",
                    loaded=loaded)
    assert out["actions"][0] == {"action": "load", "module": "livepatch-demo-3.ko",
                                 "reason": "upgrade from level 2 to 3: atomic replace of livepatch_demo_2",
                                 "command": "insmod livepatch-demo-3.ko"}
    path.write_text(json.dumps([{"enabled": True}]))
    with pytest.raises(InputError, match='entry 1 needs a "name"'):
        read_loaded_json(path)
    path.write_text(json.dumps([{"name": "x", "enabled": "yes"}]))
    with pytest.raises(InputError, match="enabled must be true or false"):
        read_loaded_json(path)
    path.write_text("{}")
    with pytest.raises(InputError, match="expected a JSON list"):
        read_loaded_json(path)
