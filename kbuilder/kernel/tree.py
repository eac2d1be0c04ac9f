"""Build a kernel tree twice: the original objects, then the patched ones.

The user's tree is never written. It is mirrored into the cache as a tree of
hard links (`cp -al`) that serves as kbuild's srctree, with an `O=` output
directory beside it: the original build, made once per (tree, config,
compiler, flags) and kept. A patch is applied to the mirror (GNU patch
writes a new file, so the user's file behind the link stays untouched), the
output directory is rebuilt incrementally after a hard-link snapshot of it
(the compiler and linkers also write new files, so the snapshot keeps the
original objects), the objects whose content changed are copied out, and
both the mirror and the output directory are put back exactly as they were,
timestamps included, so the next patch starts from a warm tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import InputError
from kbuilder.kernel import toolchain
from kbuilder.kernel.patches import SourcePatch
from kbuilder.kernel.patches import apply as apply_patches
from kbuilder.kernel.cache import cache_key, cache_root, is_complete, mark_complete, read_complete

FORMAT = 1
FUNCTION_SECTIONS = ("-ffunction-sections", "-fdata-sections")
PATCH_HEADER = Path(__file__).resolve().parent.parent / "module" / "include" / "kbuilder-patch.h"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class KernelBuild:
    source: Path
    src: Path
    obj: Path
    key: str
    root: Path
    kcflags: str

    @property
    def config(self) -> Path:
        return self.obj / ".config"

    @property
    def vmlinux(self) -> Path:
        return self.obj / "vmlinux"

    @property
    def symvers(self) -> Path:
        return self.obj / "Module.symvers"

    @property
    def system_map(self) -> Path:
        return self.obj / "System.map"

    @property
    def bzimage(self) -> Path:
        return self.obj / "arch" / "x86" / "boot" / "bzImage"

    @property
    def release(self) -> str:
        try:
            return (self.obj / "include" / "config" / "kernel.release").read_text().strip()
        except OSError:
            return ""

    def make_args(self, jobs: int) -> list[str]:
        return ["make", "-C", str(self.src), f"O={self.obj}", f"-j{jobs}", f"KCFLAGS={self.kcflags}"]


def tree_identity(source: Path) -> str:
    """A digest of every file's path, size and modification time: any edit
    of the tree gives another key (so another build), cheaply."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, source)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def include_dir(cache: Path) -> Path:
    """kbuilder's patch-author header, at a fixed path inside the cache. The
    path is part of KCFLAGS (so of every build's key and kbuild's command
    lines) and must not change with the header's content; only patched code
    includes the header, and patched files are always recompiled."""
    data = PATCH_HEADER.read_bytes()
    target = cache / "include"
    header = target / PATCH_HEADER.name
    if not header.exists() or header.read_bytes() != data:
        target.mkdir(parents=True, exist_ok=True)
        tmp = header.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, header)
    return target


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def mirror_tree(source: Path, dest: Path) -> None:
    """Hard-link copy of `source` (a plain copy across file systems)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = toolchain.run(["cp", "-al", str(source), str(tmp)], what="cp -al", check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        toolchain.run(["cp", "-a", str(source), str(tmp)], what="cp -a")
    os.replace(tmp, dest)


def build_original(source: Path, config: Path, *, jobs: int, targets: Sequence[str] = ("vmlinux", "modules"),
                   cache: Path | None = None, progress: Progress = _quiet) -> KernelBuild:
    source = Path(source).resolve()
    config = Path(config).resolve()
    if not (source / "Makefile").is_file() or not (source / "Kconfig").is_file():
        raise InputError("not a kernel source tree (no Makefile/Kconfig)", path=str(source))
    if not config.is_file():
        raise InputError("kernel config not found", path=str(config))
    cache = cache or cache_root()
    inc = include_dir(cache)
    kcflags = " ".join((*FUNCTION_SECTIONS, f"-I{inc}"))
    progress("hashing the source tree")
    key = cache_key("orig-build", FORMAT, tree_identity(source), hashlib.sha256(config.read_bytes()).hexdigest(),
                    toolchain.gcc_version(), kcflags)
    root = cache / "builds" / key
    build = KernelBuild(source, root / "src", root / "obj", key, root, kcflags)
    with locked(cache / "builds" / f"{key}.lock"):
        done = set(read_complete(root).get("targets", [])) if is_complete(root) else set()  # type: ignore[arg-type]
        if done.issuperset(targets):
            return build
        root.mkdir(parents=True, exist_ok=True)
        if not build.src.exists():
            progress("mirroring the source tree")
            mirror_tree(source, build.src)
        build.obj.mkdir(exist_ok=True)
        if not build.config.exists():
            shutil.copyfile(config, build.config)
        log = root / "build.log"
        progress(f"building the original kernel ({' '.join(targets)}), log: {log}")
        toolchain.run([*build.make_args(jobs), "olddefconfig"], log=log, what="make olddefconfig")
        toolchain.run([*build.make_args(jobs), *targets], log=log, what="kernel build")
        mark_complete(root, {"targets": sorted(done | set(targets)), "source": str(source)})
    return build


# Objects that change on every link or are not kernel text.
_NOT_PATCH_OBJECTS = re.compile(r"(^|/)(vmlinux\.o|\.tmp_.*|.*\.mod\.o|\.vmlinux\.export\.o|"
                                r"initramfs_data\.o|built-in\.a)$|^init/version.*\.o$|^(arch/x86/boot|"
                                r"arch/x86/realmode|arch/x86/entry/vdso|scripts|tools)/")


@dataclass(frozen=True, slots=True)
class ChangedObject:
    rel: str          # path inside the build directory, e.g. fs/proc/cmdline.o
    orig: Path        # copy of the original object
    patched: Path     # copy of the patched object
    objname: str      # "vmlinux" or the module it is linked into


def module_map(obj: Path) -> dict[str, str]:
    """Object path -> module name, from kbuild's `*.mod` files (one per
    module, listing its objects); objects in none of them are in vmlinux."""
    owners: dict[str, str] = {}
    for mod in obj.rglob("*.mod"):
        name = mod.name[:-4].replace("-", "_")
        for line in mod.read_text(errors="replace").split():
            rel = line.strip()
            if rel.endswith(".o"):
                owners[os.path.normpath(rel)] = name
    return owners


def build_patched(build: KernelBuild, patches: Sequence[SourcePatch], work: Path, *, jobs: int,
                  progress: Progress = _quiet) -> list[ChangedObject]:
    """Rebuild with the patches applied; return the objects that changed.
    The mirror and the build directory are restored afterwards."""
    snapshot = build.root / "snapshot"
    log = work / "patched-build.log"
    with locked(build.root.parent / f"{build.key}.lock"):
        shutil.rmtree(snapshot, ignore_errors=True)
        toolchain.run(["cp", "-al", str(build.obj), str(snapshot)], what="snapshot of the build directory")
        touched = [f for p in patches for f in p.files]
        try:
            progress("applying the patches")
            apply_patches(build.src, list(patches))
            targets = rebuild_targets(build, touched)
            progress(f"building the patched kernel ({' '.join(targets)}), log: {log}")
            toolchain.run([*build.make_args(jobs), "KBUILD_MODPOST_WARN=1", *targets], log=log,
                          what="patched kernel build")
            changed = _collect_changed(build, snapshot, work)
        finally:
            _restore_sources(build, touched)
            _restore_build_dir(build.obj, snapshot)
            shutil.rmtree(snapshot, ignore_errors=True)
    return changed


def rebuild_targets(build: KernelBuild, touched: Sequence[str]) -> list[str]:
    """Only the objects of the patched C files when each of them was built
    on its own (a single-object make skips relinking vmlinux); anything else
    (a header, a C file included by another) rebuilds everything it affects."""
    objects = []
    for rel in touched:
        if not rel.endswith(".c"):
            return ["vmlinux", "modules"]
        obj = rel[:-2] + ".o"
        if not (build.obj / os.path.dirname(obj) / f".{os.path.basename(obj)}.cmd").is_file():
            return ["vmlinux", "modules"]
        objects.append(obj)
    return sorted(set(objects))


def _collect_changed(build: KernelBuild, snapshot: Path, work: Path) -> list[ChangedObject]:
    owners = module_map(build.obj)
    changed = []
    for path in sorted(build.obj.rglob("*.o")):
        rel = str(path.relative_to(build.obj))
        if _NOT_PATCH_OBJECTS.search(rel):
            continue
        before = snapshot / rel
        if not before.exists():
            raise InputError(f"the patch adds a new object ({rel}); add new code to an existing file instead",
                             path=rel)
        if os.stat(path).st_ino == os.stat(before).st_ino or _same_bytes(path, before):
            continue
        orig_copy, patched_copy = work / "orig" / rel, work / "patched" / rel
        for src, dst in ((before, orig_copy), (path, patched_copy)):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        changed.append(ChangedObject(rel, orig_copy, patched_copy, owners.get(rel, "vmlinux")))
    return changed


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()


def _restore_sources(build: KernelBuild, files: Sequence[str]) -> None:
    """Put back the user's file (as a hard link again) for every file the
    patches touched, with its original timestamps."""
    for rel in files:
        mirror, original = build.src / rel, build.source / rel
        if mirror.exists() or mirror.is_symlink():
            mirror.unlink()
        for leftover in (mirror.with_name(mirror.name + ".orig"), mirror.with_name(mirror.name + ".rej")):
            if leftover.exists() and not (build.source / rel).with_name(leftover.name).exists():
                leftover.unlink()
        if original.exists():
            try:
                os.link(original, mirror)
            except OSError:
                shutil.copy2(original, mirror)


def _restore_build_dir(obj: Path, snapshot: Path) -> None:
    """Every file the rebuild replaced or added goes; the snapshot's come back."""
    for root, _, files in os.walk(obj):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, obj)
            before = os.path.join(snapshot, rel)
            if not os.path.lexists(before):
                os.unlink(path)
            elif os.lstat(path).st_ino != os.lstat(before).st_ino:
                os.unlink(path)
                os.link(before, path, follow_symlinks=False)
    for root, _, files in os.walk(snapshot):
        for name in files:
            before = os.path.join(root, name)
            path = os.path.join(obj, os.path.relpath(before, snapshot))
            if not os.path.lexists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.link(before, path, follow_symlinks=False)
