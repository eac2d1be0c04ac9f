"""The error hierarchy. Library code raises these; only the CLI turns them
into one line on stderr and an exit code (see docs/cli.md for the table)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1          # bad or mismatched input, a failed tool, or an internal error
EXIT_UNPATCHABLE = 2    # the change cannot be live-patched
EXIT_NO_CHANGE = 3      # no functional change: nothing was written
EXIT_USAGE = 64         # bad command line (sysexits EX_USAGE); click's own 2 would collide


class KbuilderError(Exception):
    """A failure the user can act on. `path` names the file it is about."""

    exit_code = EXIT_ERROR
    kind = "error"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(KbuilderError):
    """An input file is missing, unreadable or not what the command needs."""

    kind = "bad-input"


class ElfFormatError(InputError):
    """Not a (supported) ELF64 little-endian relocatable object, or corrupt."""

    kind = "bad-elf"


class MismatchError(InputError):
    """The original and patched objects do not belong together."""

    kind = "mismatched-pair"


class ToolchainError(KbuilderError):
    """An external tool (make, gcc, ld, qemu) failed."""

    kind = "toolchain"


class NoChangeError(KbuilderError):
    exit_code = EXIT_NO_CHANGE
    kind = "no-change"


class UnpatchableError(KbuilderError):
    """The change cannot be live-patched; `reasons` lists every cause."""

    exit_code = EXIT_UNPATCHABLE
    kind = "unpatchable"

    def __init__(self, reasons: list[str], *, path: str | None = None) -> None:
        super().__init__("; ".join(reasons) or "unpatchable change", path=path)
        self.reasons = reasons
