"""`kbuild inspect` end to end, both through the installed console script
(subprocess) and click's CliRunner (the `kbuild` fixture runs each test both
ways); the function list must match binutils."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.conformance

OBJECT = "x86_64/new-function.ORIG.o"


def _func_symbols_from_binutils(path: Path) -> Counter[str]:
    """Defined function symbols according to binutils.

    The nm letter alone is not the answer: t/T/w/W say the symbol lives in a
    code section (or is weak), not that it is STT_FUNC; local labels in
    .text, .fixup or .altinstr_replacement are 't' too, and a FUNC in a
    non-executable section is not. So we ask nm for the ELF symbol type
    explicitly (`nm --defined-only --format=sysv`, whose Type column is the
    st_type: FUNC, OBJECT, NOTYPE...) and cross-check it against
    `readelf -sW` (Type FUNC, Ndx not UND/ABS).
    """
    nm = subprocess.run(["nm", "--defined-only", "--format=sysv", str(path)],
                        capture_output=True, text=True, check=True).stdout
    from_nm: Counter[str] = Counter()
    for line in nm.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 7 and fields[3] == "FUNC":
            from_nm[fields[0]] += 1
    readelf = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True, check=True).stdout
    from_readelf: Counter[str] = Counter()
    for line in readelf.splitlines():
        fields = line.split()
        # Num: Value Size Type Bind Vis [visibility extras] Ndx Name
        if len(fields) >= 8 and fields[0].endswith(":") and fields[3] == "FUNC":
            ndx, name = fields[-2], fields[-1]
            if ndx not in ("UND", "ABS"):
                from_readelf[name] += 1
    assert from_nm == from_readelf, "nm and readelf disagree on the FUNC symbols"
    return from_readelf


def test_inspect_lists_n_tty_write_as_patchable(kbuild: Any, corpus: Path) -> None:
    path = corpus / OBJECT
    result = kbuild("inspect", path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith(f"{path}: x86_64, ")
    rows = [line.split() for line in result.stdout.splitlines()]
    n_tty_write = [r for r in rows if r and r[0] == "n_tty_write"]
    assert len(n_tty_write) == 1
    # name size bind patchable section
    assert n_tty_write[0][3] == "yes" and n_tty_write[0][4] == ".text.n_tty_write"


def test_inspect_json_functions_match_binutils(kbuild: Any, corpus: Path) -> None:
    path = corpus / OBJECT
    result = kbuild("inspect", "--json", path)
    assert (result.exit_code, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data["arch"] == "x86_64" and data["file"] == str(path)
    assert Counter(f["name"] for f in data["functions"]) == _func_symbols_from_binutils(path)
    assert {f["name"]: f["patchable"] for f in data["functions"]}["n_tty_write"] is True


def _keys_sorted(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys), f"unsorted keys: {keys}"
    return dict(pairs)


def test_inspect_json_is_stable(kbuild: Any, corpus: Path) -> None:
    path = corpus / OBJECT
    first, second = kbuild("inspect", "--json", path), kbuild("inspect", "--json", path)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout                       # byte-identical
    json.loads(first.stdout, object_pairs_hook=_keys_sorted)   # sorted at every level


def test_script_and_clirunner_agree(kbuild_exe: Path, corpus: Path) -> None:
    from kbuilder.cli import main
    from click.testing import CliRunner

    for args in (["inspect", str(corpus / "aarch64/new-function.ORIG.o")],
                 ["inspect", "--json", str(corpus / OBJECT)]):
        proc = subprocess.run([str(kbuild_exe), *args], capture_output=True, text=True, timeout=120)
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == (result.exit_code, result.stdout, result.stderr)
