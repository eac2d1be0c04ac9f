"""Selects the compiled table decoder, or its pure-Python twin.

KBUILDER_NO_EXTENSIONS=1 forces the pure version (the test-suite runs both).
"""

from __future__ import annotations

import os

NO_EXTENSIONS = bool(os.environ.get("KBUILDER_NO_EXTENSIONS"))

if NO_EXTENSIONS:
    from kbuilder.elf._tables_py import build_relocs, build_sections, build_symbols, decode_relas, decode_symbols
    COMPILED = False
else:
    try:
        from kbuilder.elf._tables import build_relocs, build_sections, build_symbols, decode_relas, decode_symbols  # type: ignore[no-redef]
        COMPILED = True
    except ImportError:  # not built (e.g. a source checkout without a build step)
        from kbuilder.elf._tables_py import build_relocs, build_sections, build_symbols, decode_relas, decode_symbols
        COMPILED = False

__all__ = ["COMPILED", "NO_EXTENSIONS", "build_relocs", "build_sections", "build_symbols", "decode_relas", "decode_symbols"]
