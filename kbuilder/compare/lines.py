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
    old_code, new_code = osec.data, psec.data
    if len(old_code) != len(new_code) or old_code == new_code:
        return False
    last = _last_difference(old_code, new_code)
    md = arch.disassembler
    # Instruction boundaries come from decoding the patched side from the
    # start, but only as far as the last differing byte: bytes after it are
    # equal on both sides and need no look.
    new = []
    for insn in md.disasm_lite(new_code[:last + 16], 0):
        new.append(insn)
        if insn[0] + insn[1] > last:
            break
    if not new or new[-1][0] + new[-1][1] <= last or sum(i[1] for i in new) != new[-1][0] + new[-1][1]:
        return False  # a gap: capstone stopped at bytes it could not decode
    relocs = psec.rela.relocs if psec.rela is not None else []
    offsets = [r.offset for r in relocs]
    found = False
    for b in new:
        start, end = b[0], b[0] + b[1]
        if old_code[start:end] == new_code[start:end]:
            continue
        # Identical bytes elsewhere: the original instruction here is the
        # one to compare (same place and length, or it is not a line change).
        a = next(md.disasm_lite(old_code[start:start + 16], start, 1), None)
        if a is None or a[1] != b[1] or not arch.is_line_number_load(a[2], a[3], b[2], b[3]):
            return False
        if not _followed_by_reporting_call(relocs, offsets, end):
            return False
        found = True
    return found


def _last_difference(a: bytes, b: bytes) -> int:
    """Offset of the last byte where two equal-length, different buffers differ."""
    x = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return (x.bit_length() - 1) // 8


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
