"""The test kernel and its config (kbuilder.kernel.testkernel, .config).

Tests marked `kernel` build the test kernel on first use (a few minutes on
two cores; cached under KBUILDER_CACHE, else ~/.cache/kbuilder). The config
checks on hand-written configs need no kernel.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from kbuilder.errors import InputError
from kbuilder.kernel import config as kconfig
from kbuilder.kernel import testkernel, tree
from kbuilder.kernel.cache import cache_root

kernel = pytest.mark.kernel


@pytest.fixture(scope="session")
def built_kernel() -> testkernel.TestKernel:
    if not testkernel.TARBALL.is_file():
        pytest.skip(f"{testkernel.TARBALL} is missing (Debian package linux-source-6.1)")
    return testkernel.prepare_test_kernel(jobs=os.cpu_count() or 1, cache=cache_root())


# ---- the built kernel -------------------------------------------------------

@kernel
def test_config_has_livepatch(built_kernel: testkernel.TestKernel) -> None:
    values = kconfig.read_config(built_kernel.config)
    assert values.get("CONFIG_LIVEPATCH") == "y"
    assert values.get("CONFIG_64BIT") == "y"
    assert kconfig.check_livepatch_config(built_kernel.config) == []


@kernel
def test_every_fragment_line_is_in_the_built_config(built_kernel: testkernel.TestKernel) -> None:
    # build_original runs olddefconfig again in its own O= directory.
    kconfig.verify_fragment(built_kernel.config, kconfig.LIVEPATCH_FRAGMENT)


@kernel
def test_artifacts_exist(built_kernel: testkernel.TestKernel) -> None:
    for path in (built_kernel.bzimage, built_kernel.vmlinux, built_kernel.system_map, built_kernel.symvers,
                 built_kernel.sample_module, built_kernel.obj / "fs" / "binfmt_misc.ko"):
        assert path.is_file(), path
    assert built_kernel.release.startswith("6.1.")
    assert (built_kernel.source / testkernel.LDS_FILE).read_text().count(testkernel.LDS_NEW) == 1


@kernel
def test_objects_have_function_sections(built_kernel: testkernel.TestKernel) -> None:
    from elftools.elf.elffile import ELFFile

    with open(built_kernel.obj / "fs" / "proc" / "cmdline.o", "rb") as fh:
        names = {section.name for section in ELFFile(fh).iter_sections()}
    assert ".text.cmdline_proc_show" in names


@kernel
def test_second_prepare_is_cached_and_build_is_reused(built_kernel: testkernel.TestKernel) -> None:
    start = time.monotonic()
    again = testkernel.prepare_test_kernel(jobs=1, cache=cache_root())
    assert again == built_kernel
    # What `kbuild build` would ask for: the same tree and config give the
    # same, already complete, original build.
    build = tree.build_original(built_kernel.source, built_kernel.config_file, jobs=1, cache=cache_root())
    assert build.key == built_kernel.build.key
    assert time.monotonic() - start < 60


@kernel
def test_check_reports_missing_livepatch_in_a_doctored_config(built_kernel: testkernel.TestKernel,
                                                              tmp_path: Path) -> None:
    doctored = tmp_path / "config"
    lines = built_kernel.config.read_text().splitlines()
    doctored.write_text("\n".join(ln for ln in lines if not ln.startswith("CONFIG_LIVEPATCH=")) + "\n")
    problems = kconfig.check_livepatch_config(doctored)
    assert problems == ["CONFIG_LIVEPATCH is not set: livepatch modules cannot load"]


# ---- configs written by hand (no kernel needed) -----------------------------

GOOD = """\
CONFIG_LIVEPATCH=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_KALLSYMS_ALL=y
CONFIG_FUNCTION_TRACER=y
CONFIG_DYNAMIC_FTRACE_WITH_ARGS=y
# CONFIG_LTO_CLANG is not set
"""


def test_check_accepts_a_good_config(tmp_path: Path) -> None:
    (tmp_path / "c").write_text(GOOD)
    assert kconfig.check_livepatch_config(tmp_path / "c") == []


def test_check_reports_every_problem(tmp_path: Path) -> None:
    text = (GOOD.replace("CONFIG_DYNAMIC_FTRACE_WITH_ARGS=y\n", "")
            .replace("CONFIG_MODULE_UNLOAD=y\n", "# CONFIG_MODULE_UNLOAD is not set\n")
            + "CONFIG_GCC_PLUGIN_RANDSTRUCT=y\nCONFIG_LD_DEAD_CODE_DATA_ELIMINATION=y\n")
    (tmp_path / "c").write_text(text)
    problems = kconfig.check_livepatch_config(tmp_path / "c")
    assert len(problems) == 4, problems
    assert problems[0].startswith("CONFIG_MODULE_UNLOAD is not set: ")
    assert "CONFIG_DYNAMIC_FTRACE_WITH_REGS nor CONFIG_DYNAMIC_FTRACE_WITH_ARGS" in problems[1]
    assert problems[2].startswith("CONFIG_GCC_PLUGIN_RANDSTRUCT is set: ")
    assert problems[3].startswith("CONFIG_LD_DEAD_CODE_DATA_ELIMINATION is set: ")


def test_check_of_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        kconfig.check_livepatch_config(tmp_path / "nope")


def test_merge_replaces_and_appends(tmp_path: Path) -> None:
    config = tmp_path / ".config"
    config.write_text("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n# a comment\n")
    kconfig.merge_fragment(config, ("CONFIG_B=y", "# CONFIG_A is not set", "CONFIG_D=1"))
    assert kconfig.read_config(config) == {"CONFIG_C": "m", "CONFIG_B": "y", "CONFIG_A": None, "CONFIG_D": "1"}
    assert "# a comment" in config.read_text()


def test_verify_names_the_option_that_did_not_stick(tmp_path: Path) -> None:
    config = tmp_path / ".config"
    config.write_text("CONFIG_A=y\n# CONFIG_B is not set\n")
    kconfig.verify_fragment(config, ("CONFIG_A=y", "# CONFIG_B is not set", "# CONFIG_Z is not set"))
    with pytest.raises(InputError, match="CONFIG_B=y did not stick"):
        kconfig.verify_fragment(config, ("CONFIG_A=y", "CONFIG_B=y"))
    with pytest.raises(InputError, match="CONFIG_A should not be set"):
        kconfig.verify_fragment(config, ("# CONFIG_A is not set",))


def test_fragment_lines_are_well_formed() -> None:
    options = [kconfig.parse_line(line) for line in kconfig.LIVEPATCH_FRAGMENT]
    assert all(options), [ln for ln, o in zip(kconfig.LIVEPATCH_FRAGMENT, options) if not o]
    names = [o[0] for o in options if o]
    assert len(names) == len(set(names))


def test_linker_script_patch_is_one_line(tmp_path: Path) -> None:
    lds = tmp_path / testkernel.LDS_FILE
    lds.parent.mkdir(parents=True)
    original = f"a\n{testkernel.LDS_OLD}b\n#else\n#endif\n"
    lds.write_text(original)
    mtime = lds.stat().st_mtime_ns
    testkernel.patch_linker_script(tmp_path)
    assert lds.read_text() == original.replace(testkernel.LDS_OLD, testkernel.LDS_NEW)
    assert lds.stat().st_mtime_ns == mtime
    with pytest.raises(InputError, match="not found exactly once"):
        testkernel.patch_linker_script(tmp_path)


def test_missing_tarball_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="linux-source-6.1"):
        testkernel.prepare_test_kernel(jobs=1, cache=tmp_path, tarball=tmp_path / "none.tar.xz")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_cli_is_a_click_command() -> None:
    from click.testing import CliRunner

    from kbuilder.cli.testkernel import testkernel as command

    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "--jobs" in result.output and "--json" in result.output
