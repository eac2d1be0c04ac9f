"""The refusals of the repository and its clients.

Each is a `KbuilderError` (exit 1) whose message is one line starting with
the name of the refusal, so a log line says what went wrong before it says
where: `bad signature: ...`, `unknown key: ...`, `expired index: ...`,
`index rollback: ...`, `hash mismatch: ...`. The agent adds its own
(kbuilder.agent.errors) in the same style.
"""

from __future__ import annotations

from kbuilder.errors import KbuilderError


class RepositoryError(KbuilderError):
    """A repository that cannot be read or written (missing, malformed,
    locked, unreachable). The message names the file or URL."""

    kind = "repository"


class Refusal(RepositoryError):
    """Data that was read but must not be trusted. `label` starts the
    message."""

    kind = "refused"
    label = "refused"

    def __init__(self, detail: str, *, path: str | None = None) -> None:
        super().__init__(f"{self.label}: {detail}", path=None)
        self.detail = detail
        self.where = path

    def __str__(self) -> str:
        # The label comes first, then where, then the detail: one line.
        if self.where:
            return f"{self.label}: {self.where}: {self.detail}"
        return self.message


class BadSignature(Refusal):
    kind = "bad-signature"
    label = "bad signature"


class UnknownKey(Refusal):
    kind = "unknown-key"
    label = "unknown key"


class ExpiredIndex(Refusal):
    kind = "expired-index"
    label = "expired index"


class IndexRollback(Refusal):
    kind = "index-rollback"
    label = "index rollback"


class HashMismatch(Refusal):
    kind = "hash-mismatch"
    label = "hash mismatch"


class MalformedIndex(Refusal):
    kind = "malformed-index"
    label = "malformed index"


class PromotionRefused(Refusal):
    kind = "promotion-refused"
    label = "promotion refused"
