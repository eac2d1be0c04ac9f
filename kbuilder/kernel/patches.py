"""Source patches: what they touch, whether they can be live-patched at all,
and applying them to the build mirror.

Refused up front, as kpatch-build and klp-build do: assembly (`*.S`: no
function sections, no ftrace entries), `lib/` (archive members linked only
when used, without ftrace entries), the vDSO and real-mode code (not kernel
text at run time).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from kbuilder.errors import InputError, UnpatchableError
from kbuilder.kernel import toolchain

_PLUS_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)")
_MINUS_FILE = re.compile(r"^--- (?:a/)?(\S+)")


@dataclass(frozen=True, slots=True)
class SourcePatch:
    path: Path
    files: tuple[str, ...]
    sha256: str


def read_patch(path: Path) -> SourcePatch:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read patch: {exc.strerror}", path=str(path)) from None
    files: list[str] = []
    previous = None
    for line in data.decode("utf-8", "replace").splitlines():
        minus = _MINUS_FILE.match(line)
        if minus:
            previous = minus.group(1)
            continue
        plus = _PLUS_FILE.match(line)
        if plus:
            name = plus.group(1)
            if name == "/dev/null" and previous:
                name = previous
            if name not in files:
                files.append(name)
    if not files:
        raise InputError("not a unified diff (no '+++' file header)", path=str(path))
    return SourcePatch(path, tuple(files), hashlib.sha256(data).hexdigest())


def unpatchable_files(patch: SourcePatch) -> list[str]:
    reasons = []
    for name in patch.files:
        if name.endswith((".S", ".s")):
            reasons.append(f"{patch.path.name}: {name} is assembly: it has no per-function sections or ftrace "
                           "entries and cannot be live-patched")
        elif name.startswith("lib/"):
            reasons.append(f"{patch.path.name}: {name} is in lib/: its objects are archive members without "
                           "ftrace entries and cannot be live-patched")
        elif "/vdso/" in name or "/realmode/" in name:
            reasons.append(f"{patch.path.name}: {name} is vDSO or real-mode code, not kernel text")
    return reasons


def check_patches(patches: list[SourcePatch]) -> None:
    reasons = [r for p in patches for r in unpatchable_files(p)]
    if reasons:
        raise UnpatchableError(reasons)


def apply(src: Path, patches: list[SourcePatch]) -> None:
    """Apply in order, stopping at the first that fails, with its failing
    hunk in one line. The caller restores the mirror either way."""
    for patch in patches:
        proc = toolchain.run(["patch", "-p1", "--force", "--no-backup-if-mismatch", "-r", "-", "-d", str(src),
                              "-i", str(patch.path)], what="patch", check=False)
        if proc.returncode != 0:
            raise InputError(f"does not apply: {_first_failure(proc.stdout + proc.stderr)}", path=str(patch.path))


def _first_failure(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    current = ""
    for line in lines:
        if line.startswith(("patching file", "checking file")):
            current = line.split(" ", 2)[-1]
        if "FAILED" in line or "can't find file" in line or "No such file" in line or "malformed" in line:
            return f"{current}: {line}" if current else line
    return lines[-1] if lines else "patch failed"
