#!/usr/bin/env python3
"""Measure kbuilder's speed and write docs/performance.md (`make bench`).

Everything runs in this one process except what must not: import times
(a fresh interpreter each run) and the pure-Python decoder (a child with
KBUILDER_NO_EXTENSIONS=1, since the choice is made at import).  Each
benchmark runs RUNS times and reports median, min and max wall-clock time.
Nothing here asserts on timing: the numbers are for reading, and the
goals are compared in the written page.

Benchmarks are plain functions grouped in SECTIONS.  Each returns a list
of `Result`s or raises `Skip(reason)`; a skipped benchmark is listed with
its reason.  The "diff" section times `kbuilder.diff.diff_objects` over the
x86_64 pairs once that function exists.

Usage: tools/bench.py [--runs N] [--output docs/performance.md] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "conformance" / "kpatch-unit"
DEFAULT_OUTPUT = REPO / "docs" / "performance.md"
LARGEST = "unique-id-pr-1314"
DEFAULT_RUNS = 7

# Figures quoted by the project's issues, for comparison.  (what, figure)
REFERENCE = [
    ("pyelftools: read the largest object (unique-id-pr-1314.ORIG.o)", "0.24 s"),
    ("pyelftools: `import elftools`", "0.03 s"),
    ("LIEF 1.0: parse the largest object", "0.024 s"),
    ("LIEF 1.0: `import lief`", "0.25 s"),
    ("kpatch create-diff-object (C): 55 x86_64 cases summed, one process per pair", "1.39 s"),
    ("kpatch create-diff-object: median case", "6.3 ms"),
    ("kpatch create-diff-object: unique-id-pr-1314", "477 ms"),
    ("recompiling the one changed kernel object (this machine kind)", "about 1 s"),
    ("building a livepatch module with kbuild (this machine kind)", "about 1 s"),
]

# kbuilder's goals: (what, limit in seconds, name of the Result measuring it)
GOALS = [
    ("diff the whole visible x86_64 set in one process", 0.6, "diff all x86_64 pairs"),
    (f"diff {LARGEST}", 0.150, f"diff {LARGEST}"),
    ("kbuild build of a one-file patch, warm cache", 10.0, "kbuild build, one-file patch, warm cache (total)"),
]


class Skip(Exception):
    """A benchmark that cannot run here (missing corpus, missing feature)."""


@dataclass
class Result:
    name: str
    times: list[float]          # seconds, one per run
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class Context:
    runs: int
    corpus: Path
    facts: dict[str, str] = field(default_factory=dict)   # for the page's prose

    def objects(self, arch: str) -> list[Path]:
        return sorted((self.corpus / arch).glob("*.o"))

    def largest(self) -> Path:
        path = self.corpus / "x86_64" / f"{LARGEST}.ORIG.o"
        if not path.is_file():
            raise Skip(f"{path} not found")
        return path

    def require_corpus(self) -> None:
        if not (self.corpus / "x86_64").is_dir():
            raise Skip(f"conformance corpus not found at {self.corpus}")


def timed(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> list[float]:
    """Wall-clock seconds of `fn()` over `runs` runs, after one warm-up run that is not
    counted; `setup()` runs untimed before each.  What `fn` returns is kept until the
    next run's clock has stopped: freeing it is not counted, and the heap does not
    shrink and grow again between runs (which otherwise adds a noisy few ms per read)."""
    times = []
    kept = None
    for n in range(runs + 1):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        if n:
            times.append(elapsed)
        kept, result = result, None
    del kept
    return times


def child_python(code: str, *args: str, env: dict[str, str] | None = None, inherit: bool = True) -> str:
    """Run `code` in a fresh interpreter (this one's executable) and return its stdout.
    `env` is added to this process's environment, or replaces it if not `inherit`."""
    full_env = {**os.environ, **(env or {})} if inherit else dict(env or {})
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child python failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def relocation_count(obj) -> int:  # type: ignore[no-untyped-def]
    from kbuilder.elf.constants import SHT

    return sum(len(sec.relocs) for sec in obj.sections if sec.type == SHT.RELA)


# ---- read section ----------------------------------------------------------

_IMPORT_CODE = """
import sys, time
start = time.perf_counter()
__import__(sys.argv[1])
print(time.perf_counter() - start)
"""


def bench_import(ctx: Context) -> list[Result]:
    """Import time of kbuilder.elf (and of pyelftools' ELFFile), fresh interpreter per run."""
    results = []
    for module, label in (("kbuilder.elf", "import kbuilder.elf"),
                          ("elftools.elf.elffile", "import elftools.elf.elffile (pyelftools)")):
        times = [float(child_python(_IMPORT_CODE, module)) for _ in range(ctx.runs)]
        results.append(Result(label, times, "fresh interpreter each run; time of the import statement only"))
    return results


def bench_read_corpus(ctx: Context) -> list[Result]:
    """Read every visible corpus object with read_object, per architecture and all together."""
    ctx.require_corpus()
    from kbuilder.elf import read_object

    results = []
    everything: list[Path] = []
    for arch in ("x86_64", "aarch64"):
        paths = ctx.objects(arch)
        if not paths:
            continue
        everything += paths
        size = sum(p.stat().st_size for p in paths)
        times = timed(lambda paths=paths: [read_object(p) for p in paths], ctx.runs)
        results.append(Result(f"read all {arch} objects", times,
                              f"{len(paths)} objects, {size / 1e6:.1f} MB"))
    size = sum(p.stat().st_size for p in everything)
    times = timed(lambda: [read_object(p) for p in everything], ctx.runs)
    results.append(Result("read all corpus objects", times, f"{len(everything)} objects, {size / 1e6:.1f} MB"))
    return results


def bench_read_largest(ctx: Context) -> list[Result]:
    """Read the largest object; record its section/symbol/relocation counts."""
    from kbuilder.elf import read_object

    path = ctx.largest()
    obj = read_object(path)
    counts = (f"{len(obj.sections) + 1} sections, {len(obj.symbols)} symbols, "
              f"{relocation_count(obj)} relocations, {path.stat().st_size / 1e6:.1f} MB")
    ctx.facts["largest_counts"] = counts
    del obj
    times = timed(lambda: read_object(path), ctx.runs)
    return [Result(f"read {LARGEST}.ORIG.o", times, counts)]


def bench_serialize(ctx: Context) -> list[Result]:
    """Serialize the largest object (a freshly read copy each run)."""
    from kbuilder.elf import read_object, serialize

    path = ctx.largest()
    holder: dict[str, object] = {}

    def setup() -> None:
        holder["obj"] = read_object(path)

    times = timed(lambda: serialize(holder["obj"]), ctx.runs, setup)  # type: ignore[arg-type]
    size = len(serialize(holder["obj"]))  # type: ignore[arg-type]
    return [Result(f"serialize {LARGEST}", times, f"{size:,} bytes out; a freshly read object each run")]


_CHILD_READ_CODE = """
import json, sys, gc, time
from kbuilder.elf import read_object, tables
want_compiled = sys.argv[3] == "compiled"
assert tables.COMPILED == want_compiled, f"decoder is not the {sys.argv[3]} one"
path, runs = sys.argv[1], int(sys.argv[2])
kept = read_object(path)  # warm-up, not counted
times = []
for _ in range(runs):
    gc.collect()
    start = time.perf_counter()
    obj = read_object(path)
    times.append(time.perf_counter() - start)
    kept, obj = obj, None  # as in timed(): the previous result is freed off the clock
print(json.dumps(times))
"""


def bench_read_pure(ctx: Context) -> list[Result]:
    """The largest object read with the pure-Python table decoder against the compiled
    one, each in a child process started the same way (KBUILDER_NO_EXTENSIONS=1 for
    the pure one) so that the two rows compare like with like."""
    path = ctx.largest()
    results = []
    for variant, env in (("compiled", {}), ("pure-Python", {"KBUILDER_NO_EXTENSIONS": "1"})):
        full_env = {**os.environ, **env}
        if not env:
            full_env.pop("KBUILDER_NO_EXTENSIONS", None)
        out = child_python(_CHILD_READ_CODE, str(path), str(ctx.runs),
                           "compiled" if not env else "pure", env=full_env, inherit=False)
        results.append(Result(f"read {LARGEST}.ORIG.o, {variant} decoder, child process", json.loads(out),
                              f"{'KBUILDER_NO_EXTENSIONS=1; ' if env else ''}one warm-up read not counted"))
    return results


def bench_pyelftools(ctx: Context) -> list[Result]:
    """pyelftools walking every section, symbol and relocation of the largest object (baseline)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    path = ctx.largest()
    counts: dict[str, int] = {}

    def walk() -> None:
        nsec = nsym = nrel = 0
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                nsec += 1
                _ = sec.name, sec.header
                if isinstance(sec, SymbolTableSection):
                    for sym in sec.iter_symbols():
                        nsym += 1
                        _ = sym.name, sym.entry
                elif isinstance(sec, RelocationSection):
                    for rel in sec.iter_relocations():
                        nrel += 1
                        _ = rel.entry
        counts.update(sections=nsec, symbols=nsym, relocations=nrel)

    times = timed(walk, ctx.runs)
    import elftools

    return [Result(f"pyelftools {elftools.__version__}: walk {LARGEST}.ORIG.o", times,
                   f"{counts['sections']} sections, {counts['symbols']} symbols, "
                   f"{counts['relocations']} relocations (library baseline)")]


# ---- diff section ----------------------------------------------------------

def x86_64_pairs(ctx: Context) -> list[tuple[str, Path, Path]]:
    pairs = []
    for orig in ctx.objects("x86_64"):
        if not orig.name.endswith(".ORIG.o"):
            continue
        name = orig.name[:-len(".ORIG.o")]
        for suffix in (".PATCHED.o", ".PATCHED.FAIL.o"):
            patched = orig.with_name(name + suffix)
            if patched.is_file():
                pairs.append((name, orig, patched))
                break
    return pairs


def reference_verdicts(ctx: Context) -> dict[str, dict]:
    """expectations.json of the corpus (kpatch's verdict per case), keyed "arch/name"."""
    path = ctx.corpus / "expectations.json"
    try:
        data: dict[str, dict] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def make_diff_call() -> Callable[[Path, Path, dict], object]:
    """A function diffing one pair of paths the way the unit tests of kpatch run its
    differ: the original's own symbol table as the parent's (objname vmlinux), no
    exported symbols, the case's special-section entry sizes. Written against
    kbuilder.diff as it stands (`diff_objects(orig, patched, DiffOptions)`)."""
    try:
        from kbuilder.diff import diff_objects
    except ImportError:
        raise Skip("kbuilder.diff.diff_objects is not importable yet (kbuild diff in progress)") from None
    from kbuilder.elf import read_object

    try:
        from kbuilder.diff import DiffOptions
    except ImportError:
        return lambda orig, patched, case: diff_objects(read_object(orig), read_object(patched))
    try:
        from kbuilder.emit.parent import ParentSymbols
    except ImportError:
        ParentSymbols = None  # noqa: N806
    import dataclasses

    names = {f.name for f in dataclasses.fields(DiffOptions)}

    def call(orig: Path, patched: Path, case: dict) -> object:
        kwargs: dict[str, object] = {}
        if "struct_sizes" in names:
            kwargs["struct_sizes"] = dict(case.get("struct_sizes", {}))
        if "exports" in names:
            kwargs["exports"] = {}
        if "parent" in names and ParentSymbols is not None:
            kwargs["parent"] = ParentSymbols.load(orig)
        return diff_objects(read_object(orig), read_object(patched), DiffOptions(**kwargs))

    return call


def bench_diff(ctx: Context) -> list[Result]:
    """Diff every x86_64 pair in this process, and write each output object to bytes.

    Reading, diffing and serializing are all inside the timed region, as in
    create-diff-object's figures. A verdict of "unpatchable" or "no-change"
    (returned, or raised as a KbuilderError) is an outcome, not a failure; any
    other exception is counted as a crash and the goals are then not judged.
    """
    diff = make_diff_call()
    ctx.require_corpus()
    from kbuilder.elf import serialize
    from kbuilder.errors import KbuilderError

    pairs = x86_64_pairs(ctx)
    if not pairs:
        raise Skip("no x86_64 pairs in the corpus")
    reference = reference_verdicts(ctx)
    per_pair: dict[str, list[float]] = {name: [] for name, _, _ in pairs}
    outcomes: dict[str, str] = {}
    totals = []
    for _ in range(ctx.runs):
        total = 0.0
        for name, orig, patched in pairs:
            case = reference.get(f"x86_64/{name}", {})
            gc.collect()
            kept: list[object] = []   # freed after the clock stops
            start = time.perf_counter()
            try:
                result = diff(orig, patched, case)
                kept.append(result)
                output = getattr(result, "output", None)
                if output is not None:
                    kept.append(serialize(output))
                outcome = str(getattr(result, "status", "ok"))
            except KbuilderError as exc:
                outcome = exc.kind
            except Exception as exc:  # report, keep measuring the rest
                outcome = f"crash: {type(exc).__name__}: {exc}"[:160]
            elapsed = time.perf_counter() - start
            del kept
            per_pair[name].append(elapsed)
            outcomes[name] = outcome
            total += elapsed
        totals.append(total)

    medians = {name: statistics.median(t) for name, t in per_pair.items()}
    tally: dict[str, int] = {}
    for outcome in outcomes.values():
        key = "crash" if outcome.startswith("crash") else outcome
        tally[key] = tally.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
    judged = [n for n in outcomes if f"x86_64/{n}" in reference]
    agree = sum(1 for n in judged if outcomes[n] == reference[f"x86_64/{n}"].get("status")
                or (reference[f"x86_64/{n}"].get("expect_failure") and outcomes[n] in ("unpatchable", "no-change")))
    if judged:
        summary += f"; verdict as kpatch's on {agree}/{len(judged)}"
    slowest = sorted(medians, key=medians.__getitem__, reverse=True)[:3]
    results = [Result("diff all x86_64 pairs", totals,
                      f"{len(pairs)} pairs, read + diff + serialize; median pair "
                      f"{fmt(statistics.median(medians.values()))}; slowest: "
                      + ", ".join(f"{n} {fmt(medians[n])}" for n in slowest)
                      + f"; outcomes: {summary}")]
    if LARGEST in per_pair:
        results.append(Result(f"diff {LARGEST}", per_pair[LARGEST],
                              f"read + diff + serialize; outcome: {outcomes[LARGEST]}"))
    crashed = sorted(n for n, o in outcomes.items() if o.startswith("crash"))
    if crashed:
        ctx.facts["diff_crashes"] = "; ".join(f"{n} ({outcomes[n][len('crash: '):]})" for n in crashed)
        ctx.facts["diff_crash_count"] = str(len(crashed))
    return results


def bench_build_latency(ctx: Context) -> list[Result]:
    """`kbuild build` of the bundled one-file patch on a warm cache: from the
    call to a verified .ko, with the stage breakdown. Prepares (builds once,
    then reuses) the test kernel; set KBUILDER_BENCH_NO_KERNEL=1 to skip."""
    import os
    import tempfile

    if os.environ.get("KBUILDER_BENCH_NO_KERNEL"):
        raise Skip("KBUILDER_BENCH_NO_KERNEL is set")
    try:
        from kbuilder.build import BuildOptions, build_livepatch
        from kbuilder.kernel.testkernel import prepare_test_kernel
    except ImportError as exc:
        raise Skip(f"kernel pipeline not importable: {exc}") from None
    tk = prepare_test_kernel(jobs=os.cpu_count() or 1)
    patch = Path(__file__).resolve().parent.parent / "examples" / "cmdline-string.patch"
    stages: dict[str, list[float]] = {}
    totals = []
    with tempfile.TemporaryDirectory() as out:
        opts = BuildOptions(source=tk.source, config=tk.config_file, patches=(patch,), output=Path(out))
        build_livepatch(opts, lambda _: None)  # warm-up: fills the original-build cache
        for _ in range(ctx.runs):
            start = time.perf_counter()
            result = build_livepatch(opts, lambda _: None)
            totals.append(time.perf_counter() - start)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
    breakdown = ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in stages.items())
    results = [Result("kbuild build, one-file patch, warm cache (total)", totals, breakdown)]
    for stage, times in stages.items():
        results.append(Result(f"kbuild build stage: {stage}", times))
    return results


SECTIONS: list[tuple[str, list[Callable[[Context], list[Result]]]]] = [
    ("read", [bench_import, bench_read_corpus, bench_read_largest, bench_serialize, bench_read_pure,
              bench_pyelftools]),
    ("diff", [bench_diff]),
    ("build", [bench_build_latency]),
]


# ---- machine facts ---------------------------------------------------------

def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not found"
    return out.splitlines()[0].strip() if out.strip() else "unknown"


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):   # "key : value" (/proc) or KEY="value" (os-release)
                sep = "=" if key.endswith("=") else ":"
                return line.split(sep, 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


def extension_state(in_use: bool) -> str:
    import importlib.util

    spec = importlib.util.find_spec("kbuilder.elf._tables")
    if spec is None or not spec.origin or spec.origin.endswith(".pyx"):
        return "NOT compiled: the pure-Python decoder is used throughout"
    name = Path(spec.origin).name
    return f"compiled ({name}), in use" if in_use else f"compiled ({name}), but disabled in this process"


def machine() -> list[tuple[str, str]]:
    from kbuilder.elf import tables

    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    memory = f"{int(mem_kb.split()[0]) / 2**20:.1f} GiB" if mem_kb else "unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    import elftools

    return [
        ("CPU", _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"),
        ("cores", f"{usable} usable ({os.cpu_count()} online)"),
        ("memory", memory),
        ("OS", f"{_proc_field('/etc/os-release', 'PRETTY_NAME=') or platform.system()}, "
               f"kernel {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("gcc", _first_line(["gcc", "--version"])),
        ("Cython extension (kbuilder.elf._tables)", extension_state(tables.COMPILED)),
        ("pyelftools", elftools.__version__),
        ("KBUILDER_NO_EXTENSIONS", os.environ.get("KBUILDER_NO_EXTENSIONS") or "unset"),
        ("checkout", f"{commit}{' with uncommitted changes' if dirty else ''}"),
    ]


# ---- output ----------------------------------------------------------------

def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1e3:.0f} ms"
    if seconds >= 0.001:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.2f} ms"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def result_rows(results: list[Result]) -> list[list[str]]:
    return [[r.name, fmt(r.median), fmt(min(r.times)), fmt(max(r.times)), str(len(r.times)), r.note]
            for r in results]


RESULT_HEADER = ["benchmark", "median", "min", "max", "runs", "notes"]


def text_table(results: list[Result]) -> str:
    rows = [RESULT_HEADER[:5]] + [row[:5] for row in result_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                             for i, cell in enumerate(row)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render(when: str, facts: list[tuple[str, str]], sections: dict[str, list[Result]],
           skipped: dict[str, list[str]], ctx: Context) -> str:
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` (`tools/bench.py`) on {when}. This page is generated: run",
        "`make bench` again rather than editing it. Times are wall clock, in one process unless",
        f"a note says otherwise, over {ctx.runs} runs each after one uncounted warm-up run (none for",
        "imports and the diff); the corpus is `../shared/conformance/kpatch-unit` (kpatch's",
        "unit-test objects, read in place). The machine is shared with other work, so single",
        "runs vary by tens of percent: compare medians, and treat small differences as noise.",
        "",
        "## Machine",
        "",
        *markdown_table(["", ""], [[k, v] for k, v in facts]),
    ]
    for section, results in sections.items():
        lines += ["", f"## {section.capitalize()}", ""]
        if results:
            lines += markdown_table(RESULT_HEADER, result_rows(results)) + [""]
        for reason in skipped.get(section, []):
            lines += [f"Not measured: {reason}.", ""]
        if lines[-1] == "":
            lines.pop()
    if "diff_crashes" in ctx.facts:
        lines += ["", f"Pairs on which the differ raised an unexpected exception: {ctx.facts['diff_crashes']}."]

    all_results = {r.name: r for results in sections.values() for r in results}
    lines += ["", "## Goals", ""]
    goal_rows = []
    crashes = ctx.facts.get("diff_crash_count")
    for what, limit, key in GOALS:
        r = all_results.get(key)
        measured = fmt(r.median) if r else "not measured yet"
        if r is None:
            verdict = "-"
        elif crashes:
            verdict = f"not judged: the differ crashed on {crashes} pairs"
        else:
            verdict = "met" if r.median < limit else "NOT met"
        goal_rows.append([what, f"under {fmt(limit)}", measured, verdict])
    lines += markdown_table(["goal", "target", "measured (median)", "status"], goal_rows)

    lines += [
        "",
        "## Reference figures",
        "",
        "Quoted by the project's issues, measured on a machine of this kind; not re-measured here.",
        "",
        *markdown_table(["what", "figure"], [list(row) for row in REFERENCE]),
        "",
        "The kpatch figures cover its 55 x86_64 unit cases, one process per pair, and include",
        "process start; the corpus visible here holds "
        f"{len(x86_64_pairs(ctx)) if (ctx.corpus / 'x86_64').is_dir() else 'none'} of those pairs.",
    ]
    if "largest_counts" in ctx.facts:
        lines += [f"The largest object, `{LARGEST}.ORIG.o`, has {ctx.facts['largest_counts']} "
                  "(as kbuilder counts them, the null section included)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per benchmark (default 7)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="page to write")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="kpatch-unit corpus directory")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    ctx = Context(runs=args.runs, corpus=args.corpus.resolve())
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = machine()
    sections: dict[str, list[Result]] = {}
    skipped: dict[str, list[str]] = {}
    for section, benches in SECTIONS:
        sections[section] = []
        for bench in benches:
            label = bench.__name__.removeprefix("bench_")
            print(f"bench: {section}/{label} ...", file=sys.stderr, flush=True)
            try:
                sections[section] += bench(ctx)
            except Skip as exc:
                skipped.setdefault(section, []).append(f"{label}: {exc}")
                print(f"bench: {section}/{label} skipped: {exc}", file=sys.stderr)

    for key, value in facts:
        print(f"{key + ':':<42} {value}")
    for section, results in sections.items():
        print(f"\n[{section}]")
        if results:
            print(text_table(results))
        for reason in skipped.get(section, []):
            print(f"skipped: {reason}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(when, facts, sections, skipped, ctx))
    print(f"\nwrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
