"""`kbuild plan --series FILE --to LEVEL`: what to load or unload, without
doing it."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--series", "series_file", required=True, type=click.Path(dir_okay=False),
              help="The series file (TOML, docs/series.md).")
@click.option("--to", "level", required=True, type=click.IntRange(min=0),
              help="Target level (0: remove every module of the series).")
@click.option("--loaded", "loaded_file", type=click.Path(dir_okay=False),
              help="JSON list of the loaded livepatches, instead of reading sysfs.")
@click.option("--sysfs", "sysfs_dir", type=click.Path(file_okay=False), default=None,
              help="The livepatch sysfs directory (default /sys/kernel/livepatch).")
@click.option("--modules-dir", "module_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Where the loaded modules' files are, to read their metadata (repeatable).")
@click.option("--cumulative", "mode", flag_value="cumulative", help="Plan for cumulative modules.")
@click.option("--incremental", "mode", flag_value="incremental", help="Plan for incremental modules.")
@click.option("--min-severity", type=click.Choice(["none", "low", "medium", "high", "critical"],
                                                  case_sensitive=False),
              help="The selection the incremental modules were built with.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(series_file: str, level: int, loaded_file: str | None, sysfs_dir: str | None,
         module_dirs: tuple[str, ...], mode: str | None, min_severity: str | None, as_json: bool) -> None:
    """Print what to load, disable or unload to reach level --to of a series.

    Nothing is changed. The loaded livepatches come from --loaded FILE.json
    or from the livepatch sysfs directory. The mode is the series file's
    unless --cumulative or --incremental says otherwise.
    """
    from kbuilder.metadata.plan import plan as make_plan
    from kbuilder.metadata.plan import plan_json, read_loaded, read_loaded_json
    from kbuilder.metadata.series import load_series

    if loaded_file and sysfs_dir:
        raise click.UsageError("give --loaded or --sysfs, not both")
    series = load_series(series_file, check_files=False)
    if loaded_file:
        loaded = read_loaded_json(loaded_file)
    else:
        loaded = read_loaded(sysfs_dir or "/sys/kernel/livepatch", tuple(module_dirs))
    mode = mode or series.mode
    actions = make_plan(series, loaded, level, mode, min_severity=min_severity)
    if as_json:
        click.echo(json.dumps(plan_json(actions, series=series, target_level=level, mode=mode, loaded=loaded),
                              indent=2, sort_keys=True))
        return
    if not actions:
        click.echo(f"nothing to do: level {level} of {series.name} ({mode}) is in place")
        return
    width = max(len(str(a)) for a in actions)
    for action in actions:
        click.echo(f"{str(action):<{width}}  # {action.reason}" if action.reason else str(action))
