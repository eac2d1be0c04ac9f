"""The machine-readable description of a diff: the `--json` report, and the
same document embedded in the output object for the module stage.

The embedded copy lives in `.discard.kbuilder.manifest` (NUL-terminated
JSON): `ld -r` keeps and concatenates such sections when diff outputs are
linked together, and the kernel's module linker script discards `.discard.*`
from the final module. Format described in docs/diff.md.
"""

from __future__ import annotations

import json
from typing import Any

from kbuilder import __version__
from kbuilder.diff import DiffResult
from kbuilder.elf.constants import SHT
from kbuilder.elf.model import ElfObject, Section

FORMAT = "kbuilder-diff"
FORMAT_VERSION = 1
MANIFEST_SECTION = ".discard.kbuilder.manifest"


def report_dict(result: DiffResult, output_path: str | None) -> dict[str, Any]:
    facts = result.facts
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tool": f"kbuilder {__version__}",
        "orig": result.orig,
        "patched": result.patched,
        "output": output_path if result.status == "patch" else None,
        "arch": result.arch,
        "objname": result.objname,
        "source": result.source,
        "status": result.status,
        "changed": result.changed,
        "new": result.new,
        "included_functions": result.included_functions,
        "callbacks": result.callbacks,
        "ignored": result.ignored,
        "functions": result.functions,
        "refusals": [{"kind": r.kind, "message": r.message} for r in result.refusals],
        "warnings": result.warnings,
        "notes": result.notes,
        "klp_symbols": [dict(vars(k)) if hasattr(k, "__dict__") else _slots(k) for k in facts.klp_symbols]
        if facts else [],
        "klp_relocations": facts.klp_relocations if facts else [],
        "ftrace_sites": facts.ftrace_sites if facts else 0,
    }


def _slots(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def embed_manifest(out: ElfObject, report: dict[str, Any]) -> None:
    manifest = {k: v for k, v in report.items() if k not in ("orig", "patched", "output", "notes")}
    blob = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() + b"\0"
    out.add_section(Section(MANIFEST_SECTION, SHT.PROGBITS, 0, blob, len(blob), 1))


def read_manifests(obj: ElfObject) -> list[dict[str, Any]]:
    """All diff manifests in an object (several after `ld -r`)."""
    sec = obj.find_section(MANIFEST_SECTION)
    if sec is None:
        return []
    return [json.loads(part) for part in sec.data.split(b"\0") if part.strip()]
