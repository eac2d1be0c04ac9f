"""`kbuild info` and `kbuild plan` (run through kbuild's own error handling:
a KbuilderError is one stderr line and its exit code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import click
import pytest
from click.testing import CliRunner
from metadata_helpers import build_report, diff_reports

from kbuilder.cli import _Group
from kbuilder.cli.info import info
from kbuilder.cli.plan import plan
from kbuilder.elf import read_object
from kbuilder.metadata.model import finalize, for_series_build, pretty_json
from kbuilder.metadata.series import load_series, select


@pytest.fixture
def kbuild() -> click.Group:
    group = _Group(name="kbuild")
    group.add_command(info)
    group.add_command(plan)
    return group


def _run(kbuild: click.Group, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(kbuild, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def built(series_file: Path, module_object: Callable[[], Path], tmp_path: Path) -> tuple[Path, dict]:
    series = load_series(series_file)
    meta = for_series_build(build_report("livepatch-demo-4"), series, select(series, "high", 4), mode="cumulative",
                            diff_reports=diff_reports())
    blob, full = finalize(read_object(module_object()), meta)
    ko = tmp_path / "livepatch-demo-4.ko"
    ko.write_bytes(blob)
    return ko, full


def test_info_on_a_built_module(kbuild: click.Group, built: tuple[Path, dict]) -> None:
    ko, full = built
    code, out, err = _run(kbuild, "info", str(ko))
    assert code == 0, err
    assert f"{ko}: livepatch module livepatch_demo_4 (kbuilder-metadata/1)" in out
    assert "target:     Linux 6.1.0-test x86_64" in out
    assert "mode:       cumulative, level 4 of series demo" in out
    assert "supersedes livepatch_demo_1, livepatch_demo_2, livepatch_demo_3" in out
    assert "functions (3):" in out and "vmlinux:__nf_queue,2" in out and "412 -> 436 bytes" in out
    assert "fixes (3), highest severity HIGH (7.8):" in out
    assert "CVE-2024-1086    HIGH       7.8  CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H  [patch nft-verdict]" in out
    assert "CVE-2019-11478   HIGH         -  (severity stated, no CVSS vector)" in out
    assert "leak (patches/0002-leak.patch): severity medium is below the minimum high" in out
    assert "callbacks:  vmlinux: pre_patch, post_unpatch" in out
    assert f"sha256 {full['module']['sha256']}" in out


def test_info_json_and_sidecar(kbuild: click.Group, built: tuple[Path, dict], tmp_path: Path) -> None:
    ko, full = built
    code, out, _ = _run(kbuild, "info", "--json", str(ko))
    assert code == 0 and json.loads(out) == full
    sidecar = tmp_path / "livepatch-demo-4.json"
    sidecar.write_text(pretty_json(full))
    code, out2, _ = _run(kbuild, "info", "--json", str(sidecar))
    assert code == 0 and out2 == out


def test_info_errors(kbuild: click.Group, module_object: Callable[[], Path]) -> None:
    code, out, err = _run(kbuild, "info", str(module_object()))
    assert code == 1 and out == ""
    assert err.startswith("kbuild: error: ") and "no kbuilder metadata in this module" in err


def test_plan_text_and_json(kbuild: click.Group, series_file: Path, tmp_path: Path) -> None:
    loaded = tmp_path / "loaded.json"
    loaded.write_text(json.dumps([{"name": "livepatch_demo_3"}]))
    code, out, err = _run(kbuild, "plan", "--series", str(series_file), "--to", "1", "--loaded", str(loaded))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("load livepatch-demo-1.ko  # downgrade from level 3 to 1")
    assert lines[1].startswith("unload livepatch_demo_3   # replaced by livepatch_demo_1")
    code, out, _ = _run(kbuild, "plan", "--series", str(series_file), "--to", "3", "--loaded", str(loaded))
    assert code == 0 and out.startswith("nothing to do: level 3 of demo (cumulative) is in place")
    code, out, _ = _run(kbuild, "plan", "--series", str(series_file), "--to", "2", "--loaded", str(loaded),
                        "--incremental", "--json")
    data = json.loads(out)
    # The cumulative module of the same series is unwound before stacking.
    assert data["mode"] == "incremental"
    assert [a["action"] for a in data["actions"]] == ["disable", "unload", "load", "load"]


def test_plan_reads_sysfs_and_needs_no_patch_files(kbuild: click.Group, tmp_path: Path) -> None:
    from metadata_helpers import write_series

    series = write_series(tmp_path, patches=False)
    sysfs = tmp_path / "livepatch"
    (sysfs / "livepatch_demo_2").mkdir(parents=True)
    (sysfs / "livepatch_demo_2" / "enabled").write_text("1\n")
    code, out, err = _run(kbuild, "plan", "--series", str(series), "--to", "0", "--sysfs", str(sysfs))
    assert code == 0, err
    assert [line.split("  #")[0].strip() for line in out.splitlines()] == [
        "disable livepatch_demo_2", "unload livepatch_demo_2"]


def test_plan_errors(kbuild: click.Group, series_file: Path, tmp_path: Path) -> None:
    loaded = tmp_path / "loaded.json"
    loaded.write_text("[]")
    code, _, err = _run(kbuild, "plan", "--series", str(series_file), "--to", "7", "--loaded", str(loaded))
    assert code == 1 and "level 7 is not in the series" in err
    code, _, err = _run(kbuild, "plan", "--series", str(series_file), "--to", "1", "--loaded", str(loaded),
                        "--sysfs", str(tmp_path))
    assert code == 64 and "give --loaded or --sysfs, not both" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[patch]]\nid = "x"\nfile = "x.patch"\n')
    code, _, err = _run(kbuild, "plan", "--series", str(bad), "--to", "1", "--loaded", str(loaded))
    assert code == 1 and f"{bad}: patch 1 (x): give 'cves'" in err
