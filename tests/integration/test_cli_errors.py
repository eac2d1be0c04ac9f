"""Bad input to `kbuild inspect`: one line on stderr naming the file, no
traceback, and the documented exit code (kbuilder/errors.py: 1 for bad input,
64 for a bad command line). Each case runs through the installed console
script and through CliRunner (the `kbuild` fixture)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

EXIT_ERROR = 1
EXIT_USAGE = 64

SNIPPET = "int kb_answer(void) { return 42; }\n"


@pytest.fixture(scope="module")
def good_object(compile_snippet: Callable[..., Path]) -> Path:
    """A small, valid x86_64 relocatable object to corrupt."""
    return compile_snippet(SNIPPET, ["-O2"])


def _patched_copy(src: Path, dst: Path, patches: dict[int, bytes]) -> Path:
    data = bytearray(src.read_bytes())
    for offset, blob in patches.items():
        data[offset:offset + len(blob)] = blob
    dst.write_bytes(bytes(data))
    return dst


def _assert_one_line_error(result: Any, path: Path, exit_code: int, *needles: str) -> None:
    assert "Traceback" not in result.stderr
    assert result.exit_code == exit_code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert str(path) in lines[0], f"the message does not name {path}: {lines[0]}"
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert result.stdout == ""


def test_text_file(kbuild: Any, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not an object file\n")
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "not an ELF file")


def test_missing_file(kbuild: Any, tmp_path: Path) -> None:
    path = tmp_path / "missing.o"
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "no such file")


@pytest.mark.conformance
def test_truncated_object(kbuild: Any, corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.o"
    path.write_bytes((corpus / "x86_64/new-function.ORIG.o").read_bytes()[:1000])
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "truncated")


def _m32_object(tmp_path: Path, compile_snippet: Callable[..., Path], good_object: Path) -> Path:
    try:
        return compile_snippet(SNIPPET, ["-m32", "-O2"])
    except RuntimeError:
        # No 32-bit multilib: mark a copy of a 64-bit object ELFCLASS32.
        return _patched_copy(good_object, tmp_path / "class32.o", {4: b"\x01"})


def test_32_bit_object(kbuild: Any, tmp_path: Path, compile_snippet: Callable[..., Path],
                       good_object: Path) -> None:
    path = _m32_object(tmp_path, compile_snippet, good_object)
    assert path.read_bytes()[4] == 1          # EI_CLASS = ELFCLASS32
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "32-bit")


def test_big_endian_object(kbuild: Any, tmp_path: Path, good_object: Path) -> None:
    path = _patched_copy(good_object, tmp_path / "msb.o", {5: b"\x02"})   # EI_DATA = ELFDATA2MSB
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "big-endian")


def _an_executable() -> Path:
    for candidate in (Path("/bin/ls"), Path(sys.executable).resolve()):
        if candidate.is_file() and candidate.read_bytes()[:4] == b"\x7fELF":
            return candidate
    pytest.skip("no ELF executable found to feed in")


def test_not_relocatable(kbuild: Any, tmp_path: Path) -> None:
    exe = _an_executable()
    path = tmp_path / exe.name
    shutil.copyfile(exe, path)
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "not a relocatable object")


def test_linked_executable(kbuild: Any, tmp_path: Path) -> None:
    src = tmp_path / "prog.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / "prog"
    if subprocess.run(["gcc", "-o", str(exe), str(src)], capture_output=True).returncode != 0:
        pytest.skip("cannot link a host executable")
    _assert_one_line_error(kbuild("inspect", exe), exe, EXIT_ERROR, "not a relocatable object")


def test_unsupported_machine(kbuild: Any, tmp_path: Path, good_object: Path) -> None:
    path = _patched_copy(good_object, tmp_path / "ppc.o", {18: (20).to_bytes(2, "little")})  # EM_PPC
    _assert_one_line_error(kbuild("inspect", path), path, EXIT_ERROR, "unsupported machine")


def test_usage_error_without_argument(kbuild: Any) -> None:
    result = kbuild("inspect")
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.stderr
    # click's usage report: "Usage: ...", "Try ...", blank, "Error: ..." (no file to name).
    assert result.stderr.strip().splitlines()[-1] == "Error: Missing argument 'OBJ'."
    assert result.stdout == ""


def test_usage_error_unknown_option(kbuild: Any, good_object: Path) -> None:
    result = kbuild("inspect", "--no-such-option", good_object)
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.stderr and "No such option" in result.stderr


def test_good_object_is_accepted(kbuild: Any, good_object: Path) -> None:
    """The corrupted copies above differ from a valid object only in the patched bytes."""
    result = kbuild("inspect", good_object)
    assert (result.exit_code, result.stderr) == (0, "")
    assert "kb_answer" in result.stdout


def test_directory_is_a_usage_error(kbuild: Any, tmp_path: Path) -> None:
    # docs/cli.md: `kbuild inspect` checks its argument first; a directory is exit 64.
    result = kbuild("inspect", tmp_path)
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.stderr and "is a directory" in result.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["inspect", "-h"]], ids=["version", "help", "inspect-help"])
def test_informational_options_exit_0(kbuild: Any, args: list[str]) -> None:
    result = kbuild(*args)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout


def test_closed_stdout_exits_1_quietly(kbuild_exe: Path, good_object: Path) -> None:
    """docs/cli.md: output cut short by a closed pipe exits 1 without a message."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([str(kbuild_exe), "inspect", "--json", str(good_object)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (1, "")


# ---- internal errors (bugs) -------------------------------------------------

def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("boom")


def _invoke(args: list[str]) -> Any:
    from click.testing import CliRunner

    from kbuilder.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch, good_object: Path) -> None:
    monkeypatch.setattr("kbuilder.inspect.summarize", _boom)
    monkeypatch.setattr(sys, "argv", ["kbuild", "inspect", str(good_object)])
    result = _invoke(["inspect", str(good_object)])
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.splitlines() == [
        "kbuild: internal error: RuntimeError: boom (rerun with --debug for a traceback, and please report it)"]


_HARNESS = ("import sys, kbuilder.inspect as i\n"
            "def boom(*a, **k): raise RuntimeError('boom')\n"
            "i.summarize = boom\n"
            "from kbuilder.cli import main\n"
            "main()\n")


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_internal_error_in_a_real_process(good_object: Path, debug: bool) -> None:
    args = [sys.executable, "-c", _HARNESS, *(["--debug"] if debug else []), "inspect", str(good_object)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_ERROR
    if debug:
        assert "Traceback" in proc.stderr and "RuntimeError: boom" in proc.stderr
    else:
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_debug_flag_is_honoured_when_invoked_programmatically(monkeypatch: pytest.MonkeyPatch,
                                                              good_object: Path) -> None:
    monkeypatch.setattr("kbuilder.inspect.summarize", _boom)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    with pytest.raises(RuntimeError, match="boom"):
        _invoke(["--debug", "inspect", str(good_object)])


def test_interrupt_prints_aborted(monkeypatch: pytest.MonkeyPatch, good_object: Path) -> None:
    def interrupted(*_args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("kbuilder.inspect.summarize", interrupted)
    result = _invoke(["inspect", str(good_object)])
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.strip() == "kbuild: aborted"
