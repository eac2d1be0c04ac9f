"""Entry sizes of the kernel's special-section tables, measured in the
target's own build tree.

The sizes of `struct bug_entry`, `struct jump_entry`, ... depend on the
kernel version and config. kpatch-build reads them from DWARF, which needs a
debug-info kernel; here a throw-away module declares one array per struct,
`char kbuilder_size_X[sizeof(struct X)]`, is compiled by the tree's kbuild,
and the arrays' symbol sizes are the answer. Structs the config does not
have are left out (the arch defaults then apply).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from kbuilder.elf import read_object
from kbuilder.errors import InputError
from kbuilder.kernel import toolchain
from kbuilder.kernel.cache import cache_key, cache_root

# size key -> (header, struct, guard)
_PROBES = {
    "BUG_STRUCT_SIZE": ("linux/bug.h", "bug_entry", "CONFIG_GENERIC_BUG"),
    "EX_STRUCT_SIZE": ("asm/extable.h", "exception_table_entry", None),
    "JUMP_STRUCT_SIZE": ("linux/jump_label.h", "jump_entry", "CONFIG_JUMP_LABEL"),
    "ALT_STRUCT_SIZE": ("asm/alternative.h", "alt_instr", "CONFIG_X86"),
    "PARA_STRUCT_SIZE": ("asm/paravirt_types.h", "paravirt_patch_site", "CONFIG_PARAVIRT"),
    "ORC_STRUCT_SIZE": ("asm/orc_types.h", "orc_entry", "CONFIG_UNWINDER_ORC"),
    "STATIC_CALL_STRUCT_SIZE": ("linux/static_call.h", "static_call_site", "CONFIG_HAVE_STATIC_CALL_INLINE"),
    "PRINTK_INDEX_STRUCT_SIZE": ("linux/printk.h", "pi_entry", "CONFIG_PRINTK_INDEX"),
}


def probe_source() -> str:
    lines = ["// SPDX-License-Identifier: GPL-2.0-or-later", "#include <linux/module.h>"]
    for key, (header, struct, guard) in _PROBES.items():
        body = [f"#include <{header}>", f"char kbuilder_size_{key}[sizeof(struct {struct})];"]
        lines += [f"#ifdef {guard}", *body, "#endif"] if guard else body
    lines.append('MODULE_LICENSE("GPL");')
    return "\n".join(lines) + "\n"


def struct_sizes(build_dir: Path, *, jobs: int = 1) -> dict[str, int]:
    """Sizes by kpatch's names (BUG_STRUCT_SIZE, ...), cached (in kbuilder's
    cache, never in the build tree) by the tree's path and config."""
    config = build_dir / ".config"
    if not config.is_file():
        raise InputError("not a configured kernel build directory (no .config)", path=str(build_dir))
    key = cache_key("struct-sizes", str(build_dir.resolve()), hashlib.sha256(config.read_bytes()).hexdigest(),
                    probe_source())
    cached = cache_root() / "struct-sizes" / f"{key}.json"
    if cached.is_file():
        return {k: int(v) for k, v in json.loads(cached.read_text()).items()}
    work = Path(tempfile.mkdtemp(prefix="kbuilder-sizes-"))
    try:
        (work / "kbuilder_sizes.c").write_text(probe_source())
        (work / "Kbuild").write_text("obj-m := kbuilder_sizes.o\n")
        toolchain.run(["make", "-C", str(build_dir), f"M={work}", f"-j{jobs}", "kbuilder_sizes.o"],
                      log=work / "build.log", what="struct size probe")
        obj = read_object(work / "kbuilder_sizes.o")
        sizes = {s.name[len("kbuilder_size_"):]: s.size for s in obj.symbols
                 if s.name.startswith("kbuilder_size_") and s.section is not None}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(sizes, sort_keys=True))
    tmp.replace(cached)
    return sizes
