"""What every MAIL algorithm returns: the reported policy profiles and a logged history."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.interface import PolicyProfile

#: The profiles every algorithm reports: the last iterate, the per-state average of
#: the iterates, and one iterate drawn uniformly at random (what the theory covers).
REPORTED = ("last", "average", "sampled")


@dataclass
class MailHistory:
    """Logged points of a run; queries are totals over players, and ``gap_*`` the exact
    Nash gap of each reported profile at that point."""

    iteration: list[int] = field(default_factory=list)
    expert_queries: list[int] = field(default_factory=list)
    oracle_calls: list[int] = field(default_factory=list)
    simulator_steps: list[int] = field(default_factory=list)
    gap_last: list[float] = field(default_factory=list)
    gap_average: list[float] = field(default_factory=list)
    gap_sampled: list[float] = field(default_factory=list)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in vars(self).items()}


@dataclass(frozen=True)
class MailResult:
    """The reported profiles (:data:`REPORTED`) and the history of a run."""

    last: PolicyProfile
    average: PolicyProfile
    sampled: PolicyProfile
    history: MailHistory

    @property
    def policies(self) -> PolicyProfile:
        """The uniformly sampled iterate: the output the guarantees are about."""
        return self.sampled
