"""What the rest of the suite relies on being present. These fail (rather
than skip) where a silent skip would hide lost coverage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest


@pytest.mark.conformance
def test_conformance_corpus_is_present(require_corpus: Callable[[], Path]) -> None:
    corpus = require_corpus()   # skips locally, fails in CI, when ../shared is missing
    expectations = json.loads((corpus / "expectations.json").read_text())
    for key, record in expectations.items():
        arch = key.split("/")[0]
        assert (corpus / arch / record["orig"]).is_file(), key
        assert (corpus / arch / record["patched"]).is_file(), key


@pytest.mark.parametrize("tool", ["gcc", "readelf", "nm", "ld"])
def test_toolchain_is_installed(tool: str) -> None:
    assert shutil.which(tool), f"{tool} is needed by the test-suite"


def test_compiled_tables_extension_is_built() -> None:
    """The compiled decoder is the production path; the suite tests both."""
    from kbuilder.elf import tables

    if tables.NO_EXTENSIONS:
        pytest.skip("KBUILDER_NO_EXTENSIONS is set")
    assert tables.COMPILED, "kbuilder.elf._tables is not built: run `pip install -e .`"
