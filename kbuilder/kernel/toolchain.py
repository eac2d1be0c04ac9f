"""The one place kbuilder runs other programs (make, gcc, ld, patch, qemu).

Output goes to a log file when one is given, so a failure can be reported in
one line (the last meaningful lines of the log) with the log's path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from kbuilder.errors import ToolchainError


def run(cmd: Sequence[str | os.PathLike[str]], *, cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None, log: str | os.PathLike[str] | None = None,
        timeout: float | None = None, what: str | None = None, check: bool = True,
        capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `cmd`; raise ToolchainError naming `what` on failure (if `check`)."""
    argv = [os.fspath(c) for c in cmd]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    label = what or os.path.basename(argv[0])
    if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
        raise ToolchainError(f"{label}: command not found: {argv[0]}")
    try:
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8", errors="replace") as fh:
                fh.write(f"$ {' '.join(argv)}\n")
                fh.flush()
                proc = subprocess.run(argv, cwd=cwd, env=full_env, stdout=fh, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=timeout, text=True, errors="replace")
        else:
            proc = subprocess.run(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, timeout=timeout,
                                  text=True, errors="replace", capture_output=True)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{label} timed out after {timeout:.0f} s" + (f" (log: {log})" if log else "")) from None
    if check and proc.returncode != 0:
        raise ToolchainError(f"{label} failed (exit {proc.returncode}): {_tail(proc, log)}")
    return proc


def _tail(proc: subprocess.CompletedProcess[str], log: str | os.PathLike[str] | None) -> str:
    if log is not None:
        try:
            lines = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        useful = [ln for ln in lines if "error" in ln.lower() or "Error" in ln][-2:] or lines[-2:]
        return " | ".join(s.strip() for s in useful) + f" (log: {log})"
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return " | ".join(s.strip() for s in text[-2:]) or "no output"


def gcc_version(cc: str = "gcc") -> str:
    proc = run([cc, "--version"], what="gcc --version", capture=True)
    return proc.stdout.splitlines()[0].strip() if proc.stdout else ""
