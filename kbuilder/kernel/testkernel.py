"""The test kernel: Debian's linux-source-6.1, configured to boot under QEMU
and to load livepatch modules, built the way kbuilder builds originals.

`prepare_test_kernel` unpacks the tarball into the cache once (keyed by the
tarball, the config fragment and FORMAT), makes the one-line linker-script
change that lets a `-ffunction-sections` vmlinux boot, writes the config, and
hands the tree to `tree.build_original`. So the build it returns is exactly
what `kbuild build` later finds in the cache as the original build of that
tree and config: the first patch against the test kernel starts warm.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import InputError
from kbuilder.kernel import toolchain, tree
from kbuilder.kernel.cache import cache_key, cache_root, is_complete, mark_complete, read_complete
from kbuilder.kernel.config import LIVEPATCH_FRAGMENT, write_config

FORMAT = 1
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TARGETS = ("vmlinux", "modules", "bzImage")
CONFIG_NAME = "livepatch.config"
SAMPLE_MODULE = Path("samples/livepatch/livepatch-sample.ko")

# kbuilder builds with -ffunction-sections -fdata-sections; the stock linker
# script merges the resulting `.text.<fn>`/`.data.<var>`/... sections into the
# output only under LD_DEAD_CODE_DATA_ELIMINATION or LTO_CLANG, and leaves
# them as tens of thousands of orphans otherwise (the kernel then does not
# even print). Making those patterns unconditional fixes it; the line count
# stays the same, so line numbers in __LINE__ and BUG() tables do not move.
LDS_FILE = Path("include/asm-generic/vmlinux.lds.h")
LDS_OLD = "#if defined(CONFIG_LD_DEAD_CODE_DATA_ELIMINATION) || defined(CONFIG_LTO_CLANG)\n"
LDS_NEW = "#if 1 /* kbuilder: always merge -ffunction-sections/-fdata-sections input sections */\n"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class TestKernel:
    """A built test kernel. `source` is the unpacked (and linker-script
    patched) tree, `config_file` the config it was built from."""

    __test__ = False  # not a pytest test class, despite the name

    source: Path
    config_file: Path
    build: tree.KernelBuild

    @property
    def bzimage(self) -> Path:
        return self.build.bzimage

    @property
    def vmlinux(self) -> Path:
        return self.build.vmlinux

    @property
    def system_map(self) -> Path:
        return self.build.system_map

    @property
    def symvers(self) -> Path:
        return self.build.symvers

    @property
    def config(self) -> Path:
        return self.build.config

    @property
    def obj(self) -> Path:
        return self.build.obj

    @property
    def release(self) -> str:
        return self.build.release

    @property
    def sample_module(self) -> Path:
        """The kernel's livepatch sample (changes /proc/cmdline)."""
        return self.build.obj / SAMPLE_MODULE

    def as_dict(self) -> dict[str, str]:
        return {"bzimage": str(self.bzimage), "vmlinux": str(self.vmlinux), "system_map": str(self.system_map),
                "symvers": str(self.symvers), "config": str(self.config_file), "build_config": str(self.config),
                "source": str(self.source),
                "build_dir": str(self.obj), "release": self.release, "sample_module": str(self.sample_module)}


def patch_linker_script(src: Path) -> None:
    """Make the section-merging patterns of vmlinux.lds.h unconditional."""
    path = src / LDS_FILE
    text = path.read_text()
    if text.count(LDS_OLD) != 1:
        raise InputError("the line to change was not found exactly once; this kernel version's linker "
                         f"script differs from the one kbuilder knows ({LDS_OLD.strip()!r})", path=str(path))
    st = path.stat()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text.replace(LDS_OLD, LDS_NEW))
    os.chmod(tmp, st.st_mode & 0o7777)
    # Keep the tarball's timestamp: the tree's identity (and so the build
    # key) is then the same on every machine that unpacks the same tarball.
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


def _unpack(tarball: Path, dest: Path, log: Path) -> None:
    dest.mkdir(parents=True)
    toolchain.run(["tar", "-xf", str(tarball), "-C", str(dest), "--strip-components=1", "--no-same-owner"],
                  log=log, what="unpacking the kernel source")
    if not (dest / "Makefile").is_file():
        raise InputError("the tarball does not hold a kernel tree under one top directory", path=str(tarball))


def prepare_test_kernel(*, jobs: int, cache: Path | None = None, progress: Progress = _quiet,
                        tarball: Path = TARBALL) -> TestKernel:
    """Unpack, configure and build the test kernel (each step only once:
    later calls find it in the cache and return at once)."""
    cache = Path(cache) if cache is not None else cache_root()
    tarball = Path(tarball)
    try:
        st = tarball.stat()
    except OSError:
        raise InputError("kernel source tarball not found (Debian package linux-source-6.1)",
                         path=str(tarball)) from None
    key = cache_key("testkernel", FORMAT, tarball.name, st.st_size, st.st_mtime_ns, LIVEPATCH_FRAGMENT, LDS_NEW)
    base = cache / "testkernel"
    entry = base / key
    with tree.locked(base / f"{key}.lock"):
        if not is_complete(entry):
            _make_entry(tarball, entry, progress)
    start = time.monotonic()
    build = tree.build_original(entry / "src", entry / CONFIG_NAME, jobs=jobs, targets=TARGETS, cache=cache,
                                progress=progress)
    progress(f"test kernel {build.release} ready ({time.monotonic() - start:.1f} s)")
    return TestKernel(entry / "src", entry / CONFIG_NAME, build)


def _make_entry(tarball: Path, entry: Path, progress: Progress) -> None:
    tmp = entry.with_name(entry.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(entry, ignore_errors=True)  # an incomplete leftover
    tmp.mkdir(parents=True)
    log = tmp / "prepare.log"
    src = tmp / "src"
    progress(f"unpacking {tarball.name}")
    t0 = time.monotonic()
    _unpack(tarball, src, log)
    patch_linker_script(src)
    t1 = time.monotonic()
    progress(f"unpacked in {t1 - t0:.1f} s; writing the test kernel config")
    scratch = tmp / "config-obj"
    config = write_config(src, scratch, LIVEPATCH_FRAGMENT, log=log)
    shutil.copyfile(config, tmp / CONFIG_NAME)
    shutil.rmtree(scratch)
    t2 = time.monotonic()
    progress(f"config written in {t2 - t1:.1f} s")
    os.replace(tmp, entry)
    mark_complete(entry, {"tarball": str(tarball), "unpack_seconds": round(t1 - t0, 1),
                          "config_seconds": round(t2 - t1, 1)})


def entry_info(kernel: TestKernel) -> dict[str, object]:
    """What was recorded when the entry was made (timings, tarball)."""
    return read_complete(kernel.source.parent)
