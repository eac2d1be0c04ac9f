"""Patch series: an ordered TOML list of source patches with the CVEs they
fix, grouped into cumulative levels (docs/series.md).

    [series]
    name = "ubuntu-6.8.0-45"          # optional: module names, default the file's stem
    mode = "cumulative"               # optional: or "incremental"

    [[patch]]
    id = "nft-verdict"
    file = "patches/0001-nf_tables-verdict.patch"
    description = "nf_tables: reject QUEUE/DROP verdict parameters"
    cves = [{ id = "CVE-2024-1086", cvss = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" }]

`load_series` checks everything and reports every problem, one line each,
naming the series file and the entry; `select` applies --min-severity and
--level and says why each patch was left out.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from kbuilder.errors import InputError
from kbuilder.metadata.cvss import SEVERITIES, CvssError, CvssVector, base_score, parse_vector, severity, \
    severity_rank

MODES = ("cumulative", "incremental")
# klp_state ids of incremental modules: state_base + position in the series.
DEFAULT_STATE_BASE = 0x6B620000      # "kb" in the top half: unlikely to meet another vendor's ids
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_SERIES_KEYS = {"name", "description", "mode", "state_base"}
_PATCH_KEYS = {"id", "file", "description", "cves", "severity", "level"}
_CVE_KEYS = {"id", "cvss", "severity"}


class SeriesError(InputError):
    """Every problem found in a series file; `errors` has one line each."""

    kind = "bad-series"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class CveFix:
    id: str
    vector: CvssVector | None
    base_score: Decimal | None
    severity: str                 # upper case: from the vector, or stated
    stated: bool                  # True when the severity was stated, not computed

    def to_json(self) -> dict[str, Any]:
        cvss = []
        if self.vector is not None:
            cvss.append({"version": self.vector.version, "vector": self.vector.vector,
                         "base_score": float(self.base_score) if self.base_score is not None else None,
                         "severity": severity(self.base_score, self.vector.version)})
        return {"id": self.id, "cvss": cvss, "severity": self.severity,
                "severity_source": "stated" if self.stated else "cvss"}


@dataclass(frozen=True, slots=True)
class SeriesPatch:
    index: int                    # 0-based position in the file
    id: str
    file: Path                    # resolved against the series file's directory
    file_text: str                # as written in the series file
    description: str
    cves: tuple[CveFix, ...]
    stated_severity: str | None   # upper case
    level: int

    @property
    def severity(self) -> str:
        """The highest severity among the CVEs and the stated one."""
        names = [c.severity for c in self.cves]
        if self.stated_severity:
            names.append(self.stated_severity)
        return max(names, key=severity_rank)

    @property
    def max_base_score(self) -> Decimal | None:
        scores = [c.base_score for c in self.cves if c.base_score is not None]
        return max(scores) if scores else None

    @property
    def label(self) -> str:
        return f"patch {self.index + 1} ({self.id})"


@dataclass(frozen=True, slots=True)
class Series:
    path: Path
    name: str
    description: str
    mode: str
    state_base: int
    patches: tuple[SeriesPatch, ...]

    @property
    def max_level(self) -> int:
        return max(p.level for p in self.patches)

    @property
    def levels(self) -> list[int]:
        return sorted({p.level for p in self.patches})

    def patch(self, patch_id: str) -> SeriesPatch:
        for p in self.patches:
            if p.id == patch_id:
                return p
        raise KeyError(patch_id)

    def cumulative_module(self, level: int) -> str:
        """File stem of the cumulative module of `level` (livepatch-NAME-LEVEL)."""
        return _module_stem(f"livepatch-{self.name}-{level}")

    def incremental_module(self, patch: SeriesPatch) -> str:
        """File stem of the incremental module of one patch (livepatch-NAME-ID)."""
        return _module_stem(f"livepatch-{self.name}-{patch.id}")

    def state_id(self, patch: SeriesPatch) -> int:
        """The klp_state id the incremental module of `patch` sets."""
        return self.state_base + patch.index + 1


def _module_stem(text: str) -> str:
    from kbuilder.module.generate import sanitize_module_name

    return sanitize_module_name(text)


def kernel_name(module: str) -> str:
    """The name the kernel gives a module file stem (dashes become
    underscores), as shown in /sys/kernel/livepatch and lsmod."""
    stem = module[:-3] if module.endswith(".ko") else module
    return stem.replace("-", "_")


@dataclass(slots=True)
class Selection:
    series: Series
    level: int
    min_severity: str | None
    selected: list[SeriesPatch] = field(default_factory=list)
    left_out: list[tuple[SeriesPatch, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "min_severity": self.min_severity,
            "selected": [p.id for p in self.selected],
            "left_out": [{"patch": p.id, "file": p.file_text, "level": p.level, "severity": p.severity,
                          "reason": reason} for p, reason in self.left_out],
        }


def select(series: Series, min_severity: str | None = None, level: int | None = None) -> Selection:
    """The patches a build at `level` (default: the highest) includes: every
    patch of that level or below whose severity (the highest among its CVEs,
    or the stated one) is at least `min_severity`."""
    if level is None:
        level = series.max_level
    if level < 0 or level > series.max_level:
        raise InputError(f"level {level} is not in the series (levels 1-{series.max_level}, or 0 for none)",
                         path=str(series.path))
    floor = None
    if min_severity is not None:
        try:
            floor = severity_rank(min_severity)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        min_severity = min_severity.lower()
    out = Selection(series, level, min_severity)
    for patch in series.patches:
        if patch.level > level:
            out.left_out.append((patch, f"level {patch.level} is above the target level {level}"))
        elif floor is not None and severity_rank(patch.severity) < floor:
            out.left_out.append((patch, f"severity {patch.severity.lower()} is below the minimum "
                                        f"{min_severity}"))
        else:
            out.selected.append(patch)
    return out


# ---------------------------------------------------------------------------
# Loading and checking
# ---------------------------------------------------------------------------

def load_series(path: str | Path, *, check_files: bool = True) -> Series:
    """Read and check a series file. Raises `SeriesError` listing every
    problem; `check_files=False` skips checking that the patch files exist
    (for `kbuild plan`, which needs only the list)."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("series file not found", path=where) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a series file", path=where) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", path=where) from None
    errors: list[str] = []
    for key in sorted(set(data) - {"series", "patch"}):
        errors.append(f"{where}: unknown top-level key '{key}' (expected [series] and [[patch]])")
    header = data.get("series", {})
    if not isinstance(header, dict):
        errors.append(f"{where}: 'series' must be a table ([series])")
        header = {}
    name, description, mode, state_base = _header(header, path, errors)
    raw_patches = data.get("patch", [])
    if not isinstance(raw_patches, list) or not all(isinstance(p, dict) for p in raw_patches):
        errors.append(f"{where}: 'patch' must be an array of tables ([[patch]])")
        raw_patches = []
    if not raw_patches and not errors:
        errors.append(f"{where}: the series lists no patches (add [[patch]] entries)")
    patches: list[SeriesPatch] = []
    seen_ids: dict[str, int] = {}
    previous_level = 0
    for index, raw in enumerate(raw_patches):
        patch = _patch(raw, index, path, check_files, errors)
        if patch is None:
            continue
        if patch.id in seen_ids:
            errors.append(f"{where}: {patch.label}: duplicate id '{patch.id}' (also patch {seen_ids[patch.id]})")
        seen_ids.setdefault(patch.id, index + 1)
        explicit = raw.get("level")
        level = previous_level + 1 if explicit is None else patch.level
        if explicit is not None and isinstance(explicit, int):
            if level < previous_level:
                errors.append(f"{where}: {patch.label}: level {level} is below the previous patch's level "
                              f"{previous_level} (levels must not decrease)")
            elif level > previous_level + 1:
                errors.append(f"{where}: {patch.label}: level {level} skips level {previous_level + 1}")
        patch = _replace_level(patch, level)
        previous_level = max(previous_level, level)
        patches.append(patch)
    if errors:
        raise SeriesError(errors)
    return Series(path, name, description, mode, state_base, tuple(patches))


