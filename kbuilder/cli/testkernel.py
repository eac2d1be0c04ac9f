"""`kbuild testkernel`: build (once) and show the QEMU test kernel."""

from __future__ import annotations

import json
import os
import time

import click


@click.command("testkernel")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0,
              help="Parallel make jobs for the kernel build (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the paths as a JSON object.")
def testkernel(jobs: int, as_json: bool) -> None:
    """Build the livepatch-capable test kernel (Debian's linux-source-6.1,
    a small config, kbuilder's build flags) unless the cache has it, and
    print its paths: bzImage, vmlinux, source and build directories, release.

    The first run takes a few minutes (unpack, config, build); progress goes
    to stderr. Later runs print the cached paths at once.
    """
    from kbuilder.kernel.testkernel import prepare_test_kernel

    start = time.monotonic()

    def progress(message: str) -> None:
        click.echo(f"kbuild: testkernel: [{time.monotonic() - start:5.0f} s] {message}", err=True)

    kernel = prepare_test_kernel(jobs=jobs or os.cpu_count() or 1, progress=progress)
    info = kernel.as_dict()
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    for key in ("bzimage", "vmlinux", "system_map", "symvers", "config", "build_config", "sample_module", "source", "build_dir",
                "release"):
        click.echo(f"{key}: {info[key]}")
