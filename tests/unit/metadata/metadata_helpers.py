"""Helpers of the metadata tests (imported by conftest.py and the tests): a patch series on disk, a `kbuild build`
report like kbuilder.build.build_report writes, and a relocatable object
standing in for a module (a .ko is an ELF relocatable object too)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

SERIES_TOML = """\
[series]
name = "demo"
description = "demo fixes for 6.1.0-test"

[[patch]]
id = "nft-verdict"
file = "patches/0001-nft-verdict.patch"
description = "nf_tables: reject QUEUE/DROP verdict parameters"
cves = [{ id = "CVE-2024-1086", cvss = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" }]

[[patch]]
id = "leak"
file = "patches/0002-leak.patch"
description = "nfnetlink_queue: fix a leak"
cves = [{ id = "CVE-2026-43451", cvss = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H" }]

[[patch]]
id = "cleanup"
file = "patches/0003-cleanup.patch"
description = "tcp: tidy a warning"
severity = "low"

[[patch]]
id = "sack"
file = "patches/0004-sack.patch"
description = "tcp: SACK panic"
cves = [
  { id = "CVE-2019-11477", cvss = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" },
  { id = "CVE-2019-11478", severity = "high" },
]
"""


def write_series(directory: Path, text: str = SERIES_TOML, *, patches: bool = True) -> Path:
    (directory / "patches").mkdir(parents=True, exist_ok=True)
    if patches:
        for name in ("0001-nft-verdict", "0002-leak", "0003-cleanup", "0004-sack"):
            (directory / "patches" / f"{name}.patch").write_text(f"--- a/x.c\n+++ b/x.c\n# {name}\n")
    path = directory / "series.toml"
    path.write_text(textwrap.dedent(text))
    return path


def build_report(name: str = "livepatch-demo-2", *, replace: bool = True) -> dict[str, Any]:
    """The shape of kbuilder.build.build_report's dict."""
    return {
        "format": "kbuilder-build",
        "version": 1,
        "module": {"name": name, "file": f"{name}.ko", "sha256": "0" * 64,
                   "vermagic": "6.1.0-test SMP preempt mod_unload ", "replace": replace},
        "target": {"release": "6.1.0-test", "build_id": "8d3f2a9c1b7e4f6a0c2d5e8f1a3b6c9d2e4f7a0b",
                   "config_sha256": "a" * 64, "compiler": "GCC: (Debian 12.2.0-14) 12.2.0"},
        "patches": [{"file": "0001-nft-verdict.patch", "sha256": "1" * 64, "files": ["net/netfilter/x.c"]},
                    {"file": "0002-leak.patch", "sha256": "2" * 64, "files": ["net/netfilter/y.c"]}],
        "functions": [
            {"name": "nft_verdict_init", "object": "vmlinux", "sympos": 0, "source": "net/netfilter/nf_tables_api.o"},
            {"name": "nfqnl_recv_verdict", "object": "nfnetlink_queue", "sympos": 0,
             "source": "net/netfilter/nfnetlink_queue.o"},
            {"name": "__nf_queue", "object": "vmlinux", "sympos": 2, "source": "net/netfilter/nf_queue.o"},
        ],
        "callbacks": {"vmlinux": {"post_unpatch": "__kbuilder_cb_1", "pre_patch": "__kbuilder_cb_0"}},
        "objects": [],
        "livepatch_relocations": 3,
        "tool": {"kbuilder": "0.1.0", "gcc": "gcc (Debian 12.2.0-14) 12.2.0"},
    }


def diff_reports() -> list[dict[str, Any]]:
    """The per-object diff reports' fields from_build reads."""
    return [
        {"arch": "x86_64", "objname": "vmlinux", "functions": [
            {"name": "nft_verdict_init", "objname": "vmlinux", "sympos": 0, "old_size": 412, "new_size": 436},
            {"name": "__nf_queue", "objname": "vmlinux", "sympos": 2, "old_size": 880, "new_size": 880}]},
        {"arch": "x86_64", "objname": "nfnetlink_queue", "functions": [
            {"name": "nfqnl_recv_verdict", "objname": "nfnetlink_queue", "sympos": 0, "old_size": 300,
             "new_size": 316}]},
    ]
