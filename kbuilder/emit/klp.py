"""Which references become livepatch relocations, and what they are called.

A patch module is linked like any module, so a reference resolves only to an
exported symbol. Everything else the new code reaches in the running kernel
(static functions and data, unexported globals, symbols of modules that may
load later) is resolved by livepatch through kallsyms: such a reference
targets a symbol named `.klp.sym.<object>.<name>,<sympos>`. Naming the
undefined symbol that way in the diff output makes it unique per kernel
symbol, so objects linked together share exactly the right ones, and the
module stage only has to mark those symbols SHN_LIVEPATCH and move their
relocations into `.klp.rela.*` sections.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbuilder.elf.constants import STB
from kbuilder.emit.parent import ParentSymbols, SymposError

KLP_SYM_PREFIX = ".klp.sym."
KLP_RELA_PREFIX = ".klp.rela."


def klp_symbol_name(objname: str, name: str, sympos: int) -> str:
    return f"{KLP_SYM_PREFIX}{objname}.{name},{sympos}"


@dataclass(frozen=True, slots=True)
class KlpTarget:
    name: str
    objname: str
    sympos: int


@dataclass(slots=True)
class KlpResolver:
    """Decides per undefined reference; `file_block` locates the object's
    translation unit in the parent symbol table (for local sympos)."""

    objname: str
    parent: ParentSymbols | None
    exports: dict[str, str] | None
    file_block: tuple[int, int] | None
    warnings: list[str]

    def decide(self, name: str, orig_bind: int) -> KlpTarget | None:
        if orig_bind == STB.LOCAL:
            return KlpTarget(name, self.objname, self._local_sympos(name))
        exporter = self.exports.get(name) if self.exports is not None else None
        if exporter == "vmlinux":
            return None  # the module loader resolves vmlinux exports
        if exporter is not None:
            return KlpTarget(name, exporter, 0)  # a module's export: resolved when it loads
        if self.parent is not None and self.parent.find_global(name) is not None:
            return KlpTarget(name, self.objname, 0)  # a global nobody exported
        return None  # defined elsewhere in the patch module, or a vmlinux export

    def _local_sympos(self, name: str) -> int:
        if self.parent is None:
            message = "no parent symbol table given: sympos 0 assumed for local symbols"
            if message not in self.warnings:
                self.warnings.append(message)
            return 0
        try:
            return self.parent.local_sympos(name, self.file_block)
        except SymposError:
            if not self.parent.has_files and name not in self.parent.by_name:
                raise
            raise
