"""`build_livepatch`: from a kernel tree and source patches to a verified
livepatch module and its report. One stage per line; each stage lives in
its own module (kernel/ builds, diff.py compares, module/ generates)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kbuilder import __version__
from kbuilder.diff import DiffOptions, diff_files
from kbuilder.elf import ElfObject, serialize
from kbuilder.elf.symbols import read_symbol_table
from kbuilder.emit.parent import (
    read_symvers,
    shared_parent_symbols,
    shared_symvers,
)
from kbuilder.errors import InputError, NoChangeError, UnpatchableError
from kbuilder.kernel import toolchain
from kbuilder.kernel.cache import cache_root
from kbuilder.kernel.patches import SourcePatch, check_patches, read_patch
from kbuilder.kernel.tree import (
    ChangedObject,
    KernelBuild,
    build_original,
    build_patched,
    locked,
)
from kbuilder.module.check import check_module
from kbuilder.module.generate import ModuleSpec, add_aliases, sanitize_module_name
from kbuilder.module.kbuild import build_module
from kbuilder.module.signing import Signing, find_tool, record_signature, sign_blob
from kbuilder.module.signing import check as check_signing
from kbuilder.util.files import atomic_write

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    source: Path
    patches: tuple[Path, ...]
    config: Path | None = None
    vmlinux: Path | None = None
    jobs: int = 0
    name: str | None = None
    output: Path = Path(".")
    replace: bool = True
    description: str = ""
    states: tuple[tuple[int, int], ...] = ()
    # Builds the metadata from (report, diff reports); series builds set it.
    metadata: Callable[[dict[str, Any], list[dict[str, Any]]], Any] | None = None
    # Sign the module with the kernel's sign-file (kbuilder.module.signing).
    signing: Signing | None = None


@dataclass(slots=True)
class BuildResult:
    module: Path
    report_path: Path
    report: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def module_name(opts: BuildOptions, patches: list[SourcePatch]) -> str:
    if opts.name:
        return sanitize_module_name(opts.name)
    stem = re.sub(r"\.(patch|diff)$", "", patches[0].path.name)
    if len(patches) > 1:
        stem = f"{stem}-and-{len(patches) - 1}-more"
    return sanitize_module_name(f"livepatch-{stem}")


class _Clock:
    """Per-stage wall-clock seconds, for the build report's timings."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self.mark = self._now()
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = self._now()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - self.mark, 3)
        self.mark = now


def prepare(opts: BuildOptions, progress: Progress) -> tuple[list[SourcePatch], KernelBuild]:
    """Check the inputs and make sure the original build exists."""
    patches = [read_patch(Path(p).resolve()) for p in opts.patches]
    check_patches(patches)
    config = validate_inputs(opts)
    if opts.signing is not None:
        check_signing(opts.signing)
    orig = build_original(opts.source, config, jobs=opts.jobs or os.cpu_count() or 1, progress=progress)
    check_compiler(orig, opts.vmlinux)
    if opts.signing is not None:
        find_tool(opts.signing, _sign_trees(opts, orig))    # fail now, not after the build
    return patches, orig


def _sign_trees(opts: BuildOptions, orig: KernelBuild) -> list[Path]:
    return [orig.obj, Path(opts.source)]


def build_livepatch(opts: BuildOptions, progress: Progress) -> BuildResult:
    clock = _Clock()
    patches, orig = prepare(opts, progress)
    clock.lap("original build")
    name = module_name(opts, patches)
    with workspace(name) as work:
        changed = build_patched(orig, patches, work, jobs=opts.jobs or os.cpu_count() or 1, progress=progress)
        if not changed:
            raise NoChangeError("the patches change no object file")
        clock.lap("patched build")
        return build_from_changed(name, opts, orig, patches, changed, work, clock, progress)


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A fresh work directory for module NAME, held under a lock: two builds
    of the same module name (CI jobs sharing a cache) would otherwise empty
    each other's cache/work/NAME and cache/modbuild/NAME; the second waits."""
    work = cache_root() / "work" / name
    with locked(cache_root() / "work" / f"{name}.lock"):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        yield work


