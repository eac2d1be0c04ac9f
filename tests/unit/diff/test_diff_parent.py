"""kbuilder.emit.parent.ParentSymbols and kbuilder.emit.klp.KlpResolver:
where a reference resolves in the running kernel and each local's sympos.

sympos is 0 for a name that is unique in the kernel's symbol table, else the
1-based position of the wanted symbol among the same-named ones, by address
(kallsyms order). Telling same-named locals apart needs the STT_FILE blocks
of an ELF symbol table; System.map has none, so a duplicate is an error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest

from kbuilder.diff import DiffOptions, diff_files
from kbuilder.elf import read_object
from kbuilder.elf.constants import STB, STT
from kbuilder.emit.klp import KlpResolver, KlpTarget, klp_symbol_name
from kbuilder.emit.parent import ParentSymbols, SymposError, read_symvers
from kbuilder.errors import InputError

REPO = Path(__file__).resolve().parents[3]

SYSTEM_MAP = """\
ffffffff81000000 T _stext
ffffffff81001000 t helper
ffffffff81002000 t dup_helper
ffffffff81003000 t dup_helper
ffffffff81004000 T exported_fn
ffffffff81005000 T unexported_fn
ffffffff81006000 d local_table
ffffffff81007000 D global_table
                 U not_in_the_kernel
