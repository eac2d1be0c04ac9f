"""Livepatch modules built by kbuilder from real kernel patches, loaded in
a QEMU guest of the test kernel (cases.toml; docs/livepatch-cookbook.md).

For every "pass" case: the build succeeds and its report says what the
case expects (replaced functions, changed objects, new functions,
callbacks, livepatch relocations); in the guest the case's check fails
before the module is loaded, passes once the patch transition is
complete, and fails again after the patch is disabled and unloaded.
For every "refused" case: `kbuild build` exits with status 2 and says why.
Finally all "pass" patches build into one module that passes every check
at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from livepatch_cases import (
    Case,
    ModuleBuilder,
    case_steps,
    combined_cases,
    combined_steps,
    guest_dmesg,
    in_order,
    pass_cases,
    record,
    refused_cases,
)

from kbuilder.errors import EXIT_UNPATCHABLE
from kbuilder.kernel import testkernel, vm

pytestmark = pytest.mark.kernel

PASS = pass_cases()
REFUSED = refused_cases()
COMBINED = combined_cases()
COMBINED_NAME = "kbt-combined"


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


def _module_symbols(ko: Path) -> tuple[list[str], list[str]]:
    """(section names, symbol names) of a .ko."""
    with open(ko, "rb") as fh:
        elf = ELFFile(fh)
        sections = [s.name for s in elf.iter_sections()]
        symtab = elf.get_section_by_name(".symtab")
        symbols = [s.name for s in symtab.iter_symbols()] if symtab is not None else []
    return sections, symbols


def _kernel_functions(kernel: testkernel.TestKernel, objname: str) -> set[str]:
    """Function names of the running kernel's vmlinux (System.map) or of
    one of its modules: what livepatch will look the names up in."""
    if objname == "vmlinux":
        return {line.split()[2] for line in kernel.system_map.read_text().splitlines()
                if len(line.split()) == 3 and line.split()[1] in "tT"}
    kos = [p for p in kernel.obj.rglob("*.ko") if p.stem.replace("-", "_") == objname]
    assert kos, f"no {objname}.ko in {kernel.obj}"
    return set(_module_symbols(kos[0])[1])


def _explain(result: vm.TestLoadResult) -> str:
    return f"{result.failure} (log: {result.log})"


def _check_report(case: Case, report: dict) -> None:
    functions = report["functions"]
    assert sorted(f["name"] for f in functions) == sorted(case.functions), functions
    assert {f["object"] for f in functions} == {case.klp_object}, functions
    objects = [o for o in report["objects"] if o["status"] == "patch"]
    assert sorted(o["file"] for o in objects) == sorted(case.objects), report["objects"]
    new = [n for o in objects for n in o["new"]]
    for name in case.new:
        assert any(n == name or n.startswith(name + ".") for n in new), f"{name} not among new functions {new}"
    callbacks = report["callbacks"].get("vmlinux", {})
    assert sorted(callbacks) == sorted(case.callbacks), report["callbacks"]
    warnings = [w for o in report["objects"] for w in o["warnings"]]
    for text in case.warnings:
        assert any(text in w for w in warnings), f"no warning mentions {text!r}: {warnings}"


def _check_klp_symbols(case: Case, module: Path, report: dict) -> None:
    if not case.klp_symbols:
        return
    assert report["livepatch_relocations"] > 0, report["livepatch_relocations"]
    sections, symbols = _module_symbols(module)
    assert any(s.startswith(".klp.rela.") for s in sections), sections
    klp = [s for s in symbols if s.startswith(".klp.sym.")]
    for name in case.klp_symbols:
        assert any(s.startswith(f".klp.sym.{case.klp_object}.{name},") for s in klp), \
            f"{name} is not a livepatch symbol of {module.name}: {klp}"


# ---------------------------------------------------------------------------
# One module per patch
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", PASS, ids=_ids(PASS))
def test_case_builds(case: Case, module_builder: ModuleBuilder, test_kernel: testkernel.TestKernel) -> None:
    built = module_builder.build([case.patch], case.module_name)
    assert built.error is None, f"{type(built.error).__name__}: {built.error}"
    assert built.result is not None
    report = built.result.report
    _check_report(case, report)
    # The replaced functions exist under these names in the target (clones
    # such as devkmsg_emit.constprop.0 included).
    missing = set(case.functions) - _kernel_functions(test_kernel, case.klp_object)
    assert not missing, f"not functions of {case.klp_object}: {sorted(missing)}"
    _check_klp_symbols(case, built.result.module, report)
    assert vm.is_livepatch(built.result.module)


@pytest.mark.parametrize("case", PASS, ids=_ids(PASS))
def test_case_loads(case: Case, module_builder: ModuleBuilder, test_kernel: testkernel.TestKernel,
                    case_logs: Path) -> None:
    built = module_builder.build([case.patch], case.module_name)
    if built.result is None:
        pytest.fail(f"the module did not build: {built.error}", pytrace=False)
    steps = case_steps(case, built.result.module, test_kernel.obj)
    result = vm.run_steps(test_kernel.bzimage, steps, log=case_logs / f"{case.name}.log")
    record(case.name, "boot", result.seconds)
    assert result.ok, _explain(result)
    statuses = {o.label: o.status for o in result.outcomes}
    assert statuses["before"] != 0 and statuses["after"] == 0 and statuses["unloaded"] != 0, statuses
    missing = in_order(guest_dmesg(result), case.dmesg)
    assert not missing, f"kernel log lacks {missing} (log: {result.log})"


@pytest.mark.parametrize("case", REFUSED, ids=_ids(REFUSED))
def test_case_refused(case: Case, module_builder: ModuleBuilder) -> None:
    run = module_builder.build_cli([case.patch], case.module_name)
    assert run.exit_code == EXIT_UNPATCHABLE, (run.exit_code, run.stderr)
    message = run.stderr.strip()
    lines = message.splitlines()
    # Every reason on its own line (docs/guide.md), nothing else on stderr.
    assert lines and all(line.startswith("kbuild: unpatchable: ") for line in lines), message
    for text in case.reason:
        assert text in message, f"{text!r} not in the refusal: {message}"
    assert not (module_builder.output / f"{case.module_name}.ko").exists()


# ---------------------------------------------------------------------------
# All of them in one module
# ---------------------------------------------------------------------------

def _combined(module_builder: ModuleBuilder):  # type: ignore[no-untyped-def]
    return module_builder.build([c.patch for c in COMBINED], COMBINED_NAME)


def test_combined_module_builds(module_builder: ModuleBuilder) -> None:
    built = _combined(module_builder)
    assert built.error is None, f"{type(built.error).__name__}: {built.error}"
    assert built.result is not None
    report = built.result.report
    want = sorted((c.klp_object, f) for c in COMBINED for f in c.functions)
    got = sorted((f["object"], f["name"]) for f in report["functions"])
    assert got == sorted(set(want)), got
    assert sorted(o["file"] for o in report["objects"] if o["status"] == "patch") == \
        sorted({o for c in COMBINED for o in c.objects})
    callbacks = sorted(k for kinds in report["callbacks"].values() for k in kinds)
    assert callbacks == sorted(k for c in COMBINED for k in c.callbacks)
    sections, _ = _module_symbols(built.result.module)
    assert any(s.startswith(".klp.rela.vmlinux.") for s in sections), sections
    assert any(s.startswith(".klp.rela.binfmt_misc.") for s in sections), sections


def test_combined_module_loads(module_builder: ModuleBuilder, test_kernel: testkernel.TestKernel,
                               case_logs: Path) -> None:
    built = _combined(module_builder)
    if built.result is None:
        pytest.fail(f"the combined module did not build: {built.error}", pytrace=False)
    steps = combined_steps(COMBINED, built.result.module, test_kernel.obj)
    result = vm.run_steps(test_kernel.bzimage, steps, log=case_logs / "combined.log", timeout=240)
    record(COMBINED_NAME, "boot", result.seconds)
    assert result.ok, _explain(result)
    statuses = {o.label: o.status for o in result.outcomes}
    for case in COMBINED:
        assert statuses[f"before:{case.name}"] != 0 and statuses[f"after:{case.name}"] == 0 \
            and statuses[f"unloaded:{case.name}"] != 0, (case.name, statuses)
    missing = in_order(guest_dmesg(result), [line for c in COMBINED for line in c.dmesg])
    assert not missing, f"kernel log lacks {missing} (log: {result.log})"


def test_cases_file_covers_the_brief() -> None:
    """At least 12 pass cases and 4 refusals, every patch file used."""
    assert len({c.patch for c in PASS}) >= 12
    assert len(REFUSED) >= 4
    used = {c.patch.name for c in PASS + REFUSED}
    on_disk = {p.name for p in (Path(__file__).parent / "patches").glob("*.patch")}
    assert used == on_disk, on_disk ^ used
