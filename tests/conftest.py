"""Shared fixtures of the kbuilder test-suite.

Objects under test come from three places:

* the kpatch unit corpus in ``../shared/conformance/kpatch-unit`` (read-only,
  next to the checkout, never copied into the repository);
* the C fixture pairs in ``fixtures/``, compiled on demand by
  ``tests/fixture_build.py`` (cached by content hash);
* small C snippets compiled by ``compile_c`` (cached by content hash too).

Tests that need an object ask for one of the indirect fixtures
``corpus_object``, ``fixture_object`` or ``any_object``; ``pytest_generate_tests``
below parametrizes them with readable ids (``x86_64/new-function.ORIG.o``,
``fixture/new-function.orig``, ``synthetic/comdat-group``). Corpus parameters
carry the ``conformance`` marker; a missing corpus skips them locally and
fails them in CI (``CI=true``). pytest reports a failure raised while a
fixture is set up as an ERROR; tests/test_environment.py calls `corpus_dir`
in its body, so a CI run without the corpus also shows a plain FAILED line.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "conformance" / "kpatch-unit"
CORPUS_ARCHES = ("x86_64", "aarch64")

MISSING_IN_CI = "../shared/conformance/kpatch-unit is missing: CI must have it"
MISSING_LOCALLY = "../shared not found next to the checkout; conformance tests skipped"

CC = os.environ.get("KBUILDER_TEST_CC", "gcc")


# ---------------------------------------------------------------------------
# The conformance corpus
# ---------------------------------------------------------------------------

def _corpus_present() -> bool:
    return all((CORPUS / arch).is_dir() for arch in CORPUS_ARCHES)


def corpus_dir() -> Path:
    """The corpus directory; skips the calling test (fails it in CI) if absent."""
    if _corpus_present():
        return CORPUS
    if os.environ.get("CI") == "true":
        pytest.fail(MISSING_IN_CI, pytrace=False)
    pytest.skip(MISSING_LOCALLY)


def corpus_files() -> list[str]:
    """Corpus objects as ``arch/name.o`` paths relative to the corpus; [] if absent."""
    if not _corpus_present():
        return []
    return [f"{arch}/{p.name}" for arch in CORPUS_ARCHES for p in sorted((CORPUS / arch).glob("*.o"))]


# ---------------------------------------------------------------------------
# tests/fixture_build.py (written concurrently: imported defensively)
# ---------------------------------------------------------------------------

# What fixture_build uses; only a fallback while that module is missing.
_FALLBACK_KERNEL_CFLAGS: tuple[str, ...] = (
    "-O2", "-ffunction-sections", "-fdata-sections", "-fno-pic", "-mcmodel=kernel",
    "-mno-red-zone", "-pg", "-mfentry", "-mrecord-mcount", "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector", "-fno-common",
)


def _load_fixture_build() -> tuple[ModuleType | None, str | None]:
    """(module, None), or (None, why) when it is missing (skip) or broken (fail)."""
    if not (TESTS / "fixture_build.py").is_file():
        return None, "missing"
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    try:
        module = importlib.import_module("fixture_build")
        for name in ("fixture_names", "compile_fixture"):
            if not callable(getattr(module, name, None)):
                raise AttributeError(f"fixture_build has no {name}()")
    except Exception as exc:  # noqa: BLE001 - any failure is reported by the tests that need it
        return None, f"tests/fixture_build.py cannot be used: {type(exc).__name__}: {exc}"
    return module, None


fixture_build, _FIXTURE_BUILD_PROBLEM = _load_fixture_build()
KERNEL_CFLAGS: tuple[str, ...] = tuple(getattr(fixture_build, "KERNEL_CFLAGS", _FALLBACK_KERNEL_CFLAGS))


def _fixture_build_unusable() -> None:
    """Skip (file not written yet) or fail (file present but broken)."""
    if _FIXTURE_BUILD_PROBLEM == "missing":
        pytest.skip("tests/fixture_build.py does not exist yet; fixture tests skipped")
    pytest.fail(_FIXTURE_BUILD_PROBLEM or "fixture_build unavailable", pytrace=False)


def fixture_pairs() -> list[str]:
    if fixture_build is None:
        return []
    try:
        return list(fixture_build.fixture_names())
    except Exception:  # noqa: BLE001 - surfaced by the fixture_objects fixture
        return []


# ---------------------------------------------------------------------------
# Compiling small C snippets
# ---------------------------------------------------------------------------

_CC_VERSION: dict[str, str] = {}


def _compiler_version(cc: str) -> str:
    if cc not in _CC_VERSION:
        try:
            out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(f"cannot run {cc} --version: {exc}") from exc
        _CC_VERSION[cc] = out.splitlines()[0] if out else ""
    return _CC_VERSION[cc]


def compile_c(source: str, cache_dir: Path, flags: Sequence[str] = KERNEL_CFLAGS, *, cc: str = CC) -> Path:
    """Compile a C snippet with ``cc -c FLAGS`` into ``cache_dir``; cached by a
    hash of the source, the flags and the compiler version."""
    key = hashlib.sha256()
    for part in (source, "\0".join(flags), cc, _compiler_version(cc)):
        blob = part.encode()
        key.update(len(blob).to_bytes(8, "little") + blob)
    digest = key.hexdigest()[:20]
    out = Path(cache_dir) / f"snippet-{digest}.o"
    if out.is_file():
        return out
    work = Path(cache_dir) / f".snippet-{digest}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        (work / "snippet.c").write_text(source)
        cmd = [cc, "-c", *flags, "snippet.c", "-o", "snippet.o"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling a test snippet failed (exit {proc.returncode}):\n"
                               f"$ {' '.join(cmd)}\n{proc.stderr}")
        os.replace(work / "snippet.o", out)  # atomic: concurrent runs are safe
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# Objects made from snippets for the round-trip tests: shapes the corpus lacks.
def _comdat_group_source() -> str:
    """A COMDAT section group (SHT_GROUP with a signature symbol)."""
    return ('asm(".section .data.kb_grp,\\"awG\\",@progbits,kb_grp_sig,comdat\\n'
            '.globl kb_grp_sig\\nkb_grp_sig: .quad kb_grp_target\\n.previous");\n'
            "int kb_grp_target(int x) { return x + 1; }\n")


def _many_sections_source() -> str:
    """More than SHN_LORESERVE sections: extended numbering (e_shnum = 0,
    e_shstrndx = SHN_XINDEX) and a SHT_SYMTAB_SHNDX table."""
    sections = "".join(f'.section .kb.s{i},\\"a\\"\\n.globl kb_s{i}\\nkb_s{i}: .byte {i % 256}\\n'
                       for i in range(65400))
    return f'asm("{sections}");\nint kb_many_ref(void) {{ return 1; }}\n'


SYNTHETIC_SOURCES: dict[str, Callable[[], str]] = {
    "comdat-group": _comdat_group_source,
    "many-sections": _many_sections_source,
}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def corpus() -> Path:
    """The kpatch unit corpus directory (skip locally / fail in CI if missing)."""
    return corpus_dir()


@pytest.fixture(scope="session")
def require_corpus() -> Callable[[], Path]:
    """`corpus_dir` itself, to call in a test body: a missing corpus in CI is
    then a FAILED test rather than an ERROR at fixture setup."""
    return corpus_dir


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    base = Path(os.environ["KBUILDER_CACHE"]) if os.environ.get("KBUILDER_CACHE") else REPO / ".cache"
    path = base / "test-objects"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class FixtureBuild:
    objects: dict[str, tuple[Path, Path]]
    errors: dict[str, str]


@pytest.fixture(scope="session")
def _fixture_build_results(cache_dir: Path) -> FixtureBuild:
    result = FixtureBuild({}, {})
    if fixture_build is None:
        return result
    for name in fixture_pairs():
        try:
            orig, patched = fixture_build.compile_fixture(name, cache_dir)
            result.objects[name] = (Path(orig), Path(patched))
        except Exception as exc:  # noqa: BLE001 - reported per fixture by the tests using it
            result.errors[name] = f"{type(exc).__name__}: {exc}"
    return result


@pytest.fixture(scope="session")
def fixture_objects(_fixture_build_results: FixtureBuild) -> dict[str, tuple[Path, Path]]:
    """name -> (orig.o, patched.o) for every fixture pair that compiles ({}
    while tests/fixture_build.py does not exist)."""
    return _fixture_build_results.objects


@pytest.fixture(params=["cython", "pure"])
def tables_impl(request: pytest.FixtureRequest) -> ModuleType:
    """The compiled table decoder and its pure-Python twin."""
    name = {"cython": "kbuilder.elf._tables", "pure": "kbuilder.elf._tables_py"}[request.param]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{name} is not importable (extension not built?): {exc}")


@pytest.fixture(scope="session")
def compile_snippet(cache_dir: Path) -> Callable[..., Path]:
    """``compile_snippet(source, flags=KERNEL_CFLAGS) -> Path`` (see compile_c)."""
    def _compile(source: str, flags: Sequence[str] = KERNEL_CFLAGS) -> Path:
        return compile_c(source, cache_dir, flags)
    return _compile


@pytest.fixture(scope="session")
def fixture_build_module() -> ModuleType:
    """tests/fixture_build.py (skip while it does not exist; fail if it is broken)."""
    if fixture_build is None:
        _fixture_build_unusable()
    return fixture_build


@pytest.fixture(scope="session")
def kernel_cflags() -> tuple[str, ...]:
    """fixture_build.KERNEL_CFLAGS (a copy of them while that module is missing)."""
    return KERNEL_CFLAGS


@pytest.fixture(scope="session")
def kbuild_exe() -> Path:
    """The installed `kbuild` console script of the interpreter running the tests."""
    from helpers import kbuild_script

    return kbuild_script()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def _run_clirunner(args: Sequence[str]) -> CliResult:
    from click.testing import CliRunner  # noqa: PLC0415

    from kbuilder.cli import main  # noqa: PLC0415

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    # The group always ends with sys.exit(): CliRunner turns it into exit_code
    # and keeps the SystemExit as `exception` for non-zero codes; anything else
    # would have propagated (catch_exceptions=False).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(params=["script", "clirunner"])
def kbuild(request: pytest.FixtureRequest) -> Callable[..., CliResult]:
    """``kbuild(*args) -> CliResult``, run both as the installed console
    script (subprocess) and in-process through click's CliRunner."""
    if request.param == "clirunner":
        return lambda *args: _run_clirunner([os.fspath(a) for a in args])
    exe = request.getfixturevalue("kbuild_exe")

    def run(*args: str | os.PathLike[str]) -> CliResult:
        proc = subprocess.run([str(exe), *map(os.fspath, args)], capture_output=True, text=True, timeout=120)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)
    return run


