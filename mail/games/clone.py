"""The cloned policy: a classifier over the legal moves, trained by cross-entropy on logged expert moves.

Both explore-then-clone and BC end here; they differ only in the data they log. The
network is an MLP on the flattened observation planes; its logits of illegal moves are
set to ``-inf`` before the softmax, in training and in play, so the policy gives them
probability exactly 0 and can never pick one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.validation import check_positive, check_positive_int, check_seed
from mail.games.common import Game, QueryLog, sample_rows, single_or_batch, split_observation


@dataclass(frozen=True)
class CloneConfig:
    """Settings of the classifier and its training (the same for explore-then-clone and BC).

    Parameters
    ----------
    hidden:
        Widths of the ReLU hidden layers.
    learning_rate:
        Adam's step size.
    steps:
        Gradient steps, whatever the dataset size (minibatches drawn with replacement):
        small datasets are fitted to the end, large ones seen for several epochs.
    batch_size:
        Minibatch size.
    """

    hidden: tuple[int, ...] = (128, 128)
    learning_rate: float = 3e-3
    steps: int = 3000
    batch_size: int = 256

    def __post_init__(self) -> None:
        for width in self.hidden:
            check_positive_int(width, "hidden width")
        check_positive(self.learning_rate, "learning_rate")
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")


def mlp(in_features: int, hidden: tuple[int, ...], out_features: int) -> nn.Sequential:
    """Linear layers with ReLU between them: ``in -> hidden... -> out``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


def masked_log_softmax(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the legal moves only (``masks`` true); illegal moves get ``-inf``."""
    return torch.log_softmax(logits.masked_fill(~masks, -torch.inf), dim=-1)


def as_tensors(obs, game: Game) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Flattened float planes ``(n, size)`` and boolean masks ``(n, A)`` of an observation dict (or a batch).

    Raises ``ValueError`` if some observation has no legal move (the game is over there).
    """
    planes, masks, single = split_observation(obs, game)
    if not masks.any(axis=1).all():
        raise ValueError("an observation has no legal move (the game is over there, or it is not the mover's)")
    return (torch.from_numpy(planes.reshape(len(planes), -1).astype(np.float32)),
            torch.from_numpy(masks.astype(bool)), single)


class ClonedPolicy:
    """A masked classifier as a :class:`~agents.interface.Policy` over PettingZoo observation dicts.

    Parameters
    ----------
    network:
        Maps flattened planes ``(n, size)`` to logits ``(n, A)``.
    game:
        The game it plays.
    """

    def __init__(self, network: nn.Module, game: Game) -> None:
        self.network = network
        self.game = game

    def _log_probs(self, obs) -> tuple[torch.Tensor, bool]:
        planes, masks, single = as_tensors(obs, self.game)
        with torch.no_grad():
            return masked_log_softmax(self.network(planes), masks), single

    def probabilities(self, obs) -> np.ndarray:
        """Move probabilities ``(A,)`` for one observation dict, ``(n, A)`` for a batch (0 on illegal moves)."""
        log_probs, single = self._log_probs(obs)
        return single_or_batch(log_probs.exp().double().numpy(), single)

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """A legal move per observation: the most probable if ``deterministic``, else a draw."""
        log_probs, single = self._log_probs(obs)
        if deterministic:
            moves = log_probs.argmax(1).numpy()  # -inf never wins while a legal move exists
        else:
            moves = sample_rows(log_probs.exp().double().numpy(), np.random.default_rng() if rng is None else rng)
        return single_or_batch(moves, single)

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs, actions) -> np.ndarray:
        """``log pi(a | s)``; ``-inf`` for an illegal move."""
        log_probs, single = self._log_probs(obs)
        actions = torch.as_tensor(np.array(np.broadcast_to(np.asarray(actions, dtype=np.int64), (len(log_probs),))))
        chosen = log_probs.gather(1, actions[:, None])[:, 0]
        return single_or_batch(chosen.double().numpy(), single)


@dataclass
class CloneResult:
    """What explore-then-clone and BC return.

    Attributes
    ----------
    policy:
        The cloned policy.
    log:
        Every expert answer the algorithm logged (one per query).
    queries:
        Expert queries spent (the oracle's count).
    games:
        Games started (self-play games for BC, exploration episodes for explore-then-clone).
    info:
        Algorithm-specific numbers (e.g. the explorer's bonus switches).
    """

    policy: ClonedPolicy
    log: QueryLog
    queries: int
    games: int
    info: dict


def fit_clone(log: QueryLog, config: CloneConfig = CloneConfig(), seed: int | None = 0) -> ClonedPolicy:
    """Train a masked classifier on the logged (observation, legal mask, expert move) triples.

    Parameters
    ----------
    log:
        The expert's answers (at least one).
    config:
        Network and training settings.
    seed:
        Seeds the initialisation and the minibatches.
    """
    if len(log) == 0:
        raise ValueError("no expert data to clone: the query budget bought no query")
    game = log.game
    seed = check_seed(seed) or 0
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # nn.Linear initialises from the global generator: seed it, then restore it
        torch.manual_seed(seed)
        network = mlp(game.observation_size, config.hidden, game.num_actions)
    planes, masks, moves = log.arrays()
    planes = torch.from_numpy(planes.reshape(len(planes), -1).astype(np.float32))
    masks, moves = torch.from_numpy(masks.astype(bool)), torch.from_numpy(moves)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    # Cosine decay to 0: large steps first, then a fine fit of the (often conflicting, stochastic) labels.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    for _ in range(config.steps):
        batch = torch.randint(len(moves), (min(config.batch_size, len(moves)),), generator=generator)
        log_probs = masked_log_softmax(network(planes[batch]), masks[batch])
        loss = -log_probs.gather(1, moves[batch, None]).mean()  # the expert's move is always legal
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    network.eval()
    return ClonedPolicy(network, game)
