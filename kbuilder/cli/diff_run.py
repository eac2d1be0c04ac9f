"""The work behind `kbuild diff`: load the inputs, run the differ, write the
artifacts, and turn results into exit codes. Kept apart from the option
parsing so batch workers can import it cheaply."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import click

from kbuilder.errors import EXIT_ERROR, EXIT_NO_CHANGE, EXIT_OK, EXIT_UNPATCHABLE, InputError, KbuilderError


@dataclass(frozen=True, slots=True)
class DiffRequest:
    parent_symbols: str | None
    symvers: str | None
    objname: str
    struct_sizes: dict[str, int]
    explain: bool


def _options(request: DiffRequest):  # type: ignore[no-untyped-def]
    from kbuilder.diff import DiffOptions
    from kbuilder.emit.parent import shared_parent_symbols, shared_symvers

    parent = shared_parent_symbols(request.parent_symbols) if request.parent_symbols else None
    exports = shared_symvers(request.symvers) if request.symvers else None
    return DiffOptions(objname=request.objname, parent=parent, exports=exports, struct_sizes=request.struct_sizes,
                       explain=request.explain)


def compute(request: DiffRequest, orig: str, patched: str, output: str,
            options: Any = None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Diff one pair and write its output object; returns the report."""
    from kbuilder.diff import diff_files
    from kbuilder.elf import write_object
    from kbuilder.emit.report import embed_manifest, report_dict

    for path in (orig, patched):
        if not os.path.exists(path):
            raise InputError("no such file", path=path)
    result = diff_files(orig, patched, options if options is not None else _options(request))
    report = report_dict(result, output)
    explain = result.explanations
    if result.status == "patch" and result.output is not None:
        embed_manifest(result.output, report)
        write_object(result.output, output)
    return report, explain


def run_one(request: DiffRequest, orig: str, patched: str, output: str, json_path: str | None) -> int:
    from kbuilder.cli.diff import echo_report, write_json

    report, explain = compute(request, orig, patched, output)
    if json_path:
        write_json(json_path, report)
    return echo_report(report, explain)


def _batch_worker(args: tuple[DiffRequest, str, str, str]) -> dict[str, Any]:
    request, orig, patched, output = args
    try:
        report, _ = compute(request, orig, patched, output)
        return report
    except KbuilderError as exc:
        if _same_contents(orig, patched):
            # A build tree has objects kbuilder does not read (32-bit boot
            # and real-mode code, ...); unchanged, they have nothing to patch.
            return {"orig": orig, "patched": patched, "status": "no-change", "changed": [], "new": [],
                    "refusals": [], "notes": {"identical": f"the two files are byte for byte the same "
                                                           f"(not diffed: {exc.message})"}}
        return {"orig": orig, "patched": patched, "status": "error", "error": str(exc), "kind": exc.kind}


def _same_contents(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def find_pairs(orig_dir: str, patched_dir: str) -> list[str]:
    rels = []
    for root, _, files in os.walk(orig_dir):
        for name in files:
            if name.endswith(".o"):
                rel = os.path.relpath(os.path.join(root, name), orig_dir)
                if os.path.isfile(os.path.join(patched_dir, rel)):
                    rels.append(rel)
    return sorted(rels)


def run_batch(request: DiffRequest, orig_dir: str, patched_dir: str, out_dir: str, json_path: str | None,
              jobs: int) -> int:
    from kbuilder.cli.diff import write_json

    for d in (orig_dir, patched_dir):
        if not os.path.isdir(d):
            raise InputError("no such directory", path=d)
    rels = find_pairs(orig_dir, patched_dir)
    if not rels:
        raise InputError(f"no object present in both trees ({patched_dir})", path=orig_dir)
    work = [(request, os.path.join(orig_dir, r), os.path.join(patched_dir, r), os.path.join(out_dir, r))
            for r in rels]
    workers = jobs or os.cpu_count() or 1
    reports: list[dict[str, Any]] = []
    show = sys.stderr.isatty() and os.environ.get("CI") != "true"
    with ProcessPoolExecutor(max_workers=min(workers, len(work))) as pool:
        results = pool.map(_batch_worker, work, chunksize=max(1, len(work) // (workers * 4)))
        with click.progressbar(results, length=len(work), label="diffing", file=sys.stderr if show else
                               open(os.devnull, "w")) as bar:
            for report in bar:
                reports.append(report)
    counts = {k: sum(1 for r in reports if r["status"] == k) for k in ("patch", "no-change", "unpatchable", "error")}
    for report in reports:
        rel = os.path.relpath(report["orig"], orig_dir)
        if report["status"] == "error":
            click.echo(f"{rel}: error: {report['error']}", err=True)
        elif report["status"] == "unpatchable":
            for refusal in report["refusals"]:
                click.echo(f"{rel}: unpatchable: {refusal['message']}", err=True)
        else:
            for fn in report["changed"]:
                click.echo(f"{rel}: changed function: {fn}")
            for fn in report["new"]:
                click.echo(f"{rel}: new function: {fn}")
    click.echo(f"{len(reports)} pairs: {counts['patch']} patch, {counts['no-change']} no change, "
               f"{counts['unpatchable']} unpatchable, {counts['error']} errors")
    if json_path:
        write_json(json_path, {"format": "kbuilder-diff-batch", "version": 1, "objects": reports})
    if counts["error"]:
        return EXIT_ERROR
    if counts["unpatchable"]:
        return EXIT_UNPATCHABLE
    return EXIT_OK if counts["patch"] else EXIT_NO_CHANGE
