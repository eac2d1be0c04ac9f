"""Build a patch series: one cumulative module (atomic replace, every
selected fix up to a level) or a stack of incremental modules (one per
selected patch, each loadable only on top of the one before it).

An incremental module holds what its patch changes relative to the patches
below it: the kernel is rebuilt with patches 1..k-1 and with 1..k (each an
incremental rebuild of the cached original), and the two object states are
compared. Its code is compiled with all earlier patches applied, which is
what the function looks like once the stack is loaded.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from kbuilder.build import (
    BuildOptions,
    BuildResult,
    Progress,
    _Clock,
    build_from_changed,
    prepare,
    workspace,
)
from kbuilder.errors import NoChangeError
from kbuilder.kernel.tree import ChangedObject, build_patched
from kbuilder.metadata.series import Selection, Series, SeriesPatch, load_series, select
from kbuilder.module.generate import stack_symbol


def build_series(series_path: Path, base: BuildOptions, *, mode: str | None, level: int | None,
                 min_severity: str | None, progress: Progress) -> list[BuildResult]:
    series = load_series(series_path)
    selection = select(series, min_severity, level)
    if not selection.selected:
        reasons = "; ".join(f"{p.id}: {why}" for p, why in selection.left_out)
        raise NoChangeError(f"no patch of the series is selected ({reasons})", path=str(series_path))
    mode = mode or series.mode
    if mode == "incremental":
        return _incremental(series, selection, base, progress)
    return [_cumulative(series, selection, base, progress)]


def _with_selection(result: BuildResult, selection: Selection) -> BuildResult:
    result.report["selection"] = selection.to_json()
    return result


def _cumulative(series: Series, selection: Selection, base: BuildOptions, progress: Progress) -> BuildResult:
    from kbuilder.metadata.model import for_series_build

    def metadata(report: dict[str, Any], reports: list[dict[str, Any]]) -> Any:
        return for_series_build(report, series, selection, mode="cumulative", diff_reports=reports)

    opts = dataclasses.replace(base, patches=tuple(p.file for p in selection.selected),
                               name=series.cumulative_module(selection.level), replace=True, metadata=metadata,
                               description=f"{series.name} level {selection.level} (cumulative)")
    from kbuilder.build import build_livepatch

    result = build_livepatch(opts, progress)
    return _rewrite_report(_with_selection(result, selection))


def _incremental(series: Series, selection: Selection, base: BuildOptions, progress: Progress) -> list[BuildResult]:
    from kbuilder.metadata.model import for_series_build

    jobs = base.jobs or os.cpu_count() or 1
    all_opts = dataclasses.replace(base, patches=tuple(p.file for p in selection.selected))
    patches, orig = prepare(all_opts, progress)
    results = []
    before: dict[str, Path] = {}
    previous: SeriesPatch | None = None
    for k, patch in enumerate(selection.selected):
        clock = _Clock()
        name = series.incremental_module(patch)
        with workspace(name) as work:
            changed = build_patched(orig, patches[:k + 1], work, jobs=jobs, progress=progress)
            clock.lap("patched build")
            step = _changed_by_this_patch(changed, before)
            if not step:
                raise NoChangeError(f"{patch.label} changes no object on top of the patches before it",
                                    path=str(patch.file))

            def metadata(report: dict[str, Any], reports: list[dict[str, Any]], patch: SeriesPatch = patch) -> Any:
                return for_series_build(report, series, selection, mode="incremental", patch=patch,
                                        diff_reports=reports)

            opts = dataclasses.replace(base, patches=(patch.file,), name=name, replace=False, metadata=metadata,
                                       states=((series.state_id(patch), 1),),
                                       description=f"{series.name} {patch.id} (incremental, position {k + 1})")
            result = build_from_changed(
                name, opts, orig, [patches[k]], step, work, clock, progress,
                provides=stack_symbol(series.name, patch.id),
                requires=stack_symbol(series.name, previous.id) if previous is not None else None)
        results.append(_rewrite_report(_with_selection(result, selection)))
        before = {c.rel: c.patched for c in changed}
        previous = patch
    return results


def _changed_by_this_patch(changed: list[ChangedObject], before: dict[str, Path]) -> list[ChangedObject]:
    """Pairs (state before this patch, state after it) of the objects it changed."""
    step = []
    for obj in changed:
        older = before.get(obj.rel, obj.orig)
        if older.read_bytes() != obj.patched.read_bytes():
            step.append(ChangedObject(obj.rel, older, obj.patched, obj.objname))
    return step


def _rewrite_report(result: BuildResult) -> BuildResult:
    import json

    from kbuilder.util.files import atomic_write

    atomic_write(result.report_path, (json.dumps(result.report, indent=2, sort_keys=True) + "\n").encode())
    return result
