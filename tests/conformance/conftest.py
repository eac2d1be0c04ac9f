"""The conformance results table.

`tests/conformance/test_kpatch_unit.py` records one row per corpus case in
``RESULTS`` (through the ``conformance_rows`` fixture, so the test module
never imports this file by name); ``pytest_terminal_summary`` prints them at
the end of the session, also under ``pytest -q`` (``make test``).
"""

from __future__ import annotations

from typing import Any

import pytest

# case ("x86_64/new-function") -> row; filled in test order, printed at the end.
RESULTS: dict[str, dict[str, Any]] = {}

_COLUMNS = (
    ("case", "case"),
    ("expected", "expected"),
    ("got", "got"),
    ("changed", "changed"),
    ("new", "new"),
    ("funcs", "funcs ours/kpatch"),
    ("verdict", "conform"),
    ("output", "other checks"),
    ("ms", "ms"),
)


@pytest.fixture(scope="session")
def conformance_rows() -> dict[str, dict[str, Any]]:
    """The session's results table: tests add and update rows by case."""
    return RESULTS


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key, "")
    if isinstance(value, (list, tuple)):
        return ",".join(value) or "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value) if value not in (None, "") else "-"


def format_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    cells = [[title for _, title in _COLUMNS]]
    cells += [[_cell(row, key) for key, _ in _COLUMNS] for row in rows.values()]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def summary_lines(rows: dict[str, dict[str, Any]]) -> list[str]:
    by_arch: dict[str, list[dict[str, Any]]] = {}
    for case, row in rows.items():
        if "verdict" not in row:
            continue  # test_conforms did not run for this case (deselected)
        by_arch.setdefault(case.split("/", 1)[0], []).append(row)
    parts = []
    for arch, arch_rows in sorted(by_arch.items()):
        passed = sum(1 for r in arch_rows if r.get("verdict") == "PASS")
        parts.append(f"{arch} {passed}/{len(arch_rows)}")
    same_funcs = sum(1 for r in rows.values() if r.get("funcs_match"))
    with_ref = sum(1 for r in rows.values() if r.get("funcs_match") is not None)
    lines = [f"cases conforming: {', '.join(parts)}"] if parts else []
    if with_ref:
        lines.append(f"function symbol count equal to kpatch's output: {same_funcs}/{with_ref} (info, not asserted)")
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not RESULTS:
        return
    terminalreporter.section("kpatch-unit conformance")
    for line in format_table(RESULTS):
        terminalreporter.write_line(line)
    for line in summary_lines(RESULTS):
        terminalreporter.write_line(line)
