"""The `kbuild` command line: a thin layer over the library.

Only this package prints or exits. Every `KbuilderError` becomes one line on
stderr and its class's exit code (docs/cli.md); anything else is an internal
error (exit 1) with a one-line summary, or a traceback under --debug.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from kbuilder import __version__
from kbuilder.errors import EXIT_ERROR, EXIT_USAGE, KbuilderError


class _Group(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        given = kwargs.get("args", args[0] if args else None)
        debug = "--debug" in (sys.argv[1:] if given is None else list(given))
        try:
            rc = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("kbuild: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_ERROR)
        except KbuilderError as exc:
            reasons = getattr(exc, "reasons", None)
            if reasons:  # every reason a change cannot be live-patched, one per line
                for reason in reasons:
                    click.echo(f"kbuild: unpatchable: {reason}", err=True)
            else:
                click.echo(f"kbuild: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            sys.exit(EXIT_ERROR)
        except Exception as exc:  # a bug: say so in one line unless asked for detail
            if debug:
                raise
            click.echo(f"kbuild: internal error: {type(exc).__name__}: {exc} (rerun with --debug "
                       "for a traceback, and please report it)", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(rc or 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kbuild")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def main(debug: bool) -> None:
    """Build Linux livepatch modules from kernel source patches."""


def _register() -> None:
    from kbuilder.cli import agent as agent_cmd
    from kbuilder.cli import build as build_cmd
    from kbuilder.cli import diff as diff_cmd
    from kbuilder.cli import info as info_cmd
    from kbuilder.cli import inspect as inspect_cmd
    from kbuilder.cli import plan as plan_cmd
    from kbuilder.cli import repo as repo_cmd
    from kbuilder.cli import testkernel as testkernel_cmd
    from kbuilder.cli import testload as testload_cmd

    main.add_command(inspect_cmd.inspect)
    main.add_command(diff_cmd.diff)
    main.add_command(build_cmd.build)
    main.add_command(info_cmd.info)
    main.add_command(plan_cmd.plan)
    main.add_command(testkernel_cmd.testkernel)
    main.add_command(testload_cmd.test_load)
    main.add_command(repo_cmd.repo)
    main.add_command(agent_cmd.agent)


_register()
