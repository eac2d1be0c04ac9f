"""The running kernel's symbols: where a patch's references resolve, and
each local symbol's `sympos` (its position among same-named symbols, the
disambiguation livepatch uses through kallsyms).

Sources: `vmlinux` or a module `.ko`/object (an ELF symbol table, with the
FILE symbols that let a local be found in its own translation unit),
`System.map` (no FILE symbols: only unique names resolve), and
`Module.symvers` for what is exported and by whom.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from kbuilder.elf.constants import SHN, STB, STT
from kbuilder.elf.symbols import SymbolEntry, read_symbol_table
from kbuilder.errors import InputError

# Names the compiler or linker may drop from the final image; they do not
# count when matching a translation unit's locals (kpatch's list).
_MAYBE_DISCARDED = ("__exitcall_", "__brk_reservation_fn_", "__func_stack_frame_non_standard_",
                    "__trace_check", "__UNIQUE_ID_", "__addressable_", ".L.str", ".L__const")


class SymposError(InputError):
    kind = "sympos"


@dataclass(slots=True)
class ParentSymbols:
    path: str
    entries: list[SymbolEntry]
    has_files: bool
    # name -> indexes of defined entries with that name
    by_name: dict[str, list[int]] = field(default_factory=dict)
    # file name -> list of (start, end) index ranges of its FILE blocks
    file_blocks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ParentSymbols:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise InputError("parent symbol table not found", path=path)
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic == b"\x7fELF":
            entries = [e for e in read_symbol_table(path)
                       if e.type != STT.SECTION and (e.shndx != SHN.UNDEF or e.type == STT.FILE)]
            table = cls(path, entries, has_files=True)
        else:
            table = cls(path, _read_system_map(path), has_files=False)
        table._index()
        return table

    def _index(self) -> None:
        current: str | None = None
        start = 0
        for i, e in enumerate(self.entries):
            if e.type == STT.FILE:
                if current is not None:
                    self.file_blocks.setdefault(current, []).append((start, i))
                current, start = e.name, i + 1
                continue
            self.by_name.setdefault(e.name, []).append(i)
        if current is not None:
            self.file_blocks.setdefault(current, []).append((start, len(self.entries)))

    def find_global(self, name: str) -> SymbolEntry | None:
        for i in self.by_name.get(name, ()):
            if self.entries[i].bind != STB.LOCAL:
                return self.entries[i]
        return None

    def match_file_block(self, file_name: str, local_names: set[str]) -> tuple[int, int] | None:
        """The block of `file_name` whose locals are exactly `local_names`."""
        wanted = {n for n in local_names if not _maybe_discarded(n)}
        matches = []
        for start, end in self.file_blocks.get(file_name, ()):
            names = {e.name for e in self.entries[start:end]
                     if e.bind == STB.LOCAL and e.type in (STT.FUNC, STT.OBJECT) and not _maybe_discarded(e.name)}
            if names == wanted:
                matches.append((start, end))
        if not matches:
            raise SymposError(f"couldn't find matching {file_name} local symbols in the parent symbol table",
                              path=self.path)
        if len(matches) > 1 and wanted:
            raise SymposError(f"found duplicate matches for {file_name} local symbols in the parent symbol table",
                              path=self.path)
        return matches[0]

    def local_sympos(self, name: str, block: tuple[int, int] | None) -> int:
        """Position (1-based, by address as kallsyms counts) among same-named
        symbols; 0 when the name is unique, which livepatch prefers."""
        indexes = self.by_name.get(name, [])
        if len(indexes) <= 1:
            if not indexes:
                raise SymposError(f"can't find local symbol '{name}' in the parent symbol table", path=self.path)
            return 0
        if block is None:
            raise SymposError(f"symbol '{name}' is not unique in {os.path.basename(self.path)} and it has no "
                              "file symbols to tell them apart (use vmlinux, not System.map)", path=self.path)
        inside = [i for i in indexes if block[0] <= i < block[1] and self.entries[i].bind == STB.LOCAL]
        if len(inside) != 1:
            raise SymposError(f"{'duplicate' if inside else 'no'} local symbol '{name}' found in its file block",
                              path=self.path)
        ordered = sorted(indexes, key=lambda i: (self.entries[i].value, i))
        return ordered.index(inside[0]) + 1


def _maybe_discarded(name: str) -> bool:
    return any(marker in name for marker in _MAYBE_DISCARDED) or name.startswith("__ksymtab") \
        or name.startswith("__kstrtab") or name.startswith("__kcrctab")


def _read_system_map(path: str) -> list[SymbolEntry]:
    entries = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if len(parts) < 3:
                continue
            try:
                value = int(parts[0], 16)
            except ValueError:
                raise InputError(f"line {lineno}: not a System.map line", path=path) from None
            letter = parts[1]
            if letter in "Uuw":
                continue
            bind = STB.LOCAL if letter.islower() else STB.GLOBAL
            kind = STT.FUNC if letter in "tT" else STT.OBJECT
            entries.append(SymbolEntry(parts[2], bind, kind, 1, value, 0))
    return entries


def read_symvers(path: str | os.PathLike[str]) -> dict[str, str]:
    """Module.symvers: exported symbol -> exporting object (`vmlinux` or a
    module name). Column order changed across kernels, so the module column
    is the one that names vmlinux or a path."""
    path = os.fspath(path)
    exports: dict[str, str] = {}
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read Module.symvers: {exc.strerror}", path=path) from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            cols = line.rstrip("\n").split("\t")
            if not line.strip():
                continue
            if len(cols) < 4:
                raise InputError(f"line {lineno}: Module.symvers: invalid format", path=path)
            module = next((c for c in cols[2:] if c == "vmlinux" or "/" in c or c.endswith(".ko")), cols[2])
            name = os.path.basename(module)
            if name.endswith(".ko"):
                name = name[:-3]
            exports[cols[1]] = name.replace("-", "_")
    return exports


# A process that diffs many objects (kbuild build's and the batch diff's
# workers) resolves all of them against the same vmlinux symbol table and
# Module.symvers, and a distribution vmlinux has some 150,000 symbols: these
# read each file once per process, keyed by path and stat so that a file
# changed on disk is read again. The results are shared: do not modify them.
def shared_parent_symbols(path: str | os.PathLike[str]) -> ParentSymbols:
    path = os.fspath(path)
    return _shared_parent_symbols(path, *_stamp(path))


def shared_symvers(path: str | os.PathLike[str]) -> dict[str, str]:
    path = os.fspath(path)
    return _shared_symvers(path, *_stamp(path))


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return 0, -1  # the loader reports the missing file
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=4)
def _shared_parent_symbols(path: str, _mtime: int, _size: int) -> ParentSymbols:
    return ParentSymbols.load(path)


@lru_cache(maxsize=2)
def _shared_symvers(path: str, _mtime: int, _size: int) -> dict[str, str]:
    return read_symvers(path)
