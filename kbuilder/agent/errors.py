"""The agent's refusals (one line each, named first, like the
repository's: kbuilder.repository.errors) and its operational errors."""

from __future__ import annotations

from kbuilder.errors import KbuilderError
from kbuilder.repository.errors import Refusal


class AgentError(KbuilderError):
    """Something the agent cannot do: no configuration, a module the kernel
    refused, a transition that did not finish, a busy state directory."""

    kind = "agent"


class WrongKernel(Refusal):
    kind = "wrong-kernel"
    label = "wrong kernel"


class DependencyMissing(Refusal):
    kind = "dependency-missing"
    label = "dependency missing"


class SeverityBelowPolicy(Refusal):
    kind = "severity-below-policy"
    label = "severity below policy"


class MetadataMismatch(Refusal):
    kind = "metadata-mismatch"
    label = "metadata mismatch"


class UnsignedModule(Refusal):
    kind = "unsigned-module"
    label = "unsigned module"


class StateCorrupt(AgentError):
    kind = "state-corrupt"