ffffffff81008000 W weak_fn
"""


@pytest.fixture
def system_map(tmp_path: Path) -> ParentSymbols:
    path = tmp_path / "System.map"
    path.write_text(SYSTEM_MAP)
    return ParentSymbols.load(path)


# --- System.map ---------------------------------------------------------------

def test_system_map_unique_local_is_sympos_0(system_map: ParentSymbols) -> None:
    assert not system_map.has_files
    assert system_map.local_sympos("helper", None) == 0
    assert system_map.local_sympos("local_table", None) == 0


def test_system_map_duplicate_local_is_an_error(system_map: ParentSymbols) -> None:
    with pytest.raises(SymposError) as err:
        system_map.local_sympos("dup_helper", None)
    assert "dup_helper" in str(err.value) and "not unique" in str(err.value)
    assert err.value.path == system_map.path and err.value.kind == "sympos"


def test_system_map_unknown_local_is_an_error(system_map: ParentSymbols) -> None:
    with pytest.raises(SymposError, match="can't find local symbol 'nowhere'"):
        system_map.local_sympos("nowhere", None)


def test_system_map_globals(system_map: ParentSymbols) -> None:
    found = system_map.find_global("exported_fn")
    assert found is not None and found.bind == STB.GLOBAL and found.type == STT.FUNC
    assert system_map.find_global("global_table") is not None
    assert system_map.find_global("weak_fn") is not None
    assert system_map.find_global("helper") is None          # local only
    assert system_map.find_global("not_in_the_kernel") is None  # `U` lines are skipped


def test_system_map_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "System.map"
    path.write_text("ffffffff81000000 T ok\nnot-hex T broken\n")
    with pytest.raises(InputError, match="line 2"):
        ParentSymbols.load(path)


def test_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        ParentSymbols.load(tmp_path / "vmlinux")


# --- the resolver: which references become livepatch symbols --------------------

def test_resolver_decisions(system_map: ParentSymbols) -> None:
    warnings: list[str] = []
    exports = {"exported_fn": "vmlinux", "mod_fn": "some_module"}
    resolver = KlpResolver("vmlinux", system_map, exports, None, warnings)
    assert resolver.decide("helper", STB.LOCAL) == KlpTarget("helper", "vmlinux", 0)
    assert resolver.decide("exported_fn", STB.GLOBAL) is None        # the module loader resolves it
    assert resolver.decide("mod_fn", STB.GLOBAL) == KlpTarget("mod_fn", "some_module", 0)
    assert resolver.decide("unexported_fn", STB.GLOBAL) == KlpTarget("unexported_fn", "vmlinux", 0)
    assert resolver.decide("elsewhere_in_patch", STB.GLOBAL) is None
    with pytest.raises(SymposError):
        resolver.decide("dup_helper", STB.LOCAL)
    assert warnings == []


def test_resolver_without_parent_warns_once() -> None:
    warnings: list[str] = []
    resolver = KlpResolver("vmlinux", None, None, None, warnings)
    assert resolver.decide("a", STB.LOCAL) == KlpTarget("a", "vmlinux", 0)
    assert resolver.decide("b", STB.LOCAL) == KlpTarget("b", "vmlinux", 0)
    assert len(warnings) == 1 and "sympos 0" in warnings[0]


def test_klp_symbol_name() -> None:
    assert klp_symbol_name("vmlinux", "counter.1", 2) == ".klp.sym.vmlinux.counter.1,2"
    assert klp_symbol_name("nfsd", "nfsd_open", 0) == ".klp.sym.nfsd.nfsd_open,0"


def test_symvers(tmp_path: Path) -> None:
    path = tmp_path / "Module.symvers"
    path.write_text("0x1234\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"
                    "0x5678\tnfsd_thing\tfs/nfsd/nfsd\tEXPORT_SYMBOL_GPL\t\n"
                    "0x9abc\tdma_buf_export\tDMA_BUF\tdrivers/dma-buf/dma-buf-mod.ko\tEXPORT_SYMBOL_GPL\n")
    assert read_symvers(path) == {"printk": "vmlinux", "nfsd_thing": "nfsd", "dma_buf_export": "dma_buf_mod"}


# --- compiled objects: FILE blocks tell same-named locals apart --------------------

UNIT_A = """
static int a_only;
static __attribute__((noinline)) int helper(int x) { return x * 3 + a_only++; }
int a_entry(int x) { return helper(x) + 1; }
"""
UNIT_B = """
static int b_only;
static __attribute__((noinline)) int helper(int x) { return x * 5 - b_only--; }
int b_entry(int x) { return helper(x) + 2; }
"""


def _locals(path: Path) -> set[str]:
    return {s.name for s in read_object(path).symbols
            if s.bind == STB.LOCAL and s.type in (STT.FUNC, STT.OBJECT) and s.section is not None}


def test_object_unique_local_is_sympos_0(compile_units: Callable[..., Path]) -> None:
    work = compile_units("single", {"a.c": UNIT_A})
    parent = ParentSymbols.load(work / "a.o")
    assert parent.has_files
    block = parent.match_file_block("a.c", _locals(work / "a.o"))
    assert parent.local_sympos("helper", block) == 0
    assert parent.local_sympos("a_only", block) == 0


def test_linked_object_duplicate_locals_get_positions(compile_units: Callable[..., Path],
                                                      link_relocatable: Callable[..., Path]) -> None:
    work = compile_units("pair", {"a.c": UNIT_A, "b.c": UNIT_B})
    parent = ParentSymbols.load(link_relocatable(work / "vmlinux.o", work / "a.o", work / "b.o"))
    block_a = parent.match_file_block("a.c", _locals(work / "a.o"))
    block_b = parent.match_file_block("b.c", _locals(work / "b.o"))
    assert block_a != block_b
    positions = (parent.local_sympos("helper", block_a), parent.local_sympos("helper", block_b))
    assert sorted(positions) == [1, 2], positions
    # Linked first, a.c's helper comes first by address.
    assert positions == (1, 2)
    assert parent.local_sympos("a_only", block_a) == 0
    with pytest.raises(SymposError, match="can't find local symbol"):
        parent.local_sympos("c_only", block_a)


def test_linked_object_without_file_block_cannot_choose(compile_units: Callable[..., Path],
                                                        link_relocatable: Callable[..., Path]) -> None:
    work = compile_units("pair", {"a.c": UNIT_A, "b.c": UNIT_B})
    parent = ParentSymbols.load(link_relocatable(work / "vmlinux2.o", work / "a.o", work / "b.o"))
    with pytest.raises(SymposError, match="not unique"):
        parent.local_sympos("helper", None)


def test_file_block_must_match(compile_units: Callable[..., Path], link_relocatable: Callable[..., Path]) -> None:
    work = compile_units("pair", {"a.c": UNIT_A, "b.c": UNIT_B})
    parent = ParentSymbols.load(link_relocatable(work / "vmlinux3.o", work / "a.o", work / "b.o"))
    with pytest.raises(SymposError, match="couldn't find matching a.c local symbols"):
        parent.match_file_block("a.c", {"helper", "a_only", "not_there"})
    with pytest.raises(SymposError, match="couldn't find matching c.c"):
        parent.match_file_block("c.c", {"helper"})


def test_two_identical_file_blocks_are_ambiguous(compile_units: Callable[..., Path],
                                                 link_relocatable: Callable[..., Path]) -> None:
    """Two files named a.c with the same locals (globals differ, as they must)."""
    one = compile_units("copy1", {"a.c": UNIT_A})
    two = compile_units("copy2", {"a.c": UNIT_A.replace("a_entry", "a_entry_again")})
    parent = ParentSymbols.load(link_relocatable(one / "twice.o", one / "a.o", two / "a.o"))
    with pytest.raises(SymposError, match="duplicate matches for a.c"):
        parent.match_file_block("a.c", _locals(one / "a.o"))


# --- through the differ ------------------------------------------------------------

OTHER_UNIT = """
int other_one(void) { static int counter; return ++counter; }
int other_two(void) { static int counter; return counter += 2; }
"""


def _fixture(name: str) -> tuple[Path, Path]:
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    import fixture_build  # noqa: PLC0415  (tests/fixture_build.py)

    base = Path(os.environ["KBUILDER_CACHE"]) if os.environ.get("KBUILDER_CACHE") else REPO / ".cache"
    orig, patched = fixture_build.compile_fixture(name, base / "test-objects")
    return Path(orig), Path(patched)


def _counter_name(orig: Path) -> str:
    """The name of event_log's static counter in the static-local fixture."""
    obj = read_object(orig)
    rela = obj.find_section(".rela.text.event_log")
    assert rela is not None
    names = set()
    for reloc in rela.relocs:
        sym = reloc.symbol
        inside = obj.symbols_in(sym.section) if sym.type == STT.SECTION and sym.section is not None else [sym]
        names |= {s.name for s in inside if s.name.startswith("counter.")}
    assert len(names) == 1, names
    return names.pop()


