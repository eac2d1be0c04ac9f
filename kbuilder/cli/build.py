"""`kbuild build`: kernel tree + source patches -> verified livepatch module."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.argument("patches", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--series", "series", type=click.Path(dir_okay=False),
              help="Build from a patch series file (docs/series.md) instead of PATCHES.")
@click.option("--cumulative", "mode", flag_value="cumulative", help="Series: one module replacing all before it.")
@click.option("--incremental", "mode", flag_value="incremental", help="Series: one stacked module per patch.")
@click.option("--level", type=int, help="Series: build up to this level (default: the highest).")
@click.option("--min-severity", type=click.Choice(["none", "low", "medium", "high", "critical"],
              case_sensitive=False), help="Series: leave out patches whose highest severity is lower.")
@click.option("--source", required=True, type=click.Path(file_okay=False), help="Kernel source tree (never modified).")
@click.option("--config", type=click.Path(dir_okay=False), help="Kernel config of the target (default: SOURCE/.config).")
@click.option("--vmlinux", type=click.Path(dir_okay=False), help="The target kernel's vmlinux (symbols, compiler).")
@click.option("-j", "--jobs", type=int, default=0, help="Parallel jobs (default: all cores).")
@click.option("--name", help="Module name (default: livepatch-<patch name>).")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Directory for NAME.ko and NAME.json.")
@click.option("--no-replace", is_flag=True, help="Stack on earlier patches instead of replacing them.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
@click.option("--sign-key", help="Sign the module: private key (PEM file or pkcs11: URI) for the kernel's sign-file.")
@click.option("--sign-cert", type=click.Path(dir_okay=False),
              help="Sign the module: the X.509 certificate (PEM or DER) the target kernel trusts.")
@click.option("--sign-hash", type=click.Choice(["sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"]),
              default="sha256", show_default=True, help="Sign the module: the signature's hash.")
@click.option("--sign-file", "sign_tool", type=click.Path(dir_okay=False),
              help="Sign the module with this sign-file (default: scripts/sign-file of the target's build or source tree).")
def build(patches: tuple[str, ...], series: str | None, mode: str | None, level: int | None,
          min_severity: str | None, source: str, config: str | None, vmlinux: str | None, jobs: int,
          name: str | None, output: str, no_replace: bool, json_path: str | None, sign_key: str | None,
          sign_cert: str | None, sign_hash: str, sign_tool: str | None) -> None:
    """Build a livepatch module from PATCHES against the kernel in --source.

    With --sign-key and --sign-cert the module is signed last (the kernel's
    module signature, for kernels that enforce signatures); NAME.json then
    describes the signed file.

    Exit status: 0 built and verified, 2 a change cannot be live-patched,
    3 the patches change nothing, 1 error.
    """
    from kbuilder.build import BuildOptions, build_livepatch
    from kbuilder.module.signing import Signing
    from kbuilder.util.files import atomic_write

    quiet = json_path is not None or not sys.stderr.isatty()

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"kbuild: {message}", err=True)

    if bool(series) == bool(patches):
        raise click.UsageError("give either PATCHES or --series FILE")
    if not series and (mode or level is not None or min_severity):
        raise click.UsageError("--cumulative, --incremental, --level and --min-severity go with --series")
    if bool(sign_key) != bool(sign_cert):
        raise click.UsageError("--sign-key and --sign-cert go together")
    if sign_tool and not sign_key:
        raise click.UsageError("--sign-file goes with --sign-key and --sign-cert")
    signing = Signing(sign_key, Path(sign_cert), sign_hash, Path(sign_tool) if sign_tool else None) \
        if sign_key and sign_cert else None
    opts = BuildOptions(source=Path(source), patches=tuple(Path(p) for p in patches),
                        config=Path(config) if config else None, vmlinux=Path(vmlinux) if vmlinux else None,
                        jobs=jobs, name=name, output=Path(output), replace=not no_replace, signing=signing)
    if series:
        from kbuilder.build_series import build_series

        results = build_series(Path(series), opts, mode=mode, level=level, min_severity=min_severity,
                               progress=progress)
    else:
        results = [build_livepatch(opts, progress)]
    if json_path:
        document = results[0].report if len(results) == 1 else {"modules": [r.report for r in results]}
        atomic_write(json_path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    for result in results:
        for fn in result.report["functions"]:
            pos = f",{fn['sympos']}" if fn["sympos"] else ""
            click.echo(f"replaces {fn['object']}:{fn['name']}{pos}  ({fn['source']})")
        for left in result.report.get("selection", {}).get("left_out", []):
            click.echo(f"left out {left['patch']}: {left['reason']}")
        signed = " (signed)" if "signature" in result.report["module"] else ""
        click.echo(f"built {result.module}{signed} ({result.report['livepatch_relocations']} livepatch "
                   f"relocations), report {result.report_path}")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        click.echo(f"stages: {stages}", err=True)
