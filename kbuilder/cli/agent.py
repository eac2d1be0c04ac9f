"""`kbuild agent ...`: keep this machine's livepatches up to date from a
signed repository (docs/agent.md)."""

from __future__ import annotations

import json
from typing import Any

import click


def _agent(ctx: click.Context, *, need_config: bool) -> Any:
    from kbuilder.agent.agent import Agent
    from kbuilder.agent.config import load_config
    from kbuilder.agent.kernel import SysfsKernel

    opts = ctx.obj
    config = load_config(opts["config"], required=need_config)
    kernel = SysfsKernel(opts["sysfs_root"], insmod=config.insmod, rmmod=config.rmmod)
    return Agent(config, kernel, state_dir=opts["state_dir"], echo=click.echo)


@click.group()
@click.option("--config", "config", envvar="KBUILD_AGENT_CONFIG", default=None,
              help="The configuration file (default /etc/kbuilder/agent.toml; env KBUILD_AGENT_CONFIG).")
@click.option("--sysfs-root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Where /sys and /proc are (a guest's root, or a fake tree in tests).")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False),
              help="The agent's state (default: state_dir of the configuration, /var/lib/kbuilder/agent).")
@click.pass_context
def agent(ctx: click.Context, config: str | None, sysfs_root: str, state_dir: str | None) -> None:
    """Apply livepatches from a signed repository to the running kernel."""
    ctx.obj = {"config": config, "sysfs_root": sysfs_root, "state_dir": state_dir}


def _level_text(record: dict[str, Any]) -> str:
    kind = record.get("kind")
    where = f" of {record['series']}" if record.get("series") else ""
    if kind == "cumulative":
        return f"cumulative level {record.get('level')}{where}"
    return f"incremental position {record.get('level')}{where}"


@agent.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The running kernel, its livepatches (with their metadata) and the agent's settings."""
    report = _agent(ctx, need_config=False).status()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    kernel = report["kernel"]
    click.echo(f"kernel: {kernel['kernel_release']} {kernel['arch']}, build id "
               f"{kernel['vmlinux_build_id'] or 'unknown (no /sys/kernel/notes)'}")
    click.echo("livepatches:" if report["livepatches"] else "livepatches: none")
    for patch in report["livepatches"]:
        state = "enabled" if patch["enabled"] else "disabled"
        if patch["transition"]:
            state += ", in transition"
        record = patch.get("artifact")
        if record is None:
            click.echo(f"  {patch['name']}: {state}; not loaded by the agent (no kbuilder metadata known)")
            continue
        fixes = patch.get("metadata", {}).get("fixes", [])
        ids = ", ".join(f.get("id") or f.get("patch") or "?" for f in fixes)
        click.echo(f"  {patch['name']}: {state}; {_level_text(record)}, severity "
                   f"{(record.get('max_severity') or 'none').lower()}, channel {record.get('channel')}, sha256 "
                   f"{record['sha256'][:16]}, loaded {record.get('loaded_at')}" + (f"; fixes {ids}" if ids else ""))
    settings = report["settings"]
    pinned = settings["pinned_level"]
    click.echo(f"settings: channel {report['channel']}; auto-update {'on' if settings['auto_update'] else 'off'} "
               f"({settings['auto_update_source']}); pinned level "
               f"{'none' if pinned is None else pinned} ({settings['pinned_level_source']}); min severity "
               f"{(report['min_severity'] or 'none').lower()}; min age {report['min_age_seconds']}s")
    if report["repository"]:
        seen = ", ".join(f"version {v}" for v in report["seen"].values()) or "no index seen yet"
        click.echo(f"repository: {report['repository']} ({seen})")
    for module in report["leftovers"]:
        click.echo(f"note: module {module} is still loaded but no longer patches (agent update unloads it)")
    for note in report["notes"]:
        click.echo(f"note: {note}")


def _print_decision(decision: Any) -> None:
    click.echo(decision.summary)
    for step in decision.steps:
        click.echo(f"  {step}")
    for note in decision.notes:
        click.echo(f"note: {note}")


@agent.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """What update would change, without changing anything."""
    decision, verified = _agent(ctx, need_config=True).check()
    index = verified.index
    if as_json:
        click.echo(json.dumps({"index": {"version": index.version, "expires": index.expires,
                                         "repository": index.repository, "key": verified.key.keyid},
                               **decision.to_json()}, indent=2, sort_keys=True))
        return
    click.echo(f"index version {index.version} of {verified.url}, signed by key {verified.key.keyid}, expires "
               f"{index.expires}")
    _print_decision(decision)


@agent.command()
@click.option("--auto", "auto", is_flag=True,
              help="Run as the timer does: do nothing when automatic updates are off; a policy skip is not an error.")
@click.pass_context
def update(ctx: click.Context, auto: bool) -> None:
    """Verify the repository and bring the kernel to the level the policy asks for."""
    from kbuilder.agent.errors import SeverityBelowPolicy

    try:
        decision = _agent(ctx, need_config=True).update(auto=auto)
    except SeverityBelowPolicy as exc:
        if not auto:
            raise
        click.echo(f"skipped: {exc}")
        return
    click.echo(decision.summary)
    for note in decision.notes:
        click.echo(f"note: {note}")


@agent.command()
@click.option("--to", "to", type=click.IntRange(min=0), help="The level to go back to (default: the previous one).")
@click.pass_context
def rollback(ctx: click.Context, to: int | None) -> None:
    """Go back to the previous (or a given) level, and pin it."""
    decision = _agent(ctx, need_config=False).rollback(to)
    click.echo(decision.summary)
    for note in decision.notes:
        click.echo(f"note: {note}")


@agent.command()
@click.option("--all", "all_", is_flag=True, required=True, help="Every livepatch the agent loaded.")
@click.pass_context
def unload(ctx: click.Context, all_: bool) -> None:
    """Disable and unload every livepatch the agent loaded (and pin level 0)."""
    if not all_:
        raise click.UsageError("give --all")
    decision = _agent(ctx, need_config=False).unload_all()
    click.echo(decision.summary)
    for note in decision.notes:
        click.echo(f"note: {note}")


@agent.command()
@click.argument("level")
@click.pass_context
def pin(ctx: click.Context, level: str) -> None:
    """Pin a level: LEVEL (0 = none loaded), 'none' (follow the newest) or 'default' (the configuration's)."""
    value: int | None | str
    if level == "none":
        value = None
    elif level == "default":
        value = "default"
    elif level.isdigit():
        value = int(level)
    else:
        raise click.BadParameter(f"{level!r}: give a level number, 'none' or 'default'", param_hint="LEVEL")
    settings = _agent(ctx, need_config=False).pin(value)
    shown = "none" if settings.pinned is None else settings.pinned
    click.echo(f"pinned level: {shown} ({settings.pinned_source}); agent update applies it")


@agent.command(name="auto-update")
@click.argument("mode", type=click.Choice(["on", "off", "default"]))
@click.pass_context
def auto_update(ctx: click.Context, mode: str) -> None:
    """Allow or stop what the timer (agent update --auto) does."""
    settings = _agent(ctx, need_config=False).set_auto_update("default" if mode == "default" else mode == "on")
    click.echo(f"automatic updates: {'on' if settings.auto_update else 'off'} ({settings.auto_source})")
