"""`kbuild info X.ko|X.json [--json]`: a module's kbuilder metadata."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata document as JSON.")
def info(file: str, as_json: bool) -> None:
    """Show what a livepatch module targets, replaces and fixes.

    FILE is a module built by kbuild (the copy embedded in its
    .kbuilder.metadata section is read) or its metadata JSON.
    """
    from kbuilder.metadata.model import load, pretty_json

    doc = load(file)
    if as_json:
        click.echo(pretty_json(doc), nl=False)
        return
    for line in describe(doc, file):
        click.echo(line)


def _score(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def describe(doc: dict[str, Any], file: str) -> list[str]:
    """The readable form of a metadata document, one list item per line."""
    target, module, mode = doc["target"], doc["module"], doc["mode"]
    lines = [f"{file}: livepatch module {module['name']} ({doc['schema']})"]
    lines.append("")
    lines.append(f"target:     Linux {target['kernel_release']} {target['arch']}")
    lines.append(f"            vmlinux build id {target['vmlinux_build_id'] or '(none)'}")
    lines.append(f"            config sha256 {target['config_sha256']}")
    if target["compiler"]:
        lines.append(f"            compiler {target['compiler']}")
    lines.append(f"module:     {module['file']}, vermagic '{module['vermagic']}'")
    if module.get("sha256"):
        lines.append(f"            sha256 {module['sha256']}" + (f", {module['size']} bytes" if "size" in module else ""))
    series = f" of series {mode['series']}" if mode.get("series") else ""
    if mode["kind"] == "cumulative":
        level = f", level {mode['level']}" if mode.get("level") is not None else ""
        lines.append(f"mode:       cumulative{level}{series} (atomic replace: replaces every loaded livepatch)")
        if mode["supersedes"]:
            lines.append(f"            supersedes {', '.join(mode['supersedes'])}")
    else:
        position = f", position {mode['position']}" if mode.get("position") is not None else ""
        patch = f", patch {mode['patch']}" if mode.get("patch") else ""
        lines.append(f"mode:       incremental{position}{patch}{series} (stacks on the patches below it)")
        for req in mode["requires"]:
            state = f" (klp_state {req['state']:#x})" if req.get("state") is not None else ""
            lines.append(f"            requires {req['module']}{state}")
    functions = doc["functions"]
    lines.append("")
    lines.append(f"functions ({len(functions)}):")
    width = max((len(f"{f['object']}:{f['name']}") + (len(str(f['sympos'])) + 1 if f["sympos"] else 0)
                 for f in functions), default=0)
    for fn in functions:
        name = f"{fn['object']}:{fn['name']}" + (f",{fn['sympos']}" if fn["sympos"] else "")
        if fn.get("old_size") is not None or fn.get("new_size") is not None:
            sizes = f"{fn.get('old_size', '?')} -> {fn.get('new_size', '?')} bytes"
        else:
            sizes = ""
        lines.append(f"  {name:<{width}}  {sizes}".rstrip())
    fixes = doc["fixes"]
    lines.append("")
    highest = ""
    if doc.get("max_severity"):
        highest = f", highest severity {doc['max_severity']}"
        if doc.get("max_base_score") is not None:
            highest += f" ({_score(doc['max_base_score'])})"
    lines.append(f"fixes ({len(fixes)}){highest}:")
    for fix in fixes:
        patch = f"  [patch {fix['patch']}]" if fix.get("patch") else ""
        if fix["kind"] == "cve":
            if fix["cvss"]:
                for i, c in enumerate(fix["cvss"]):
                    head = fix["id"] if i == 0 else ""
                    lines.append(f"  {head:<16} {fix['severity'] if i == 0 else '':<9} "
                                 f"{_score(c.get('base_score')):>4}  {c['vector']}{patch if i == 0 else ''}")
            else:
                lines.append(f"  {fix['id']:<16} {fix['severity']:<9} {'-':>4}  (severity stated, no CVSS vector)"
                             f"{patch}")
            if fix.get("description"):
                lines.append(f"  {'':<16} {fix['description']}")
        else:
            rating = fix.get("severity") or "-"
            lines.append(f"  {'(no CVE)':<16} {rating:<9} {'-':>4}  {fix['description']}{patch}")
    if doc.get("left_out"):
        lines.append("")
        lines.append(f"left out ({len(doc['left_out'])}):")
        for item in doc["left_out"]:
            lines.append(f"  {item['patch']} ({item['file']}): {item['reason']}")
    if doc["states"]:
        lines.append("")
        lines.append("livepatch states: " + ", ".join(f"id {s['id']:#x} version {s['version']}"
                                                      for s in doc["states"]))
    if doc["callbacks"]:
        lines.append("callbacks:  " + "; ".join(f"{obj}: {', '.join(kinds)}"
                                                for obj, kinds in doc["callbacks"].items()))
    prov = doc["provenance"]
    lines.append("")
    lines.append(f"built by:   {prov['tool']}" + (f" with {prov['compiler']}" if prov.get("compiler") else ""))
    if prov.get("series"):
        lines.append(f"series:     {prov['series']['file']} ({prov['series']['name']}), "
                     f"sha256 {prov['series']['sha256']}")
    for p in prov["patches"]:
        ident = f" ({p['id']})" if p.get("id") else ""
        lines.append(f"patch:      {p['file']}{ident} sha256 {p['sha256']}")
    return lines
