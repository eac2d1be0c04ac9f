"""Recognise changes that only move `__LINE__`.

Inserting lines above a function that uses WARN()/might_sleep() shifts the
line number it passes as an immediate argument; the code is otherwise the
same and nothing needs patching. Both versions are decoded (capstone);
every differing instruction must load an immediate into the line-number
argument register and be followed by a call to a known reporting function.
"""

from __future__ import annotations

from bisect import bisect_right

from kbuilder.arch import Arch
from kbuilder.correlate.names import is_string_section
from kbuilder.elf.model import Section

# Functions that take (file, line, ...) and are called from macros.
LINE_REPORTING_FUNCTIONS = frozenset({
    "__warn_printk", "warn_slowpath_fmt", "warn_slowpath_null", "warn_slowpath_fmt_taint",
    "__might_sleep", "___might_sleep", "__might_fault", "__might_resched", "printk", "_printk",
    "lockdep_rcu_suspicious", "__btrfs_abort_transaction", "__btrfs_handle_fs_error", "__btrfs_panic",
    "__warn", "report_bug",
})
# References between the line load and the call that do not end the search.
_PASSING_TARGET_PREFIXES = ("__warned.", "__already_done.", "__func__.", "__print_once.")


def only_line_numbers_changed(arch: Arch, osec: Section, psec: Section) -> bool:
    if len(osec.data) != len(psec.data) or osec.data == psec.data:
        return False
    md = arch.disassembler
    old = list(md.disasm_lite(osec.data, 0))
    new = list(md.disasm_lite(psec.data, 0))
    if len(old) != len(new) or not new or sum(i[1] for i in new) != len(psec.data):
        return False
    relocs = psec.rela.relocs if psec.rela is not None else []
    offsets = [r.offset for r in relocs]
    found = False
    for a, b in zip(old, new):
        if osec.data[a[0]:a[0] + a[1]] == psec.data[b[0]:b[0] + b[1]]:
            continue
        if a[0] != b[0] or a[1] != b[1] or not arch.is_line_number_load(a[2], a[3], b[2], b[3]):
            return False
        if not _followed_by_reporting_call(relocs, offsets, b[0] + b[1]):
            return False
        found = True
    return found


def _followed_by_reporting_call(relocs, offsets, after: int) -> bool:  # type: ignore[no-untyped-def]
    for reloc in relocs[bisect_right(offsets, after - 1):]:
        target = reloc.symbol
        name = target.name
        if target.section is not None and is_string_section(target.section):
            continue
        if name.startswith(_PASSING_TARGET_PREFIXES) or name.startswith(".L"):
            continue
        return name in LINE_REPORTING_FUNCTIONS
    return False
