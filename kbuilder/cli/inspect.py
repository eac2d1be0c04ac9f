"""`kbuild inspect OBJ [--json]`."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("obj", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print stable, machine-readable JSON.")
def inspect(obj: str, as_json: bool) -> None:
    """Show an object's functions (patchable or not), data, special sections and relocations."""
    from kbuilder.elf import read_object
    from kbuilder.inspect import summarize

    summary = summarize(read_object(obj))
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2, sort_keys=True))
        return
    click.echo(f"{summary.file}: {summary.arch}, {summary.sections} sections, {summary.symbols} symbols, "
               f"{summary.relocations} relocations")
    click.echo(f"\nfunctions ({len(summary.functions)}):")
    width = max((len(f.name) for f in summary.functions), default=4)
    click.echo(f"  {'name':<{width}}  {'size':>6}  {'bind':<6}  patchable  section")
    for f in summary.functions:
        click.echo(f"  {f.name:<{width}}  {f.size:>6}  {f.binding:<6}  {'yes' if f.patchable else 'NO':<9}  "
                   f"{f.section}")
    click.echo(f"\ndata objects ({len(summary.objects)}):")
    width = max((len(o.name) for o in summary.objects), default=4)
    for o in summary.objects:
        click.echo(f"  {o.name:<{width}}  {o.size:>6}  {o.binding:<6}  {o.section}")
    click.echo(f"\nspecial sections ({len(summary.special_sections)}):")
    for s in summary.special_sections:
        entries = f"{s.entries} entries of {s.entry_size} bytes" if s.entries is not None else "variable entries"
        click.echo(f"  {s.name:<24} {s.size:>7} bytes  {entries}, {s.relocations} relocations")
    click.echo("\nrelocations by type:")
    for name, count in summary.relocations_by_type.items():
        click.echo(f"  {name:<24} {count:>7}")
