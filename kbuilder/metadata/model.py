"""The metadata document of one livepatch module (schema kbuilder-metadata/1,
`schema.json` beside this file, described in docs/metadata.md).

* `from_build` / `for_series_build` map `kbuild build`'s report (plus the
  series, when there is one) to a `Metadata`;
* `Metadata.to_json()` is the document, `canonical_json()` its canonical
  bytes (sorted keys, no whitespace, UTF-8, no timestamps), so the same inputs
  give the same bytes;
* `embed` / `extract` put the canonical document into / read it from a
  dedicated non-alloc section `.kbuilder.metadata` of the module, and
  `finalize` embeds, serialises and returns the module bytes with the full
  document (which also carries the module file's sha256 and size);
* `load` reads a document from a `.json` file or a `.ko`, `validate` checks
  one against the schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from kbuilder.errors import InputError
from kbuilder.metadata.cvss import severity_rank

if TYPE_CHECKING:
    from kbuilder.elf.model import ElfObject
    from kbuilder.metadata.series import Selection, Series, SeriesPatch

SCHEMA_ID = "kbuilder-metadata/1"
SECTION = ".kbuilder.metadata"
CALLBACK_ORDER = ("pre_patch", "post_patch", "pre_unpatch", "post_unpatch")


class MetadataError(InputError):
    """A document that does not match the schema; `errors` has one line per
    problem, each naming where in the document it is."""

    kind = "bad-metadata"

    def __init__(self, errors: list[str], *, path: str | None = None) -> None:
        super().__init__("metadata does not match the schema: " + "; ".join(errors), path=path)
        self.errors = errors


# ---------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class Target:
    kernel_release: str
    arch: str
    vmlinux_build_id: str
    config_sha256: str
    compiler: str

    def to_json(self) -> dict[str, Any]:
        return {"kernel_release": self.kernel_release, "arch": self.arch,
                "vmlinux_build_id": self.vmlinux_build_id, "config_sha256": self.config_sha256,
                "compiler": self.compiler}


@dataclass(slots=True)
class ModuleInfo:
    name: str                 # the kernel's name: underscores
    file: str
    vermagic: str
    replace: bool
    sha256: str | None = None  # of the module file; not in the embedded copy
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "file": self.file, "vermagic": self.vermagic,
                               "replace": self.replace}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        if self.size is not None:
            out["size"] = self.size
        return out


@dataclass(slots=True)
class Requirement:
    module: str
    state: int | None
    patch: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"module": self.module, "state": self.state}
        if self.patch is not None:
            out["patch"] = self.patch
        return out


@dataclass(slots=True)
class Mode:
    """`cumulative` (replace on; `level` and the modules it `supersedes`) or
    `incremental` (replace off; its `position` in the stack and the modules
    it `requires`, in load order)."""

    kind: str
    level: int | None = None
    supersedes: list[str] = field(default_factory=list)
    position: int | None = None
    requires: list[Requirement] = field(default_factory=list)
    series: str | None = None
    patch: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.kind == "cumulative":
            return {"kind": "cumulative", "level": self.level, "supersedes": list(self.supersedes),
                    "series": self.series}
        return {"kind": "incremental", "position": self.position, "requires": [r.to_json() for r in self.requires],
                "series": self.series, "patch": self.patch}


@dataclass(slots=True)
class Function:
    object: str
    name: str
    sympos: int
    old_size: int | None = None
    new_size: int | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": self.object, "name": self.name, "sympos": self.sympos,
                               "old_size": self.old_size, "new_size": self.new_size}
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(slots=True)
class Fix:
    """A CVE (`kind` "cve", with its CVSS scores) or a fix without a CVE
    (`kind` "fix", described in free text)."""

    kind: str
    severity: str | None
    patch: str | None = None
    id: str | None = None
    cvss: list[dict[str, Any]] = field(default_factory=list)
    severity_source: str = "cvss"
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.kind == "cve":
            out: dict[str, Any] = {"kind": "cve", "id": self.id, "cvss": copy.deepcopy(self.cvss),
                                   "severity": self.severity, "severity_source": self.severity_source,
                                   "patch": self.patch}
            if self.description:
                out["description"] = self.description
            return out
        return {"kind": "fix", "description": self.description or "", "severity": self.severity,
                "patch": self.patch}

    @property
    def max_base_score(self) -> float | None:
        scores = [c["base_score"] for c in self.cvss if c.get("base_score") is not None]
        return max(scores) if scores else None


@dataclass(slots=True)
class State:
    id: int
    version: int
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "version": self.version}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(slots=True)
class Provenance:
    tool: str
    patches: list[dict[str, str]]
    compiler: str | None = None
    series: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tool": self.tool, "patches": [dict(p) for p in self.patches], "series": self.series}
        if self.compiler is not None:
            out["compiler"] = self.compiler
        return out


@dataclass(slots=True)
class Metadata:
    target: Target
    module: ModuleInfo
    mode: Mode
    functions: list[Function]
    fixes: list[Fix]
    states: list[State]
    callbacks: dict[str, list[str]]
    provenance: Provenance
    left_out: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        rated = [f.severity for f in self.fixes if f.severity]
        scores = [s for f in self.fixes if (s := f.max_base_score) is not None]
        return {
            "schema": SCHEMA_ID,
            "target": self.target.to_json(),
            "module": self.module.to_json(),
            "mode": self.mode.to_json(),
            "functions": [f.to_json() for f in sorted(self.functions, key=lambda f: (f.object, f.name, f.sympos))],
            "fixes": [f.to_json() for f in self.fixes],
            "max_severity": max(rated, key=severity_rank) if rated else None,
            "max_base_score": max(scores) if scores else None,
            "left_out": [dict(x) for x in self.left_out],
            "states": [s.to_json() for s in sorted(self.states, key=lambda s: s.id)],
            "callbacks": {obj: [k for k in CALLBACK_ORDER if k in kinds]
                          for obj, kinds in sorted(self.callbacks.items())},
            "provenance": self.provenance.to_json(),
        }


def canonical_json(doc: Metadata | dict[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the embedded form and
    the form to sign."""
    data = doc.to_json() if isinstance(doc, Metadata) else doc
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def pretty_json(doc: Metadata | dict[str, Any]) -> str:
    """The readable form of the same document (sorted keys, 2-space indent)."""
    data = doc.to_json() if isinstance(doc, Metadata) else doc
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------
# Schema validation
# ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("kbuilder.metadata").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def validate(doc: Metadata | dict[str, Any], *, path: str | None = None) -> None:
    """Raise `MetadataError` listing where `doc` breaks the schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    data = doc.to_json() if isinstance(doc, Metadata) else doc
    validator = Draft202012Validator(schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for detail in _explain(error, best_match):
            where = "/".join(str(p) for p in detail.absolute_path) or "(document)"
            problems.append(f"at {where}: {detail.message}")
    if problems:
        raise MetadataError(problems, path=path)


def _explain(error: Any, best_match: Any) -> list[Any]:
    """For a `oneOf` failure, the errors of the alternative the document
    meant (the one whose `kind` matches), not a vague summary."""
    if not error.context:
        return [error]
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    meant = [errs for errs in branches.values()
             if not any(e.validator == "const" and list(e.relative_path) == ["kind"] for e in errs)]
    if len(meant) == 1:
        return meant[0]
    return [best_match(error.context)]


# ---------------------------------------------------------------------------
# From a build
# ---------------------------------------------------------------------------

def from_build(report: dict[str, Any], *, arch: str | None = None,
               diff_reports: list[dict[str, Any]] | None = None, mode: Mode | None = None,
               fixes: list[Fix] | None = None, states: Iterable[tuple[int, int]] = (),
               left_out: list[dict[str, Any]] | None = None, series: Series | None = None,
               patch_ids: dict[str, str] | None = None) -> Metadata:
    """The metadata of a module from `kbuild build`'s report dict
    (kbuilder.build.build_report).

    `diff_reports` (the per-object diff reports `build_livepatch` has) give
    the architecture and the old and new size of each function; without
    them pass `arch`. `mode` defaults to cumulative (no level) when the
    module replaces and to incremental (no requirements) when it stacks.
    `patch_ids` maps a patch file name to its series id.
    """
    from kbuilder.metadata.series import kernel_name

    diff_reports = diff_reports or []
    if arch is None:
        arches = {r.get("arch") for r in diff_reports if r.get("arch")}
        if len(arches) != 1:
            raise ValueError("from_build needs arch= (or diff_reports naming one architecture)")
        arch = str(arches.pop())
    sizes: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for r in diff_reports:
        for fn in r.get("functions", []):
            sizes[(str(fn.get("objname", r.get("objname"))), str(fn["name"]))] = (fn.get("old_size"),
                                                                                  fn.get("new_size"))
    module = report["module"]
    target = report["target"]
    replace = bool(module.get("replace", True))
    if mode is None:
        mode = Mode("cumulative") if replace else Mode("incremental")
    functions = []
    for fn in report.get("functions", []):
        old, new = sizes.get((fn["object"], fn["name"]), (None, None))
        functions.append(Function(fn["object"], fn["name"], int(fn["sympos"]), old, new, fn.get("source")))
    callbacks = {obj: sorted(kinds, key=CALLBACK_ORDER.index) for obj, kinds in report.get("callbacks", {}).items()}
    tool = report.get("tool", {})
    patch_ids = patch_ids or {}
    patches = []
    for p in report.get("patches", []):
        entry = {"file": p["file"], "sha256": p["sha256"]}
        if p["file"] in patch_ids:
            entry["id"] = patch_ids[p["file"]]
        patches.append(entry)
    series_info = None
    if series is not None:
        series_info = {"file": series.path.name, "name": series.name,
                       "sha256": hashlib.sha256(series.path.read_bytes()).hexdigest()}
    return Metadata(
        target=Target(target["release"], arch, target.get("build_id", ""), target["config_sha256"],
                      target.get("compiler", "")),
        module=ModuleInfo(kernel_name(module["name"]), module.get("file", f"{module['name']}.ko"),
                          module.get("vermagic", ""), replace),
        mode=mode,
        functions=functions,
        fixes=list(fixes or []),
        states=[State(int(i), int(v)) for i, v in states],
        callbacks=callbacks,
        provenance=Provenance(f"kbuilder {tool.get('kbuilder', '')}".strip(), patches, tool.get("gcc"),
                              series_info),
        left_out=list(left_out or []),
    )


def fixes_from_patches(patches: Iterable[SeriesPatch]) -> list[Fix]:
    """One fix per CVE of each patch, and one free-text fix for a patch
    without CVEs, in series order."""
    out = []
    for patch in patches:
        if not patch.cves:
            out.append(Fix("fix", patch.stated_severity, patch.id,
                           description=patch.description or patch.id))
        for cve in patch.cves:
            data = cve.to_json()
            out.append(Fix("cve", cve.severity, patch.id, id=cve.id, cvss=data["cvss"],
                           severity_source=data["severity_source"], description=patch.description or None))
    return out


def cumulative_mode(series: Series, level: int) -> Mode:
    from kbuilder.metadata.series import kernel_name

    earlier = [kernel_name(series.cumulative_module(n)) for n in series.levels if n < level]
    return Mode("cumulative", level=level, supersedes=earlier, series=series.name)


def incremental_mode(series: Series, selection: Selection, patch: SeriesPatch) -> Mode:
    """The mode of `patch`'s module: every selected patch before it must be
    loaded first, each identified by its module and its klp_state id."""
    from kbuilder.metadata.series import kernel_name

    position = [p.id for p in selection.selected].index(patch.id)
    requires = [Requirement(kernel_name(series.incremental_module(p)), series.state_id(p), p.id)
                for p in selection.selected[:position]]
    return Mode("incremental", position=position + 1, requires=requires, series=series.name, patch=patch.id)


def for_series_build(report: dict[str, Any], series: Series, selection: Selection, *, mode: str,
                     patch: SeriesPatch | None = None, arch: str | None = None,
                     diff_reports: list[dict[str, Any]] | None = None) -> Metadata:
    """The metadata of one module of a series build: the cumulative module of
    `selection.level` (`mode="cumulative"`), or the incremental module of
    `patch` (`mode="incremental"`), which sets klp_state
    (series.state_id(patch), 1)."""
    left_out = [x for x in selection.to_json()["left_out"]]
    ids = {p.file.name: p.id for p in series.patches}
    if mode == "cumulative":
        return from_build(report, arch=arch, diff_reports=diff_reports,
                          mode=cumulative_mode(series, selection.level),
                          fixes=fixes_from_patches(selection.selected), left_out=left_out, series=series,
                          patch_ids=ids)
    if mode != "incremental" or patch is None:
        raise ValueError("an incremental series build needs mode='incremental' and patch=")
    return from_build(report, arch=arch, diff_reports=diff_reports,
                      mode=incremental_mode(series, selection, patch), fixes=fixes_from_patches([patch]),
                      states=[(series.state_id(patch), 1)], left_out=left_out, series=series, patch_ids=ids)


# ---------------------------------------------------------------------------
# The copy inside the module
# ---------------------------------------------------------------------------

def _embedded_form(doc: Metadata | dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(doc.to_json() if isinstance(doc, Metadata) else doc)
    data["module"].pop("sha256", None)   # a file cannot hold its own hash
    data["module"].pop("size", None)
    return data


def embed(ko: ElfObject, doc: Metadata | dict[str, Any]) -> None:
    """Put the canonical document (without the module's own hash and size)
    into the non-alloc section `.kbuilder.metadata`, replacing an earlier
    copy. Call before the module is signed: the signature covers it."""
    from kbuilder.elf.constants import SHT
    from kbuilder.elf.model import Section

    data = _embedded_form(doc)
    validate(data)
    blob = canonical_json(data)
    existing = ko.find_section(SECTION)
    if existing is not None:
        existing.data, existing.size = blob, len(blob)
        return
    ko.add_section(Section(SECTION, SHT.PROGBITS, 0, blob, len(blob), 1))


def extract(ko: ElfObject) -> dict[str, Any] | None:
    """The embedded document, or None when the module has none."""
    sec = ko.find_section(SECTION)
    if sec is None:
        return None
    try:
        data = json.loads(sec.data.rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"section {SECTION} does not hold JSON: {exc}", path=ko.path) from None
    if not isinstance(data, dict):
        raise InputError(f"section {SECTION} does not hold a JSON object", path=ko.path)
    return data


def finalize(ko: ElfObject, doc: Metadata | dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Embed `doc` in `ko` and serialise it: returns the module's bytes and
    the full document (the embedded one plus the file's sha256 and size),
    validated, for NAME.json."""
    from kbuilder.elf.writer import serialize

    embed(ko, doc)
    blob = serialize(ko)
    full = _embedded_form(doc)
    full["module"]["sha256"] = hashlib.sha256(blob).hexdigest()
    full["module"]["size"] = len(blob)
    validate(full)
    return blob, full


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def load(path: str | Path) -> dict[str, Any]:
    """The metadata of a module file (`.ko`: the embedded copy, with the
    file's sha256 and size added) or of a JSON file: a metadata document, or
    a `kbuild build` report with a `metadata` member. Validated."""
    path = Path(path)
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=where) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a module or JSON file", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=where) from None
    if raw.startswith(b"\x7fELF"):
        from kbuilder.elf.reader import parse_object

        found = extract(parse_object(raw, where))
        if found is None:
            raise InputError(f"no kbuilder metadata in this module (no {SECTION} section)", path=where)
        found.setdefault("module", {})
        if isinstance(found["module"], dict):
            found["module"]["sha256"] = hashlib.sha256(raw).hexdigest()
            found["module"]["size"] = len(raw)
        validate(found, path=where)
        return found
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"neither an ELF module nor JSON: {exc}", path=where) from None
    if isinstance(data, dict) and data.get("format") == "kbuilder-build" and "schema" not in data:
        if not isinstance(data.get("metadata"), dict):
            raise InputError("a kbuild build report without metadata (built before metadata support?)",
                             path=where)
        data = data["metadata"]
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_ID:
        found_schema = data.get("schema") if isinstance(data, dict) else None
        raise InputError(f"not kbuilder metadata (schema {found_schema!r}, expected {SCHEMA_ID!r})", path=where)
    validate(data, path=where)
    return data