def _header(header: dict[str, Any], path: Path, errors: list[str]) -> tuple[str, str, str, int]:
    where = f"{path}: [series]"
    for key in sorted(set(header) - _SERIES_KEYS):
        errors.append(f"{where}: unknown key '{key}' (expected {', '.join(sorted(_SERIES_KEYS))})")
    name = header.get("name", re.sub(r"[^A-Za-z0-9_-]", "-", path.stem).strip("-") or "series")
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(f"{where}: name {name!r} must be 1-32 letters, digits, '-' or '_'")
        name = "series"
    description = header.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{where}: description must be a string")
        description = ""
    mode = header.get("mode", "cumulative")
    if mode not in MODES:
        errors.append(f"{where}: mode {mode!r} must be 'cumulative' or 'incremental'")
        mode = "cumulative"
    state_base = header.get("state_base", DEFAULT_STATE_BASE)
    if isinstance(state_base, bool) or not isinstance(state_base, int) or not 0 < state_base < 2 ** 63:
        errors.append(f"{where}: state_base must be a positive integer")
        state_base = DEFAULT_STATE_BASE
    return name, description, mode, state_base


def _patch(raw: dict[str, Any], index: int, path: Path, check_files: bool,
           errors: list[str]) -> SeriesPatch | None:
    patch_id = raw.get("id")
    label = f"patch {index + 1}" + (f" ({patch_id})" if isinstance(patch_id, str) and patch_id else "")
    where = f"{path}: {label}"
    before = len(errors)
    for key in sorted(set(raw) - _PATCH_KEYS):
        errors.append(f"{where}: unknown key '{key}' (expected {', '.join(sorted(_PATCH_KEYS))})")
    if patch_id is None:
        errors.append(f"{where}: missing 'id'")
    elif not isinstance(patch_id, str) or not _ID.match(patch_id):
        errors.append(f"{where}: id {patch_id!r} must be 1-32 letters, digits, '.', '-' or '_', "
                      "starting with a letter or digit")
    file_text = raw.get("file")
    resolved = Path()
    if file_text is None:
        errors.append(f"{where}: missing 'file'")
    elif not isinstance(file_text, str) or not file_text:
        errors.append(f"{where}: 'file' must be a path (relative to the series file)")
    else:
        resolved = (path.parent / file_text)
        if check_files and not resolved.is_file():
            errors.append(f"{where}: file not found: {file_text} (looked for {resolved})")
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{where}: description must be a string")
        description = ""
    stated = raw.get("severity")
    stated_upper = _stated_severity(stated, where, errors) if stated is not None else None
    cves = _cves(raw.get("cves", []), where, errors)
    if not raw.get("cves") and stated is None:
        errors.append(f"{where}: give 'cves' (with CVSS vectors or severities) or a 'severity'")
    level = raw.get("level", 0)
    if "level" in raw and (isinstance(level, bool) or not isinstance(level, int) or level < 1):
        errors.append(f"{where}: level must be an integer of 1 or more")
        level = 0
    if len(errors) != before:
        return None
    return SeriesPatch(index, str(patch_id), resolved, str(file_text), description, tuple(cves), stated_upper,
                       int(level))


