"""`kbuild test-load`: prove in QEMU that livepatch modules load, take
effect, and unload cleanly."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from kbuilder.errors import EXIT_ERROR


@click.command("test-load")
@click.option("--kernel", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Kernel image to boot (bzImage), e.g. from `kbuild testkernel`.")
@click.option("--module", "modules", required=True, multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Livepatch module (.ko) to load; repeat for several (loaded in order, unloaded in reverse).")
@click.option("--check", required=True, metavar="'SHELL COMMAND'",
              help="Guest shell command (busybox) that succeeds only while the patch is in effect.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds before QEMU is killed.")
@click.option("--transition-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds a patch or unpatch transition may take in the guest.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False),
              help="Console log to write (default: a new file under the temporary directory).")
def test_load(kernel: str, modules: tuple[str, ...], check: str, timeout: float, transition_timeout: float,
              log_path: str | None) -> None:
    """Boot KERNEL under QEMU once and check, in order: CHECK fails; every
    module loads and its livepatch transition completes; CHECK passes; the
    patches are disabled and the modules unloaded (in reverse order); CHECK
    fails again. The kernel must not oops, warn or panic on the way.

    Exit status 0 when all of that held, 1 otherwise (one line on stderr
    names the step that failed and the console log).
    """
    from kbuilder.kernel import vm

    log = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="kbuild-test-load-")) / "console.log"
    result = vm.test_load(Path(kernel), [Path(m) for m in modules], check, timeout=timeout, log=log.absolute(),
                          transition_timeout=transition_timeout)
    if not result.ok:
        click.echo(f"kbuild: test-load failed: {result.failure} (log: {result.log})", err=True)
        sys.exit(EXIT_ERROR)
    for outcome in result.outcomes:
        click.echo(f"ok {outcome.label} (exit {outcome.status})")
    click.echo(f"test-load: passed in {result.seconds:.1f} s (log: {result.log})")
