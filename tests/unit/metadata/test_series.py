"""kbuilder.metadata.series: the TOML series file, its checks and the
--min-severity / --level selection."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from metadata_helpers import write_series

from kbuilder.errors import InputError
from kbuilder.metadata.series import (
    DEFAULT_STATE_BASE, SeriesError, kernel_name, load_series, select,
)


def test_load_series(series_file: Path) -> None:
    series = load_series(series_file)
    assert series.name == "demo" and series.mode == "cumulative"
    assert [p.id for p in series.patches] == ["nft-verdict", "leak", "cleanup", "sack"]
    assert [p.level for p in series.patches] == [1, 2, 3, 4]
    assert series.max_level == 4 and series.levels == [1, 2, 3, 4]
    first = series.patches[0]
    assert first.file == series_file.parent / "patches/0001-nft-verdict.patch"
    assert first.cves[0].base_score == Decimal("7.8") and first.severity == "HIGH"
    assert first.max_base_score == Decimal("7.8")
    assert series.patch("leak").severity == "MEDIUM"
    assert series.patch("cleanup").severity == "LOW" and series.patch("cleanup").max_base_score is None
    sack = series.patch("sack")
    assert [c.severity for c in sack.cves] == ["HIGH", "HIGH"]
    assert sack.cves[1].stated and not sack.cves[0].stated
    assert sack.cves[1].to_json() == {"id": "CVE-2019-11478", "cvss": [], "severity": "HIGH",
                                      "severity_source": "stated"}


def test_module_names_and_states(series_file: Path) -> None:
    series = load_series(series_file)
    assert series.cumulative_module(2) == "livepatch-demo-2"
    assert kernel_name(series.cumulative_module(2)) == "livepatch_demo_2"
    assert kernel_name("livepatch-demo-2.ko") == "livepatch_demo_2"
    assert series.incremental_module(series.patches[1]) == "livepatch-demo-leak"
    assert series.state_id(series.patches[0]) == DEFAULT_STATE_BASE + 1
    assert series.state_id(series.patches[3]) == DEFAULT_STATE_BASE + 4


def test_patch_severity_is_the_highest_of_its_cves(tmp_path: Path) -> None:
    path = write_series(tmp_path, """\
        [[patch]]
        id = "mixed"
        file = "patches/0001-nft-verdict.patch"
        severity = "low"
        cves = [
          { id = "CVE-2016-3156", cvss = "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H" },
          { id = "CVE-2016-10229", cvss = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" },
          { id = "CVE-2016-5195", cvss = "AV:L/AC:L/Au:N/C:C/I:C/A:C" },
          { id = "CVE-2099-0001", cvss = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" },
        ]
        """)
    patch = load_series(path).patches[0]
    assert [c.severity for c in patch.cves] == ["MEDIUM", "CRITICAL", "HIGH", "CRITICAL"]
    assert patch.severity == "CRITICAL" and patch.max_base_score == Decimal("9.8")


def test_select_by_severity_and_level(series_file: Path) -> None:
    series = load_series(series_file)
    everything = select(series)
    assert [p.id for p in everything.selected] == ["nft-verdict", "leak", "cleanup", "sack"]
    assert everything.left_out == [] and everything.level == 4
    high = select(series, "HIGH", 4)
    assert [p.id for p in high.selected] == ["nft-verdict", "sack"]
    assert [(p.id, why) for p, why in high.left_out] == [
        ("leak", "severity medium is below the minimum high"),
        ("cleanup", "severity low is below the minimum high")]
    two = select(series, "medium", 2)
    assert [p.id for p in two.selected] == ["nft-verdict", "leak"]
    assert [(p.id, why) for p, why in two.left_out] == [
        ("cleanup", "level 3 is above the target level 2"), ("sack", "level 4 is above the target level 2")]
    assert two.to_json()["left_out"][0] == {"patch": "cleanup", "file": "patches/0003-cleanup.patch", "level": 3,
                                            "severity": "LOW",
                                            "reason": "level 3 is above the target level 2"}
    assert select(series, None, 0).selected == []
    with pytest.raises(InputError, match="level 5 is not in the series"):
        select(series, None, 5)
    with pytest.raises(InputError, match="unknown severity 'urgent'"):
        select(series, "urgent")


def test_explicit_levels_group_patches(tmp_path: Path) -> None:
    path = write_series(tmp_path, """\
        [[patch]]
        id = "a"
        file = "patches/0001-nft-verdict.patch"
        severity = "high"
        [[patch]]
        id = "b"
        file = "patches/0002-leak.patch"
        severity = "medium"
        level = 1
        [[patch]]
        id = "c"
        file = "patches/0003-cleanup.patch"
        severity = "low"
        """)
    series = load_series(path)
    assert [p.level for p in series.patches] == [1, 1, 2]
    assert series.name == "series"            # the file's stem when [series] has no name
    assert [p.id for p in select(series, None, 1).selected] == ["a", "b"]


def _errors(tmp_path: Path, text: str, *, patches: bool = True) -> list[str]:
    path = write_series(tmp_path, text, patches=patches)
    with pytest.raises(SeriesError) as info:
        load_series(path)
    assert all(line.startswith(str(path) + ": ") for line in info.value.errors), info.value.errors
    assert str(info.value) == "\n".join(info.value.errors)
    return [line[len(str(path)) + 2:] for line in info.value.errors]


def test_every_problem_is_one_line_naming_the_entry(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """\
        colour = "blue"
        [series]
        name = "bad name!"
        mode = "sideways"
        [[patch]]
        id = "one"
        file = "patches/0001-nft-verdict.patch"
        cves = [{ id = "CVE-2024-1086", cvss = "CVSS:3.1/AV:X/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" }]
        [[patch]]
        file = "patches/missing.patch"
        severity = "urgent"
        [[patch]]
        id = "one"
        file = "patches/0002-leak.patch"
        [[patch]]
        id = "four"
        file = "patches/0003-cleanup.patch"
        severity = "low"
        level = 3
        extra = 1
        [[patch]]
        id = "five"
        file = "patches/0004-sack.patch"
        cves = [{ id = "CVE-24-1" }, { id = "CVE-2019-11477", cvss = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", severity = "low" }]
        """)
    assert errors == [
        "unknown top-level key 'colour' (expected [series] and [[patch]])",
        "[series]: name 'bad name!' must be 1-32 letters, digits, '-' or '_'",
        "[series]: mode 'sideways' must be 'cumulative' or 'incremental'",
        "patch 1 (one): CVE-2024-1086: CVSS:3.1/AV:X/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H: metric AV has invalid "
        "value X (expected N, A, L, P)",
        "patch 2: missing 'id'",
        f"patch 2: file not found: patches/missing.patch (looked for {tmp_path / 'patches/missing.patch'})",
        "patch 2: severity 'urgent' must be one of none, low, medium, high, critical",
        "patch 3 (one): give 'cves' (with CVSS vectors or severities) or a 'severity'",
        "patch 4 (four): unknown key 'extra' (expected cves, description, file, id, level, severity)",
        "patch 5 (five): cves[0]: id 'CVE-24-1' is not a CVE id (CVE-YYYY-NNNN)",
        "patch 5 (five): CVE-2019-11477: stated severity low contradicts the CVSS vector's high (7.5); "
        "give one or the other",
    ]


def test_level_order_errors(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """\
        [[patch]]
        id = "a"
        file = "patches/0001-nft-verdict.patch"
        severity = "high"
        level = 2
        [[patch]]
        id = "b"
        file = "patches/0002-leak.patch"
        severity = "high"
        [[patch]]
        id = "c"
        file = "patches/0003-cleanup.patch"
        severity = "high"
        level = 1
        [[patch]]
        id = "a"
        file = "patches/0004-sack.patch"
        severity = "high"
        level = 0
        """)
    assert errors == [
        "patch 1 (a): level 2 skips level 1",
        "patch 3 (c): level 1 is below the previous patch's level 3 (levels must not decrease)",
        "patch 4 (a): level must be an integer of 1 or more",
    ]


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="series file not found"):
        load_series(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[patch]\nid = 1\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_series(bad)
    assert _errors(tmp_path, "[series]\nname = \"x\"\n") == [
        "the series lists no patches (add [[patch]] entries)"]


def test_plan_needs_no_patch_files(tmp_path: Path) -> None:
    path = write_series(tmp_path, patches=False)
    with pytest.raises(SeriesError, match="file not found"):
        load_series(path)
    assert len(load_series(path, check_files=False).patches) == 4
