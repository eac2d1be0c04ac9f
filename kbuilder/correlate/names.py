"""Name rules: which names denote the same thing across two compilations.

GCC numbers the clones and statics it makes (`foo.isra.3`, `counter.12`,
`__UNIQUE_ID_ddebug1131.186`) and the numbers shift with unrelated edits.
A correlation key drops those numbers so that equal keys mean "same entity".
"""

from __future__ import annotations

import re
from functools import lru_cache

from kbuilder.elf.constants import STT
from kbuilder.elf.model import Section, Symbol

_DOT_DIGITS = re.compile(r"\.\d+")
_DIGITS = re.compile(r"\d+")

# Compiler-made per-call-site statics whose identity cannot be carried over
# from one compilation to the next: they are never correlated, and code that
# references them takes them along (as new) or links to nothing of the old.
_SPECIAL_STATIC_PREFIXES = (
    "__key.",            # lockdep class keys
    "__warned.",         # WARN_ONCE flags
    "__already_done.",   # printk_once flags
    "__func__.",         # __func__ strings
    "__FUNCTION__.",
    "_rs.",              # printk_ratelimit state
    "CSWTCH.",           # switch lookup tables
    "_entry.",           # tracepoint/dyndbg helpers
    "_entry_ptr.",
    "__print_once.",
    "descriptor.",       # dynamic debug descriptors
)
# Clang names them <function>.<name>.
_SPECIAL_STATIC_INFIXES = (".__key", ".__warned", ".__already_done", ".__func__", "._rs", ".CSWTCH",
                           "._entry", ".descriptor")
_SPECIAL_STATIC_SECTIONS = (".data.once", ".data..once", "__verbose", "__dyndbg", ".data..L__unnamed_",
                            ".data.__unnamed_")


# Cached: every name is asked for on both sides and again when relocations
# are compared, and a kernel tree repeats most names from object to object.
@lru_cache(maxsize=1 << 16)
def correlation_key(name: str) -> str:
    """`foo.isra.3` -> `foo.isra`; `counter.12` -> `counter`; string sections
    (`.rodata.foo.str1.8`) are kept as they are."""
    if ".str1." in name or ".str." in name:
        return name
    if "__UNIQUE_ID_" in name:
        return _DIGITS.sub("#", name)
    if "." not in name:
        return name
    return _DOT_DIGITS.sub("", name)


_INFIX_RE = re.compile("|".join(re.escape(i) for i in _SPECIAL_STATIC_INFIXES))
# Bundled special statics: .bss.__key.123, .data._rs.45, .rodata.__func__.6
_BUNDLED_SPECIAL_RE = re.compile(r"(?:\.bss|\.data|\.rodata|\.data\.rel\.local|\.data\.rel)\.(?:"
                                 + "|".join(re.escape(p) for p in _SPECIAL_STATIC_PREFIXES) + ")")
_SECTION, _OBJECT = int(STT.SECTION), int(STT.OBJECT)


def is_special_static(sym: Symbol) -> bool:
    kind = sym.type
    if kind == _SECTION:
        return sym.section is not None and _is_special_static_section(sym.section)
    if kind != _OBJECT:
        return False
    if sym.bind == 0:
        name = sym.name
        if name.startswith(_SPECIAL_STATIC_PREFIXES) or ("." in name and _INFIX_RE.search(name)):
            return True
    return sym.section is not None and _is_special_static_section(sym.section)


def _is_special_static_section(sec: Section) -> bool:
    return _is_special_static_section_name(sec.name)


@lru_cache(maxsize=1 << 16)
def _is_special_static_section_name(name: str) -> bool:
    return name.startswith(_SPECIAL_STATIC_SECTIONS) or _BUNDLED_SPECIAL_RE.match(name) is not None


def is_normal_static_local(sym: Symbol) -> bool:
    """A function-scope `static` variable: gcc names it `<name>.<N>`."""
    return (sym.type == _OBJECT and sym.bind == 0 and "." in sym.name
            and not sym.name.startswith(".L") and not is_special_static(sym))


def is_ubsan_section(name: str) -> bool:
    return name.startswith((".data..Lubsan", ".data.rel.local..Lubsan", ".data..Ltype", ".data.rel..Lubsan"))


def is_string_section(sec: Section) -> bool:
    return bool(sec.flags & 0x20) or ".str1." in sec.name or sec.name.startswith(".rodata.str")


def is_mergeable_constant_section(sec: Section) -> bool:
    """`.rodata.cst16` and friends: anonymous constants, compared by value."""
    return bool(sec.flags & 0x10) and not sec.flags & 0x20


def is_local_label(sym: Symbol) -> bool:
    """Assembler-local labels kept in the symbol table (`.LC0`, `.L__unnamed_1`)."""
    return sym.type == 0 and sym.name.startswith(".L")


def is_arm_mapping_symbol(sym: Symbol) -> bool:
    n = sym.name
    return len(n) >= 2 and n[0] == "$" and n[1] in "xdt" and (len(n) == 2 or n[2] == ".")


def child_parent_name(name: str) -> str | None:
    """`foo.cold` / `foo.cold.12` / `foo.part.3` -> `foo`; else None."""
    for marker in (".cold", ".part."):
        i = name.find(marker)
        if i > 0:
            return name[:i]
    return None
