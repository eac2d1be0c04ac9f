"""The facts the differ's stages share: both objects and what is known about
them (bundling, correlation, change status, inclusion, refusals).

The ELF model stays free of livepatch concepts: every fact lives here in
dictionaries keyed by model nodes (identity-hashed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kbuilder.arch import Arch
from kbuilder.elf.model import ElfObject, Section, Symbol


class Status(enum.Enum):
    SAME = "same"
    CHANGED = "changed"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One reason the change cannot be live-patched.

    `kind` is stable for machines (see docs/diff.md), `message` for people.
    """

    kind: str
    message: str


@dataclass(slots=True, eq=False)
class ObjectView:
    obj: ElfObject
    arch: Arch
    # A section made for exactly one function or data object (-ffunction-sections).
    bundled: dict[Section, Symbol] = field(default_factory=dict)
    # `.cold` / `.part` sub-functions and the function they were split from.
    parent: dict[Symbol, Symbol] = field(default_factory=dict)
    children: dict[Symbol, list[Symbol]] = field(default_factory=dict)
    patchable: set[Symbol] = field(default_factory=set)

    @property
    def path(self) -> str:
        return self.obj.path


@dataclass(slots=True, eq=False)
class ObjectPair:
    orig: ObjectView
    patched: ObjectView
    # Correlation, both directions, for sections and symbols.
    twin: dict[Section | Symbol, Section | Symbol] = field(default_factory=dict)
    # Status of patched sections and symbols (absent means SAME).
    status: dict[Section | Symbol, Status] = field(default_factory=dict)
    # Sections and symbols of the patched object that go into the output.
    included: set[Section | Symbol] = field(default_factory=set)
    # Sections left out of comparison and inclusion (`.discard*`, ...).
    ignored: set[Section] = field(default_factory=set)
    refusals: list[Refusal] = field(default_factory=list)
    # Patched sections a refusal already names (later checks need not repeat it).
    refused: set[Section] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    # Changed sections whose change is explained and accepted (e.g. __LINE__).
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def arch(self) -> Arch:
        return self.patched.arch

    def correlate(self, orig: Section | Symbol, patched: Section | Symbol) -> None:
        """Record twins; the patched element takes the original's name so that
        output references match the running kernel's symbols."""
        self.twin[orig] = patched
        self.twin[patched] = orig
        if patched.name != orig.name:
            patched.name = orig.name

    def status_of(self, node: Section | Symbol) -> Status:
        return self.status.get(node, Status.SAME)

    def refuse(self, kind: str, message: str) -> None:
        self.refusals.append(Refusal(kind, message))
