"""kbuilder.metadata.model: the document, its schema, canonical JSON, the
copy embedded in the module and loading from .ko / .json."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from metadata_helpers import build_report, diff_reports

from kbuilder.elf import read_object, serialize
from kbuilder.errors import InputError
from kbuilder.metadata.model import (
    SECTION, Fix, MetadataError, Mode, canonical_json, embed, extract, finalize, for_series_build, from_build,
    load, pretty_json, schema, validate,
)
from kbuilder.metadata.series import load_series, select


def _series_doc(series_file: Path, level: int = 4, min_severity: str | None = "high") -> dict[str, Any]:
    series = load_series(series_file)
    selection = select(series, min_severity, level)
    meta = for_series_build(build_report(f"livepatch-demo-{level}"), series, selection, mode="cumulative",
                            diff_reports=diff_reports())
    return meta.to_json()


def test_schema_is_versioned_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    data = schema()
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["$id"].endswith("/kbuilder-metadata/1")
    Draft202012Validator.check_schema(data)


def test_cumulative_series_document(series_file: Path) -> None:
    doc = _series_doc(series_file)
    validate(doc)
    assert doc["schema"] == "kbuilder-metadata/1"
    assert doc["target"] == {"kernel_release": "6.1.0-test", "arch": "x86_64",
                             "vmlinux_build_id": "8d3f2a9c1b7e4f6a0c2d5e8f1a3b6c9d2e4f7a0b",
                             "config_sha256": "a" * 64, "compiler": "GCC: (Debian 12.2.0-14) 12.2.0"}
    assert doc["module"] == {"name": "livepatch_demo_4", "file": "livepatch-demo-4.ko",
                             "vermagic": "6.1.0-test SMP preempt mod_unload ", "replace": True}
    assert doc["mode"] == {"kind": "cumulative", "level": 4, "series": "demo",
                           "supersedes": ["livepatch_demo_1", "livepatch_demo_2", "livepatch_demo_3"]}
    assert [(f["object"], f["name"], f["sympos"], f["old_size"], f["new_size"]) for f in doc["functions"]] == [
        ("nfnetlink_queue", "nfqnl_recv_verdict", 0, 300, 316),
        ("vmlinux", "__nf_queue", 2, 880, 880),
        ("vmlinux", "nft_verdict_init", 0, 412, 436)]
    assert [(f["id"], f["severity"], f["patch"]) for f in doc["fixes"]] == [
        ("CVE-2024-1086", "HIGH", "nft-verdict"), ("CVE-2019-11477", "HIGH", "sack"),
        ("CVE-2019-11478", "HIGH", "sack")]
    assert doc["fixes"][0]["cvss"] == [{"version": "3.1", "vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
                                        "base_score": 7.8, "severity": "HIGH"}]
    assert doc["fixes"][2]["severity_source"] == "stated" and doc["fixes"][2]["cvss"] == []
    assert doc["max_severity"] == "HIGH" and doc["max_base_score"] == 7.8
    assert [(x["patch"], x["reason"]) for x in doc["left_out"]] == [
        ("leak", "severity medium is below the minimum high"), ("cleanup", "severity low is below the minimum high")]
    assert doc["states"] == []
    assert doc["callbacks"] == {"vmlinux": ["pre_patch", "post_unpatch"]}
    prov = doc["provenance"]
    assert prov["tool"] == "kbuilder 0.1.0" and prov["compiler"] == "gcc (Debian 12.2.0-14) 12.2.0"
    assert prov["patches"][0] == {"file": "0001-nft-verdict.patch", "sha256": "1" * 64, "id": "nft-verdict"}
    assert prov["series"] == {"file": "series.toml", "name": "demo",
                              "sha256": hashlib.sha256(series_file.read_bytes()).hexdigest()}


def test_incremental_series_document(series_file: Path) -> None:
    series = load_series(series_file)
    selection = select(series, None, 4)
    patch = series.patch("cleanup")
    doc = for_series_build(build_report("livepatch-demo-cleanup", replace=False), series, selection,
                           mode="incremental", patch=patch, arch="x86_64").to_json()
    validate(doc)
    base = series.state_base
    assert doc["mode"] == {"kind": "incremental", "position": 3, "series": "demo", "patch": "cleanup", "requires": [
        {"module": "livepatch_demo_nft_verdict", "state": base + 1, "patch": "nft-verdict"},
        {"module": "livepatch_demo_leak", "state": base + 2, "patch": "leak"}]}
    assert doc["states"] == [{"id": base + 3, "version": 1}]
    assert doc["fixes"] == [{"kind": "fix", "description": "tcp: tidy a warning", "severity": "LOW",
                             "patch": "cleanup"}]
    assert doc["max_severity"] == "LOW" and doc["max_base_score"] is None
    assert doc["functions"][0]["old_size"] is None      # no diff reports: sizes unknown
    with pytest.raises(ValueError):
        for_series_build(build_report(), series, selection, mode="incremental", arch="x86_64")


def test_plain_build_defaults() -> None:
    meta = from_build(build_report("livepatch-fix"), arch="aarch64", states=[(7, 2)],
                      fixes=[Fix("fix", None, description="backported fix")])
    doc = meta.to_json()
    validate(doc)
    assert doc["mode"] == {"kind": "cumulative", "level": None, "supersedes": [], "series": None}
    assert doc["states"] == [{"id": 7, "version": 2}] and doc["max_severity"] is None
    stacked = from_build(build_report("x", replace=False), arch="x86_64").to_json()
    assert stacked["mode"]["kind"] == "incremental" and stacked["module"]["replace"] is False
    with pytest.raises(ValueError, match="arch"):
        from_build(build_report())


def test_canonical_json_is_deterministic(series_file: Path) -> None:
    first = canonical_json(_series_doc(series_file))
    second = canonical_json(_series_doc(series_file))
    assert first == second
    assert first == json.dumps(json.loads(first), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    assert json.loads(first) == _series_doc(series_file)
    assert list(json.loads(first)) == sorted(json.loads(first))
    assert pretty_json(_series_doc(series_file)) == pretty_json(json.loads(first))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["target"].update(arch="mips"), "at target/arch: 'mips' is not one of"),
    (lambda d: d["mode"].update(level=0), "at mode/level: 0 is less than the minimum of 1"),
    (lambda d: d["fixes"][0].update(id="CVE-1"), "at fixes/0/id: 'CVE-1' does not match"),
    (lambda d: d["functions"][0].pop("sympos"), "at functions/0: 'sympos' is a required property"),
    (lambda d: d.update(extra=1), "at (document): Additional properties are not allowed ('extra' was unexpected)"),
    (lambda d: d["states"].append({"id": 0, "version": 1}), "at states/0/id: 0 is less than the minimum of 1"),
    (lambda d: d["callbacks"].update(vmlinux=["pre_load"]), "at callbacks/vmlinux/0: 'pre_load' is not one of"),
    (lambda d: d.update(schema="kbuilder-metadata/2"), "at schema: 'kbuilder-metadata/1' was expected"),
])
def test_validation_names_the_place(series_file: Path, edit: Callable[[dict[str, Any]], None],
                                    message: str) -> None:
    doc = _series_doc(series_file)
    edit(doc)
    with pytest.raises(MetadataError) as info:
        validate(doc)
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors
    assert isinstance(info.value, InputError)


def test_embed_extract_and_finalize(series_file: Path, module_object: Callable[[], Path]) -> None:
    doc = _series_doc(series_file)
    ko = read_object(module_object())
    assert extract(ko) is None
    blob, full = finalize(ko, doc)
    sec = ko.find_section(SECTION)
    assert sec is not None and sec.flags == 0            # not SHF_ALLOC: never loaded into memory
    embedded = extract(read_object_bytes(blob))
    assert embedded is not None and "sha256" not in embedded["module"]
    assert full["module"]["sha256"] == hashlib.sha256(blob).hexdigest() and full["module"]["size"] == len(blob)
    assert {k: v for k, v in full.items() if k != "module"} == {k: v for k, v in embedded.items() if k != "module"}
    assert canonical_json(embedded) == sec.data
    # Embedding again replaces the copy rather than adding a section.
    embed(ko, doc)
    assert [s.name for s in ko.sections].count(SECTION) == 1
    # Same inputs, same bytes.
    again, full_again = finalize(read_object(module_object()), copy.deepcopy(doc))
    assert again == blob and full_again == full


def read_object_bytes(blob: bytes) -> Any:
    from kbuilder.elf import parse_object

    return parse_object(blob, "<built>")


def test_load_from_ko_and_json(series_file: Path, module_object: Callable[[], Path], tmp_path: Path) -> None:
    doc = _series_doc(series_file)
    blob, full = finalize(read_object(module_object()), doc)
    ko = tmp_path / "livepatch-demo-4.ko"
    ko.write_bytes(blob)
    assert load(ko) == full                               # hash and size computed from the file
    meta = tmp_path / "meta.json"
    meta.write_text(pretty_json(full))
    assert load(meta) == full
    report = tmp_path / "report.json"
    report.write_text(json.dumps({**build_report(), "metadata": full}))
    assert load(report) == full


def test_load_errors(module_object: Callable[[], Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no kbuilder metadata in this module"):
        load(module_object())
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.ko")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(build_report()))
    with pytest.raises(InputError, match="without metadata"):
        load(old)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "klp-meta/1"}')
    with pytest.raises(InputError, match="not kbuilder metadata"):
        load(other)
    junk = tmp_path / "junk.json"
    junk.write_text("{nope")
    with pytest.raises(InputError, match="neither an ELF module nor JSON"):
        load(junk)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "kbuilder-metadata/1"}))
    with pytest.raises(MetadataError, match="is a required property"):
        load(bad)
    ko = read_object(module_object())
    from kbuilder.elf.constants import SHT
    from kbuilder.elf.model import Section
    ko.add_section(Section(SECTION, SHT.PROGBITS, 0, b"not json", 8, 1))
    path = tmp_path / "corrupt.ko"
    path.write_bytes(serialize(ko))
    with pytest.raises(InputError, match="does not hold JSON"):
        load(path)


def test_mode_json_shapes() -> None:
    assert Mode("cumulative", level=3, supersedes=["a"], series="s").to_json() == {
        "kind": "cumulative", "level": 3, "supersedes": ["a"], "series": "s"}
    assert Mode("incremental").to_json() == {"kind": "incremental", "position": None, "requires": [],
                                             "series": None, "patch": None}
