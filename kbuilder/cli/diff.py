"""`kbuild diff`: one object pair, or every pair of two build trees."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from kbuilder.errors import EXIT_NO_CHANGE, EXIT_OK, EXIT_UNPATCHABLE, InputError, KbuilderError, UnpatchableError


def _parse_sizes(values: tuple[str, ...]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for key in ("BUG_STRUCT_SIZE", "EX_STRUCT_SIZE", "JUMP_STRUCT_SIZE", "ALT_STRUCT_SIZE", "PARA_STRUCT_SIZE",
                "ORC_STRUCT_SIZE", "STATIC_CALL_STRUCT_SIZE", "PRINTK_INDEX_STRUCT_SIZE"):
        if os.environ.get(key, "").isdigit():  # kpatch-build's interface
            sizes[key] = int(os.environ[key])
    for value in values:
        key, _, number = value.partition("=")
        if not number.isdigit():
            raise click.BadParameter(f"expected NAME=BYTES, got {value!r}", param_hint="--struct-size")
        sizes[key.upper()] = int(number)
    return sizes


@click.command()
@click.argument("orig", required=False, type=click.Path(dir_okay=False))
@click.argument("patched", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="Output object (or directory with --orig-dir/--patched-dir).")
@click.option("--parent-symbols", type=click.Path(dir_okay=False),
              help="Symbol table of the running kernel: vmlinux, System.map, a module, or an object.")
@click.option("--symvers", type=click.Path(dir_okay=False), help="Module.symvers of the running kernel.")
@click.option("--objname", default="vmlinux", show_default=True,
              help="What the object belongs to: vmlinux or the module name.")
@click.option("--struct-size", "struct_sizes", multiple=True, metavar="NAME=BYTES",
              help="Special-section entry size, e.g. BUG_STRUCT_SIZE=12 (repeatable).")
@click.option("--kernel-tree", type=click.Path(file_okay=False),
              help="Configured kernel build directory: measure the special-section entry sizes there.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write a JSON report here.")
@click.option("--explain", is_flag=True, help="Say why each changed function counts as changed.")
@click.option("--orig-dir", type=click.Path(file_okay=False), help="Batch mode: tree of original objects.")
@click.option("--patched-dir", type=click.Path(file_okay=False), help="Batch mode: tree of patched objects.")
@click.option("-j", "--jobs", type=int, default=0, help="Batch mode: parallel workers (default: all cores).")
def diff(orig: str | None, patched: str | None, output: str, parent_symbols: str | None, symvers: str | None,
         objname: str, struct_sizes: tuple[str, ...], kernel_tree: str | None, json_path: str | None, explain: bool,
         orig_dir: str | None, patched_dir: str | None, jobs: int) -> None:
    """Compare ORIG.o and PATCHED.o and write the changed functions (and what
    they need) to OUTPUT.

    Exit status: 0 a patchable change was written, 3 no functional change,
    2 the change cannot be live-patched, 1 error.
    """
    from kbuilder.cli.diff_run import DiffRequest, run_batch, run_one

    sizes = {}
    if kernel_tree:
        from pathlib import Path

        from kbuilder.kernel.structsizes import struct_sizes as measure

        sizes = measure(Path(kernel_tree))
    sizes.update(_parse_sizes(struct_sizes))  # explicit sizes win
    request = DiffRequest(parent_symbols, symvers, objname, sizes, explain)
    if orig_dir or patched_dir:
        if not (orig_dir and patched_dir) or orig or patched:
            raise click.UsageError("batch mode takes --orig-dir and --patched-dir and no object arguments")
        sys.exit(run_batch(request, orig_dir, patched_dir, output, json_path, jobs))
    if not orig or not patched:
        raise click.UsageError("expected ORIG.o and PATCHED.o (or --orig-dir and --patched-dir)")
    sys.exit(run_one(request, orig, patched, output, json_path))


def echo_report(report: dict[str, Any], explain_lines: dict[str, list[str]]) -> int:
    name = os.path.basename(report["orig"])
    for fn in report["ignored"]:
        click.echo(f"{name}: ignoring: {fn}")
    for fn in report["changed"]:
        click.echo(f"{name}: changed function: {fn}")
        for line in explain_lines.get(fn, ()):
            click.echo(f"    {line}")
    for fn in report["new"]:
        click.echo(f"{name}: new function: {fn}")
    for fn in report["callbacks"]:
        click.echo(f"{name}: found callback: {fn}")
    for warning in report["warnings"]:
        click.echo(f"{name}: warning: {warning}", err=True)
    if report["status"] == "unpatchable":
        for refusal in report["refusals"]:
            click.echo(f"{name}: unpatchable: {refusal['message']}", err=True)
        return EXIT_UNPATCHABLE
    if report["status"] == "no-change":
        click.echo(f"{name}: no functional change")
        return EXIT_NO_CHANGE
    return EXIT_OK


def write_json(path: str, document: dict[str, Any]) -> None:
    from kbuilder.util.files import atomic_write

    atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


__all__ = ["diff", "echo_report", "write_json", "InputError", "KbuilderError", "UnpatchableError"]
