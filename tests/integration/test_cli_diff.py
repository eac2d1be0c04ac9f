"""`kbuild diff` as users run it: the installed console script, in a subprocess.

Exit codes (kbuilder/errors.py, docs/diff.md): 0 a patch was written, 3 no
functional change, 2 unpatchable (one stderr line per reason), 1 bad input
(one stderr line naming the file), 64 bad command line. Nothing is written
to the output path unless the result is a patch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kbuilder.elf import read_object
from kbuilder.emit.report import read_manifests

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "conformance" / "kpatch-unit"
MISSING = f"kpatch-unit corpus not found at {CORPUS} (../shared must sit next to the checkout)"

if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import fixture_build  # noqa: E402  (tests/fixture_build.py)
from helpers import kbuild_script as kbuild_exe  # noqa: E402

EXIT_OK, EXIT_ERROR, EXIT_UNPATCHABLE, EXIT_NO_CHANGE, EXIT_USAGE = 0, 1, 2, 3, 64


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return self.stderr.splitlines()


def kbuild(*args: Any, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    proc = subprocess.run([str(kbuild_exe()), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def corpus_case(arch: str, name: str) -> tuple[Path, Path]:
    """(ORIG, PATCHED) of a corpus case, the file names as expectations.json has them."""
    expectations = CORPUS / "expectations.json"
    if not expectations.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MISSING}; CI must provide it", pytrace=False)
        pytest.skip(MISSING)
    case = json.loads(expectations.read_text())[f"{arch}/{name}"]
    return CORPUS / arch / case["orig"], CORPUS / arch / case["patched"]


def cache_dir() -> Path:
    base = Path(os.environ["KBUILDER_CACHE"]) if os.environ.get("KBUILDER_CACHE") else REPO / ".cache"
    path = base / "test-objects"
    path.mkdir(parents=True, exist_ok=True)
    return path


def diff_args(orig: Path, patched: Path, out: Path, *extra: Any) -> list[Any]:
    # The ORIG object as parent symbol table, as kpatch's unit tests do.
    return ["diff", orig, patched, "-o", out, "--parent-symbols", orig, *extra]


# ---------------------------------------------------------------------------
# A patch
# ---------------------------------------------------------------------------

@pytest.mark.conformance
def test_new_function(tmp_path: Path) -> None:
    orig, patched = corpus_case("x86_64", "new-function")
    out = tmp_path / "out.o"
    run = kbuild(*diff_args(orig, patched, out))
    assert run.rc == EXIT_OK, run.stderr
    assert "Traceback" not in run.stderr and run.stderr == ""
    lines = run.stdout.splitlines()
    assert any(line.endswith("changed function: n_tty_write") for line in lines), run.stdout
    assert any(line.endswith("new function: kpatch_n_tty_write") for line in lines), run.stdout
    assert out.is_file()
    names = {s.name for s in read_object(out).symbols if s.section is not None}
    assert {"n_tty_write", "kpatch_n_tty_write"} <= names


@pytest.mark.conformance
def test_json_report(tmp_path: Path) -> None:
    orig, patched = corpus_case("x86_64", "new-function")
    out, report_path = tmp_path / "out.o", tmp_path / "report.json"
    run = kbuild(*diff_args(orig, patched, out, "--json", report_path))
    assert run.rc == EXIT_OK, run.stderr
    report = json.loads(report_path.read_text())
    for key in ("status", "changed", "new", "refusals", "klp_symbols", "functions"):
        assert key in report, f"{key} missing from the report: {sorted(report)}"
    assert report["format"] == "kbuilder-diff"
    assert report["status"] == "patch"
    assert report["changed"] == ["n_tty_write"] and report["new"] == ["kpatch_n_tty_write"]
    assert report["refusals"] == []
    assert report["output"] == str(out)
    assert [f["name"] for f in report["functions"]] == ["n_tty_write"]
    assert report["functions"][0]["objname"] == "vmlinux" and report["functions"][0]["sympos"] == 0
    assert report["klp_symbols"], "n_tty_write's new code calls static functions of n_tty.c"
    for entry in report["klp_symbols"]:
        assert entry["symbol"] == f".klp.sym.{entry['objname']}.{entry['name']},{entry['sympos']}"
    # The same document, minus the paths, travels inside the output object.
    manifests = read_manifests(read_object(out))
    assert len(manifests) == 1
    expected = {k: v for k, v in report.items() if k not in ("orig", "patched", "output", "notes")}
    assert manifests[0] == expected


@pytest.mark.conformance
def test_explain(tmp_path: Path) -> None:
    orig, patched = corpus_case("x86_64", "new-function")
    run = kbuild(*diff_args(orig, patched, tmp_path / "out.o", "--explain"))
    assert run.rc == EXIT_OK, run.stderr
    lines = run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("changed function: n_tty_write"))
    explanation = lines[at + 1]
    assert explanation.startswith("    ") and ".text.n_tty_write" in explanation, run.stdout


def test_explain_points_into_the_cold_part(tmp_path: Path) -> None:
    """clone-cold changes only an error return that gcc moved to buf_append.cold:
    the explanation shows that instruction, not a bare "changed"."""
    orig, patched = fixture_build.compile_fixture("clone-cold", cache_dir())
    run = kbuild(*diff_args(orig, patched, tmp_path / "out.o", "--explain"))
    assert run.rc == EXIT_OK, run.stderr
    assert "first differing instruction" in run.stdout and "0xffffffea" in run.stdout, run.stdout


# ---------------------------------------------------------------------------
# Refusals and no change: exit code, messages, and nothing written
# ---------------------------------------------------------------------------

@pytest.mark.conformance
def test_unpatchable(tmp_path: Path) -> None:
    orig, patched = corpus_case("x86_64", "meminfo-init")
    assert patched.name == "meminfo-init.PATCHED.FAIL.o"
    out, report_path = tmp_path / "out.o", tmp_path / "report.json"
    run = kbuild(*diff_args(orig, patched, out, "--json", report_path))
    assert run.rc == EXIT_UNPATCHABLE, run.stderr
    assert "Traceback" not in run.stderr
    refusals = json.loads(report_path.read_text())["refusals"]
    assert refusals and all(r["kind"] == "init-code" for r in refusals)
    reasons = [line for line in run.err_lines if "unpatchable:" in line]
    assert len(reasons) == len(refusals) and reasons == run.err_lines, run.stderr
    assert all(".init.text" in line for line in reasons), run.stderr
    assert not out.exists(), "an unpatchable diff wrote an output object"


@pytest.mark.conformance
def test_unpatchable_leaves_existing_file_alone(tmp_path: Path) -> None:
    orig, patched = corpus_case("x86_64", "meminfo-init")
    out = tmp_path / "out.o"
    out.write_bytes(b"an unrelated file\n")
    before = out.stat()
    run = kbuild(*diff_args(orig, patched, out))
    assert run.rc == EXIT_UNPATCHABLE, run.stderr
    assert out.read_bytes() == b"an unrelated file\n"
    assert out.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.o"], "temporary files left behind"


def test_no_change(tmp_path: Path) -> None:
    orig, patched = fixture_build.compile_fixture("no-change", cache_dir())
    out = tmp_path / "out.o"
    run = kbuild(*diff_args(orig, patched, out))
    assert run.rc == EXIT_NO_CHANGE, run.stdout + run.stderr
    assert "no functional change" in run.stdout
    assert "Traceback" not in run.stderr
    assert not out.exists()
    out.write_bytes(b"keep me")
    run = kbuild(*diff_args(orig, patched, out))
    assert run.rc == EXIT_NO_CHANGE and out.read_bytes() == b"keep me"


# ---------------------------------------------------------------------------
# Bad input: exit 1, one line naming the file and the reason
# ---------------------------------------------------------------------------

def _bad_input(kind: str, tmp_path: Path) -> tuple[list[Any], Path, str]:
    """(arguments after `diff`, the file the message must name, the reason)."""
    if kind == "mismatched-pair":
        orig, _ = corpus_case("x86_64", "new-function")
        _, other = corpus_case("x86_64", "data-new")
        return [orig, other], other, "different source files"
    if kind == "different-arch":
        orig, _ = corpus_case("x86_64", "new-function")
        _, other = corpus_case("aarch64", "new-function")
        return [orig, other], other, "different architectures"
    if kind == "not-relocatable":
        ls = Path("/bin/ls")
        if not ls.is_file():
            pytest.skip("/bin/ls is not there to serve as a non-relocatable ELF file")
        orig, _ = corpus_case("x86_64", "new-function")
        return [ls, orig], ls, "not a relocatable object"
    if kind == "missing-patched":
        orig, _ = corpus_case("x86_64", "new-function")
        missing = tmp_path / "missing.PATCHED.o"
        return [orig, missing], missing, "no such file"
    raise AssertionError(kind)


@pytest.mark.conformance
@pytest.mark.parametrize("kind", ["mismatched-pair", "different-arch", "not-relocatable", "missing-patched"])
def test_bad_input(kind: str, tmp_path: Path) -> None:
    pair, named, reason = _bad_input(kind, tmp_path)
    out = tmp_path / "out.o"
    run = kbuild("diff", *pair, "-o", out)
    assert run.rc == EXIT_ERROR, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.err_lines) == 1, f"expected one line on stderr:\n{run.stderr}"
    line = run.err_lines[0]
    assert str(named) in line, f"{named} is not named: {line}"
    assert reason in line, f"{reason!r} not in {line!r}"
    assert "internal error" not in line
    assert run.stdout == ""
    assert not out.exists()


def test_usage_error() -> None:
    run = kbuild("diff")
    assert run.rc == EXIT_USAGE, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "Usage" in run.stderr


@pytest.mark.parametrize("args", [
    ["a.o", "b.o", "--orig-dir", ".", "--patched-dir", ".", "-o", "out"],   # both modes at once
    ["--orig-dir", ".", "-o", "out"],                                      # half a batch
    ["a.o", "-o", "out.o"],                                                # one object
    ["a.o", "b.o", "-o", "out.o", "--struct-size", "BUG_STRUCT_SIZE"],    # no =BYTES
], ids=["mixed-modes", "half-batch", "one-object", "bad-struct-size"])
def test_usage_errors(args: list[str], tmp_path: Path) -> None:
    run = kbuild("diff", *args, cwd=tmp_path)
    assert run.rc == EXIT_USAGE, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "Error:" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Batch mode
# ---------------------------------------------------------------------------

BATCH = [("x86_64", "new-function"), ("x86_64", "data-new"), ("x86_64", "meminfo-string"),
         ("x86_64", "meminfo-init")]


@pytest.mark.conformance
def test_batch(tmp_path: Path) -> None:
    for arch, name in BATCH:
        orig, patched = corpus_case(arch, name)
        for tree, src in (("a", orig), ("b", patched)):
            (tmp_path / tree / "sub").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp_path / tree / ("sub" if name == "data-new" else "") / f"{name}.o")
    run = kbuild("diff", "--orig-dir", "a", "--patched-dir", "b", "-o", "out", "--json", "rep.json", "-j", "2",
                 cwd=tmp_path)
    assert run.rc == EXIT_UNPATCHABLE, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads((tmp_path / "rep.json").read_text())
    objects = {os.path.relpath(o["orig"], "a"): o for o in report["objects"]}
    assert sorted(objects) == ["meminfo-init.o", "meminfo-string.o", "new-function.o", "sub/data-new.o"]
    assert objects["meminfo-init.o"]["status"] == "unpatchable"
    assert [r["kind"] for r in objects["meminfo-init.o"]["refusals"]] == ["init-code"]
    for rel in ("meminfo-string.o", "new-function.o", "sub/data-new.o"):
        assert objects[rel]["status"] == "patch"
        assert (tmp_path / "out" / rel).is_file(), f"no output for {rel}"
    assert not (tmp_path / "out" / "meminfo-init.o").exists()
    assert any("meminfo-init.o: unpatchable:" in line and ".init.text" in line for line in run.err_lines)
    assert "4 pairs: 3 patch, 0 no change, 1 unpatchable, 0 errors" in run.stdout


def test_batch_unchanged_and_unreadable(tmp_path: Path) -> None:
    """Unchanged objects are no change, read or not (a kernel tree's 32-bit
    boot objects); a changed object kbuilder cannot read is an error."""
    orig, _ = fixture_build.compile_fixture("no-change", cache_dir())
    for tree in ("a", "b"):
        (tmp_path / tree).mkdir()
        shutil.copyfile(orig, tmp_path / tree / "same.o")
        (tmp_path / tree / "boot.o").write_bytes(b"\x7fELF\x01\x01\x01" + bytes(60))   # 32-bit, unchanged
    (tmp_path / "a" / "bad.o").write_bytes(b"not an object")
    (tmp_path / "b" / "bad.o").write_bytes(b"not an object either")
    run = kbuild("diff", "--orig-dir", "a", "--patched-dir", "b", "-o", "out", "--json", "rep.json", cwd=tmp_path)
    assert run.rc == EXIT_ERROR, run.stdout + run.stderr
    objects = {os.path.relpath(o["orig"], "a"): o for o in json.loads((tmp_path / "rep.json").read_text())["objects"]}
    assert {rel: o["status"] for rel, o in objects.items()} == {"same.o": "no-change", "boot.o": "no-change",
                                                                "bad.o": "error"}
    assert "32-bit" in objects["boot.o"]["notes"]["identical"] and "identical" in objects["same.o"]["notes"]
    assert run.err_lines == [f"bad.o: error: {os.path.join('a', 'bad.o')}: not an ELF file"], run.stderr
    assert "3 pairs: 0 patch, 2 no change, 0 unpatchable, 1 errors" in run.stdout


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------

@pytest.mark.conformance
@pytest.mark.parametrize("arch,name", [("x86_64", "new-function"), ("x86_64", "special-static"),
                                       ("aarch64", "syscall")])
def test_deterministic(arch: str, name: str, tmp_path: Path) -> None:
    """Same inputs, same bytes: output object and JSON report, whatever the
    hash seed (set and dict iteration order must not leak into the output)."""
    orig, patched = corpus_case(arch, name)
    results = []
    for seed in ("1", "2"):
        out, report = tmp_path / "out.o", tmp_path / "report.json"
        run = kbuild(*diff_args(orig, patched, out, "--json", report), env={"PYTHONHASHSEED": seed})
        assert run.rc == EXIT_OK, run.stderr
        results.append((out.read_bytes(), report.read_bytes(), run.stdout))
    assert results[0][0] == results[1][0], "output objects differ between two identical runs"
    assert results[0][1] == results[1][1], "JSON reports differ between two identical runs"
    assert results[0][2] == results[1][2]