def test_diff_sympos_from_linked_parent(tmp_path: Path, compile_units: Callable[..., Path],
                                        link_relocatable: Callable[..., Path]) -> None:
    """static-local's counter.N shares its name with a static of another file:
    its klp symbol carries its position, found through its file's block."""
    orig, patched = _fixture("static-local")
    counter = _counter_name(orig)
    other = compile_units("other", {"other.c": OTHER_UNIT}) / "other.o"
    assert counter in _locals(other), f"other.c should also define {counter}: {_locals(other)}"
    for first, second, position in ((orig, other, 1), (other, orig, 2)):
        vmlinux = link_relocatable(tmp_path / f"vmlinux-{position}.o", first, second)
        result = diff_files(orig, patched, DiffOptions(parent=ParentSymbols.load(vmlinux)))
        assert result.status == "patch"
        names = {k.symbol for k in result.facts.klp_symbols} if result.facts else set()
        assert klp_symbol_name("vmlinux", counter, position) in names, names


def test_diff_duplicate_local_in_system_map_is_an_error(tmp_path: Path) -> None:
    orig, patched = _fixture("static-local")
    counter = _counter_name(orig)
    lines = [f"{i:016x} {'t' if s.type == STT.FUNC else 'd'} {s.name}"
             for i, s in enumerate(read_object(orig).symbols)
             if s.section is not None and s.name and s.type in (STT.FUNC, STT.OBJECT)]
    unique = tmp_path / "System.map"
    unique.write_text("\n".join(lines) + "\n")
    result = diff_files(orig, patched, DiffOptions(parent=ParentSymbols.load(unique)))
    assert result.status == "patch"
    assert klp_symbol_name("vmlinux", counter, 0) in {k.symbol for k in result.facts.klp_symbols}  # type: ignore[union-attr]

    duplicated = tmp_path / "System.map.dup"
    duplicated.write_text("\n".join(lines) + f"\nffffffff90000000 d {counter}\n")
    with pytest.raises(SymposError, match=f"'{counter}' is not unique"):
        diff_files(orig, patched, DiffOptions(parent=ParentSymbols.load(duplicated)))


def test_shared_loaders_read_once_and_again_after_a_change(tmp_path: Path) -> None:
    from kbuilder.emit.parent import shared_parent_symbols, shared_symvers

    system_map = tmp_path / "System.map"
    system_map.write_text(SYSTEM_MAP)
    first = shared_parent_symbols(system_map)
    assert shared_parent_symbols(str(system_map)) is first          # one read per process
    system_map.write_text(SYSTEM_MAP + "ffffffff81009000 T kbuilder_added\n")
    os.utime(system_map, ns=(1, 1))                                  # a different stat, whatever the clock
    again = shared_parent_symbols(system_map)
    assert again is not first and again.find_global("kbuilder_added") is not None
    symvers = tmp_path / "Module.symvers"
    symvers.write_text("0x00000000\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
    assert shared_symvers(symvers) is shared_symvers(symvers) and shared_symvers(symvers)["printk"] == "vmlinux"
    with pytest.raises(InputError):
        shared_parent_symbols(tmp_path / "missing")