# ---- object parameters ----------------------------------------------------

@dataclass(frozen=True)
class ObjectRef:
    kind: str            # "corpus", "fixture", "synthetic"
    name: str | None     # corpus: "arch/file.o"; fixture: pair name; synthetic: key
    side: int = 0        # fixture: 0 = orig, 1 = patched


def _corpus_params() -> list:
    files = corpus_files()
    if not files:
        # One placeholder so the skip (or the CI failure) is visible in the report.
        return [pytest.param(ObjectRef("corpus", None), id="corpus-missing", marks=pytest.mark.conformance)]
    return [pytest.param(ObjectRef("corpus", f), id=f, marks=pytest.mark.conformance) for f in files]


def _fixture_params() -> list:
    names = fixture_pairs()
    if not names:
        return [pytest.param(ObjectRef("fixture", None), id="fixtures-unavailable")]
    return [pytest.param(ObjectRef("fixture", n, side), id=f"fixture/{n}.{('orig', 'patched')[side]}")
            for n in names for side in (0, 1)]


def _synthetic_params() -> list:
    return [pytest.param(ObjectRef("synthetic", n), id=f"synthetic/{n}") for n in SYNTHETIC_SOURCES]


_OBJECT_PARAMS: dict[str, Callable[[], list]] = {
    "corpus_object": _corpus_params,
    "fixture_object": _fixture_params,
    "any_object": lambda: [*_corpus_params(), *_fixture_params(), *_synthetic_params()],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for argname, params in _OBJECT_PARAMS.items():
        if argname in metafunc.fixturenames and not _explicitly_parametrized(metafunc, argname):
            metafunc.parametrize(argname, params(), indirect=True)


def _explicitly_parametrized(metafunc: pytest.Metafunc, argname: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if argname in names:
            return True
    return False


def _parse_ref(text: str) -> ObjectRef:
    """"synthetic/NAME", "fixture/NAME.orig|patched", else a corpus "arch/file.o"."""
    kind, _, rest = text.partition("/")
    if kind == "synthetic":
        return ObjectRef("synthetic", rest)
    if kind == "fixture":
        name, _, side = rest.rpartition(".")
        return ObjectRef("fixture", name, ("orig", "patched").index(side))
    return ObjectRef("corpus", text)


def resolve_object(request: pytest.FixtureRequest, ref: ObjectRef | str) -> Path:
    """Path of the object a parameter names (an ObjectRef or its id string)."""
    if isinstance(ref, str):
        ref = _parse_ref(ref)
    if ref.kind == "corpus":
        base = corpus_dir()
        assert ref.name is not None
        path = base / ref.name
        if not path.is_file():
            pytest.fail(f"corpus object {ref.name} is missing from {base}", pytrace=False)
        return path
    if ref.kind == "fixture":
        if fixture_build is None:
            _fixture_build_unusable()
        if ref.name is None:
            pytest.fail("tests/fixture_build.py lists no fixtures", pytrace=False)
        built: FixtureBuild = request.getfixturevalue("_fixture_build_results")
        if ref.name in built.errors:
            pytest.fail(f"fixture {ref.name} does not compile: {built.errors[ref.name]}", pytrace=False)
        return built.objects[ref.name][ref.side]
    if ref.kind == "synthetic":
        cache: Path = request.getfixturevalue("cache_dir")
        assert ref.name is not None
        return compile_c(SYNTHETIC_SOURCES[ref.name](), cache, ("-O2", "-ffunction-sections"))
    raise AssertionError(f"unknown object kind {ref.kind}")


@pytest.fixture
def corpus_object(request: pytest.FixtureRequest) -> Path:
    return resolve_object(request, request.param)


@pytest.fixture
def fixture_object(request: pytest.FixtureRequest) -> Path:
    return resolve_object(request, request.param)


@pytest.fixture
def any_object(request: pytest.FixtureRequest) -> Path:
    return resolve_object(request, request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: Iterable[pytest.Item]) -> None:
    # Whatever needs the corpus (directly or through another fixture) is a
    # conformance test, so `-m "not conformance"` deselects all of them.
    for item in items:
        names = getattr(item, "fixturenames", ())
        needs_corpus = "corpus" in names or "corpus_object" in names
        if needs_corpus and item.get_closest_marker("conformance") is None:
            item.add_marker(pytest.mark.conformance)


# ---------------------------------------------------------------------------
# Binutils helpers
# ---------------------------------------------------------------------------

class Binutils:
    """Thin wrappers over readelf / ld / nm used as independent oracles."""

    def run(self, *argv: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([os.fspath(a) for a in argv], capture_output=True, text=True)

    def readelf(self, path: Path) -> subprocess.CompletedProcess[str]:
        return self.run("readelf", "-a", "-W", path)

    def readelf_warnings(self, path: Path) -> list[str]:
        """stderr lines plus every stdout line mentioning "Warning"."""
        proc = self.readelf(path)
        lines = [line for line in proc.stdout.splitlines() if "Warning" in line]
        lines += [line for line in proc.stderr.splitlines() if line.strip()]
        if proc.returncode != 0:
            lines.append(f"readelf exited {proc.returncode}")
        return lines

    def linker_for(self, machine: int) -> str | None:
        """A linker able to `ld -r` objects of this machine, or None."""
        if machine == 62:   # EM_X86_64: the host linker
            return shutil.which("ld")
        if machine == 183:  # EM_AARCH64
            return shutil.which("aarch64-linux-gnu-ld")
        return None

    def nm(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("nm", *args, path)


@pytest.fixture(scope="session")
def binutils() -> Binutils:
    for tool in ("readelf", "nm", "ld"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    return Binutils()
