"""Selects the compiled relocation walker, or its pure-Python twin
(KBUILDER_NO_EXTENSIONS=1 forces the pure one)."""

from __future__ import annotations

from kbuilder.elf.tables import NO_EXTENSIONS

if NO_EXTENSIONS:
    from kbuilder.compare._fastcmp_py import next_suspect, retarget_bundled
    COMPILED = False
else:
    try:
        from kbuilder.compare._fastcmp import next_suspect, retarget_bundled  # type: ignore[no-redef]
        COMPILED = True
    except ImportError:
        from kbuilder.compare._fastcmp_py import next_suspect, retarget_bundled
        COMPILED = False

__all__ = ["COMPILED", "next_suspect", "retarget_bundled"]