def _stated_severity(value: Any, where: str, errors: list[str]) -> str | None:
    if isinstance(value, str) and value.upper() in SEVERITIES:
        return value.upper()
    errors.append(f"{where}: severity {value!r} must be one of {', '.join(s.lower() for s in SEVERITIES)}")
    return None


def _cves(raw: Any, where: str, errors: list[str]) -> list[CveFix]:
    if not isinstance(raw, list):
        errors.append(f"{where}: 'cves' must be an array of tables")
        return []
    out: list[CveFix] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            errors.append(f"{where}: cves[{i}] must be a table like {{ id = \"CVE-...\", cvss = \"CVSS:3.1/...\" }}")
            continue
        cve_id = entry.get("id")
        valid = isinstance(cve_id, str) and _CVE.match(cve_id)
        at = f"{where}: {cve_id}" if valid else f"{where}: cves[{i}]"
        for key in sorted(set(entry) - _CVE_KEYS):
            errors.append(f"{at}: unknown key '{key}' (expected id, cvss, severity)")
        if not valid:
            errors.append(f"{at}: id {cve_id!r} is not a CVE id (CVE-YYYY-NNNN)")
            continue
        if cve_id in seen:
            errors.append(f"{at}: listed twice")
            continue
        seen.add(cve_id)
        vector = None
        score = None
        rating = None
        text = entry.get("cvss")
        if text is not None:
            try:
                vector = parse_vector(text)
            except CvssError as exc:
                errors.append(f"{at}: {exc}")
                continue
            score = base_score(vector)
            rating = severity(score, vector.version)
        stated = entry.get("severity")
        stated_upper = _stated_severity(stated, at, errors) if stated is not None else None
        if rating is None and stated_upper is None:
            if text is None and stated is None:
                errors.append(f"{at}: give a 'cvss' vector or a 'severity'")
            continue
        if rating is not None and stated_upper is not None and stated_upper != rating:
            errors.append(f"{at}: stated severity {stated_upper.lower()} contradicts the CVSS vector's "
                          f"{rating.lower()} ({score}); give one or the other")
            continue
        out.append(CveFix(cve_id, vector, score, rating or str(stated_upper), rating is None))
    return out


def _replace_level(patch: SeriesPatch, level: int) -> SeriesPatch:
    return SeriesPatch(patch.index, patch.id, patch.file, patch.file_text, patch.description, patch.cves,
                       patch.stated_severity, level)