def build_from_changed(name: str, opts: BuildOptions, orig: KernelBuild, patches: list[SourcePatch],
                       changed: list[ChangedObject], work: Path, clock: _Clock, progress: Progress,
                       *, provides: str | None = None, requires: str | None = None) -> BuildResult:
    """Diff the changed objects, make the module, check it, write NAME.ko and NAME.json."""
    jobs = opts.jobs or os.cpu_count() or 1
    progress(f"comparing {len(changed)} changed object(s)")
    reports = diff_changed(orig, changed, opts.vmlinux, jobs)
    clock.lap("diff")
    spec, outputs = plan_module(name, opts, reports)
    spec.provides, spec.requires = provides, requires
    progress(f"building module {name}")
    ko, moved = build_module(spec, outputs, orig.obj, cache_root() / "modbuild" / name, jobs=jobs,
                             log=work / "module-build.log")
    clock.lap("module build")
    exports = read_symvers(orig.symvers)
    if requires:
        exports[requires] = "previous module of the stack"
    verify = check_module(ko, release=orig.release, exports=exports,
                          symbol_tables=_symbol_tables(orig, opts.vmlinux, spec))
    if verify.problems:
        raise InputError("the module failed its checks: " + "; ".join(verify.problems), path=name + ".ko")
    clock.lap("verify")
    report = build_report(name, opts, orig, patches, reports, spec, serialize(ko), verify.modinfo, moved)
    blob = attach_metadata(ko, report, reports, opts)
    if opts.signing is not None:
        tool = find_tool(opts.signing, _sign_trees(opts, orig))
        progress(f"signing {name}.ko with {tool}")
        blob = sign_blob(blob, opts.signing, tool, work / f"{name}.ko")
        record_signature(report, blob, opts.signing, tool)
        clock.lap("sign")
    module_path = opts.output / f"{name}.ko"
    report_path = opts.output / f"{name}.json"
    atomic_write(module_path, blob)
    atomic_write(report_path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    clock.lap("write")
    return BuildResult(module_path, report_path, report, dict(clock.timings))


def attach_metadata(ko: ElfObject, report: dict[str, Any], reports: list[dict[str, Any]],
                    opts: BuildOptions) -> bytes:
    """Embed the module's metadata (kbuilder/metadata) and return the final
    bytes; the report gets the metadata and the final hash."""
    from kbuilder.metadata.model import finalize, from_build

    meta = opts.metadata(report, reports) if opts.metadata is not None else from_build(
        report, diff_reports=reports, states=opts.states)
    blob, doc = finalize(ko, meta)
    report["module"]["sha256"] = hashlib.sha256(blob).hexdigest()
    report["metadata"] = doc
    return blob


def validate_inputs(opts: BuildOptions) -> Path:
    from kbuilder.kernel.config import check_livepatch_config

    source = Path(opts.source)
    if not source.is_dir():
        raise InputError("kernel source tree not found", path=str(source))
    config = Path(opts.config) if opts.config else source / ".config"
    if not config.is_file():
        raise InputError("no kernel config: pass --config (the running kernel's .config)", path=str(config))
    problems = check_livepatch_config(config)
    if problems:
        raise InputError("; ".join(problems), path=str(config))
    if opts.vmlinux is not None and not Path(opts.vmlinux).is_file():
        raise InputError("target vmlinux not found", path=str(opts.vmlinux))
    return config


def check_compiler(orig: KernelBuild, vmlinux: Path | None) -> None:
    """The patch must be compiled by the compiler that built the target:
    code generation differences would show up as changed functions."""
    target = Path(vmlinux) if vmlinux else orig.vmlinux
    if not target.is_file():
        return
    ours = _gcc_comment(toolchain.gcc_version())
    theirs = _comment_of(target)
    if theirs and ours and ours not in theirs:
        raise InputError(f"compiler mismatch: the kernel was built with '{theirs}', this machine has '{ours}'",
                         path=str(target))


def _gcc_comment(version_line: str) -> str:
    match = re.search(r"\d+\.\d+\.\d+", version_line)
    return match.group(0) if match else ""


def _comment_of(vmlinux: Path) -> str:
    data = vmlinux.read_bytes()
    match = re.search(rb"GCC: \([^)]*\) ([0-9.]+)", data)
    return match.group(0).decode() if match else ""


def _diff_one(args: tuple[str, str, str, str, str | None, str, dict[str, int]]) -> dict[str, Any]:
    from kbuilder.emit.report import report_dict

    rel, orig, patched, objname, parent, symvers, sizes = args
    options = DiffOptions(objname=objname, parent=shared_parent_symbols(parent) if parent else None,
                          exports=shared_symvers(symvers), struct_sizes=sizes)
    result = diff_files(orig, patched, options)
    report = report_dict(result, None)
    report["rel"] = rel
    report["output_bytes"] = serialize(result.output) if result.output is not None else None
    return report


def diff_changed(orig: KernelBuild, changed: list[ChangedObject], vmlinux: Path | None,
                 jobs: int) -> list[dict[str, Any]]:
    from kbuilder.kernel.structsizes import struct_sizes

    sizes = struct_sizes(orig.obj, jobs=jobs)
    work = []
    for obj in changed:
        if obj.objname == "vmlinux":
            parent = str(vmlinux or orig.vmlinux)
        else:
            kos = [p for p in orig.obj.rglob("*.ko") if p.stem.replace("-", "_") == obj.objname]
            parent = str(kos[0]) if kos else None
        work.append((obj.rel, str(obj.orig), str(obj.patched), obj.objname, parent, str(orig.symvers), sizes))
    if len(work) == 1 or jobs == 1:
        reports = [_diff_one(w) for w in work]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            reports = list(pool.map(_diff_one, work))
    refusals = [f"{r['rel']}: {x['message']}" for r in reports for x in r["refusals"]]
    if refusals:
        raise UnpatchableError(refusals)
    if not any(r["status"] == "patch" for r in reports):
        raise NoChangeError("no functional change in " + ", ".join(r["rel"] for r in reports))
    return reports


def plan_module(name: str, opts: BuildOptions, reports: list[dict[str, Any]]) -> tuple[ModuleSpec, list]:  # type: ignore[type-arg]
    from kbuilder.elf import parse_object

    spec = ModuleSpec(name=name, replace=opts.replace, states=list(opts.states),
                      description=opts.description or f"livepatch built by kbuilder from "
                      f"{', '.join(p.name for p in opts.patches)}")
    outputs = []
    for i, report in enumerate(sorted(reports, key=lambda r: r["rel"])):
        if report["status"] != "patch":
            continue
        out = parse_object(report["output_bytes"], report["rel"])
        _unprefix_import_namespaces(out)
        add_aliases(spec, out, report["functions"], report["objname"], report["rel"])
        outputs.append((f"kbuilder-{i}-{Path(report['rel']).stem}.o", out))
    return spec, outputs


def _unprefix_import_namespaces(out: ElfObject) -> None:
    """Tags of built-in code carry its module name (`proc.import_ns=X`); in
    the patch module they are the module's own (`import_ns=X`)."""
    modinfo = out.find_section(".modinfo")
    if modinfo is None:
        return
    tags = [t.split(b".", 1)[1] if b".import_ns=" in t.split(b"=", 1)[0] + b"=" else t
            for t in modinfo.data.split(b"\0") if t]
    modinfo.data = b"".join(t + b"\0" for t in tags)
    modinfo.size = len(modinfo.data)


def _symbol_tables(orig: KernelBuild, vmlinux: Path | None, spec: ModuleSpec) -> dict[str, list]:  # type: ignore[type-arg]
    tables = {"vmlinux": read_symbol_table(vmlinux or orig.vmlinux)}
    for objname in spec.objects:
        if objname != "vmlinux":
            kos = [p for p in orig.obj.rglob("*.ko") if p.stem.replace("-", "_") == objname]
            if kos:
                tables[objname] = read_symbol_table(kos[0])
    return tables


def build_id(vmlinux: Path) -> str:
    """The GNU build id of vmlinux, as hex, read from its `.notes` section:
    that section is what the running kernel exports as /sys/kernel/notes,
    which the agent matches artifacts against. (Not the first build-id note
    anywhere in the file: vmlinux embeds the vDSO, an ELF image with a
    build id of its own, ahead of `.notes`.) Other ELF files: their first
    SHT_NOTE section with a build id. "" when there is none."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    from kbuilder.agent.kernel import parse_build_id

    try:
        with open(vmlinux, "rb") as fh:
            elf = ELFFile(fh)
            notes = elf.get_section_by_name(".notes")
            candidates = [notes] if notes is not None else \
                [sec for sec in elf.iter_sections() if sec["sh_type"] == "SHT_NOTE"]
            for section in candidates:
                found = parse_build_id(section.data())
                if found:
                    return found
    except ELFError:
        pass
    return ""


def build_report(name: str, opts: BuildOptions, orig: KernelBuild, patches: list[SourcePatch],
                 reports: list[dict[str, Any]], spec: ModuleSpec, blob: bytes, modinfo: dict[str, str],
                 moved: int) -> dict[str, Any]:
    target_vmlinux = Path(opts.vmlinux) if opts.vmlinux else orig.vmlinux
    return {
        "format": "kbuilder-build",
        "version": 1,
        "module": {"name": name, "file": f"{name}.ko", "sha256": hashlib.sha256(blob).hexdigest(),
                   "vermagic": modinfo.get("vermagic", ""), "replace": opts.replace},
        "target": {"release": orig.release, "build_id": build_id(target_vmlinux),
                   "config_sha256": hashlib.sha256(orig.config.read_bytes()).hexdigest(),
                   "compiler": _comment_of(target_vmlinux)},
        "patches": [{"file": p.path.name, "sha256": p.sha256, "files": list(p.files)} for p in patches],
        "functions": [{"name": f.old_name, "object": f.objname, "sympos": f.sympos, "source": f.source}
                      for f in spec.functions],
        "callbacks": {obj: dict(sorted(kinds.items())) for obj, kinds in sorted(spec.callbacks.items())},
        "objects": [{"file": r["rel"], "objname": r["objname"], "status": r["status"], "changed": r["changed"],
                     "new": r["new"], "warnings": r["warnings"]} for r in sorted(reports, key=lambda r: r["rel"])],
        "livepatch_relocations": moved,
        "tool": {"kbuilder": __version__, "gcc": toolchain.gcc_version()},
    }
