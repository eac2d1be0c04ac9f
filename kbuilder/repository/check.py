"""Whether an artifact's files say what the index says about them."""

from __future__ import annotations

import copy
import json
from typing import Any

from kbuilder.errors import InputError
from kbuilder.metadata.model import MetadataError, validate
from kbuilder.repository.index import Artifact


def parse_metadata(blob: bytes, *, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"metadata is not JSON: {exc}", path=where) from None
    if not isinstance(doc, dict):
        raise InputError("metadata is not a JSON object", path=where)
    try:
        validate(doc, path=where)
    except MetadataError as exc:
        raise InputError(f"metadata does not match the schema ({'; '.join(exc.errors[:3])})", path=where) \
            from None
    return doc


def metadata_problems(artifact: Artifact, doc: dict[str, Any]) -> list[str]:
    """How the metadata document disagrees with the index entry ([] when it agrees)."""
    out = []
    module = doc.get("module", {})
    target = doc.get("target", {})
    if module.get("sha256") != artifact.module.sha256 or module.get("size") != artifact.module.size:
        out.append(f"describes a module with sha256 {module.get('sha256')} and size {module.get('size')}, "
                   f"the index has {artifact.module.sha256} and {artifact.module.size}")
    for key in ("kernel_release", "vmlinux_build_id", "arch"):
        if target.get(key) != artifact.target.get(key):
            out.append(f"target.{key} is {target.get(key)!r}, the index says {artifact.target.get(key)!r}")
    if doc.get("mode") != artifact.mode:
        out.append("its mode differs from the index's")
    if module.get("name") != artifact.module_name:
        out.append(f"module.name is {module.get('name')!r}, the index says {artifact.module_name!r}")
    if module.get("replace") != artifact.replace:
        out.append("module.replace differs from the index's")
    if doc.get("max_severity") != artifact.max_severity:
        out.append(f"max_severity is {doc.get('max_severity')!r}, the index says {artifact.max_severity!r}")
    return out


def embedded_problem(blob: bytes, doc: dict[str, Any], *, where: str) -> str | None:
    """How the metadata embedded in the module `blob` differs from `doc`
    (None when it matches, or when the module carries no copy)."""
    from kbuilder.elf.reader import parse_object
    from kbuilder.metadata.model import extract
    from kbuilder.repository.modsign import strip_signature

    try:
        embedded = extract(parse_object(strip_signature(blob), where))
    except InputError as exc:
        return f"cannot read the module's embedded metadata: {exc.message}"
    if embedded is None:
        return None
    expected = copy.deepcopy(doc)
    expected.get("module", {}).pop("sha256", None)
    expected.get("module", {}).pop("size", None)
    if embedded != expected:
        keys = sorted(k for k in set(embedded) | set(expected) if embedded.get(k) != expected.get(k))
        return "the metadata embedded in the module differs from the metadata file (" + ", ".join(keys) + ")"
    return None
