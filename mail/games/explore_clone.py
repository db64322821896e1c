"""Explore-then-clone: a reward-free DQN explorer with an elliptical bonus, the expert queried everywhere it goes.

Interactive MAIL's point is to ask the expert where a deviating player would take the
game, which expert self-play never shows. Here, for each seat in turn (the budget split
in two halves):

1. **Explore.** That seat is the *deviator*, played by a DQN whose only reward is the
   exploration bonus ``beta ||phi(s, a)||_{Lambda^-1}``; the other seat is the expert,
   playing live. ``phi(s, a) = e_a (x) phi(s)`` with ``phi(s)`` the Q-network's last hidden
   layer (normalised to unit length, so ``beta`` and ``lambda`` mean the same whatever the
   activations' scale), which makes ``Lambda = lambda I + sum phi phi^T`` block-diagonal,
   one ``d x d`` block per action (:class:`EllipticalBonus`). ``Lambda`` grows with every
   move the explorer makes; the inverse that the bonus uses is recomputed only when
   ``log det Lambda`` has grown by ``log 2`` since the last recomputation ("rare switching"),
   so the reward the DQN chases changes a logarithmic number of times.
2. **Query.** At every position the game passes through, the expert is asked for its
   move, at the deviator's turns and at its own (there the answer is also the move it
   plays, so a position costs one query either way); each answer is logged as
   (observation, legal mask, expert move).
3. **Clone.** A masked classifier (:mod:`mail.games.clone`) is fitted to the log.

DQN details (decided here). The reward of a move is its bonus, which is known, so the
network learns only what comes after it: the explorer's value of a move is
``U(s, a) = bonus(s, a) + C(s, a)`` with ``C(s, a) <- gamma * max_{a' legal} U'(s', a')`` (the
same Bellman equation as a DQN on the bonus reward, ``U = bonus + gamma max U'``), so a
switch of the bonus changes the explorer's choices at once instead of after the network
has relearned it. The explorer plays the legal move of largest ``U``. One gradient step per
explorer move once 64 transitions are stored, Huber loss, Adam, hard target-network copies
every 100 steps; the bonus in the targets is recomputed at every update from the current
features and the current (rarely switched) inverse; illegal moves are masked out of the
greedy choice and of the max in the targets; a move that ends the game has no next value
(terminal states are masked in the targets, which the authors' public code forgot); the
explorer's transition runs from one of its turns to its next one, the expert's reply in
between. Discount 0.5: in a pilot on Tic-Tac-Toe (seed 0, 1e4 queries) the share of the
positions that matter for exploitability which got queried fell as the discount rose
(0.58 at 0, 0.53 at 0.5, 0.47 at 0.9; a uniformly random deviator: 0.57), so the explorer
keeps a short horizon while still bootstrapping.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.interface import Policy
from envs.validation import (check_discount, check_non_negative, check_non_negative_int, check_positive,
                             check_positive_int, check_probability, check_seed)
from mail.games.clone import CloneConfig, CloneResult, as_tensors, fit_clone
from mail.games.common import Game, GameOracle, QueryLog, split_observation


@dataclass(frozen=True)
class ExploreConfig:
    """Settings of the explorer.

    Parameters
    ----------
    beta:
        Bonus scale (the authors' default 10).
    lam:
        Ridge term lambda of ``Lambda`` (the authors' default 0.1).
    gamma:
        Discount of the explorer's bonus returns.
    hidden:
        Widths of the Q-network's ReLU hidden layers; the last is the feature size ``d``.
    learning_rate:
        Adam's step size.
    batch_size:
        Minibatch of stored transitions per gradient step.
    learning_starts:
        Transitions stored before the first gradient step.
    target_update:
        Gradient steps between copies of the online network into the target network.
    switch_log_det:
        Growth of ``log det Lambda`` that triggers a recomputation of the inverse (``log 2``;
        0 recomputes it at every update).
    epsilon:
        Probability of a uniformly random legal move instead of the greedy one (0: the bonus alone explores).
    updates_per_move:
        Gradient steps per explorer move.
    """

    beta: float = 10.0
    lam: float = 0.1
    gamma: float = 0.5
    hidden: tuple[int, ...] = (128, 64)
    learning_rate: float = 5e-4
    batch_size: int = 64
    learning_starts: int = 64
    target_update: int = 100
    switch_log_det: float = math.log(2)
    epsilon: float = 0.0
    updates_per_move: int = 1

    def __post_init__(self) -> None:
        check_positive(self.beta, "beta")
        check_positive(self.lam, "lam")
        check_discount(self.gamma, "gamma")
        if not self.hidden:
            raise ValueError("the Q-network needs at least one hidden layer (its features)")
        for width in self.hidden:
            check_positive_int(width, "hidden width")
        check_positive(self.learning_rate, "learning_rate")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.learning_starts, "learning_starts")
        check_positive_int(self.target_update, "target_update")
        check_non_negative(self.switch_log_det, "switch_log_det")
        check_probability(self.epsilon, "epsilon")
        check_positive_int(self.updates_per_move, "updates_per_move")


# ------------------------------------------------------------------ the bonus
#: Rounding allowance of the switching rule (the incremental log det may fall short of an exact doubling by ~1e-16).
SWITCH_TOLERANCE = 1e-9


class EllipticalBonus:
    """``beta * sqrt(phi(s)^T Lambda_a^-1 phi(s))``: the elliptical bonus of ``phi(s, a) = e_a (x) phi(s)``.

    With these features ``Lambda = lambda I + sum_t phi(s_t, a_t) phi(s_t, a_t)^T`` is
    block-diagonal, block ``a`` being ``lambda I + sum_{t: a_t = a} phi(s_t) phi(s_t)^T``, and
    ``||phi(s, a)||_{Lambda^-1}^2 = phi(s)^T Lambda_a^-1 phi(s)``. With one-hot state features
    the bonus is ``beta / sqrt(lambda + N(s, a))``, the count bonus.

    ``log det Lambda`` is tracked exactly at ``O(d^2)`` per update (the matrix determinant
    lemma, with the current inverse kept by Sherman-Morrison updates); the inverse that
    :meth:`__call__` uses is a copy taken only at a switch.

    Parameters
    ----------
    num_actions, dim:
        Number of actions and size ``d`` of ``phi(s)``.
    beta, lam:
        Bonus scale and ridge term.
    switch_log_det:
        The inverse used by :meth:`__call__` is recomputed when ``log det Lambda`` exceeds
        its value at the last recomputation by this much (rare switching).

    Attributes
    ----------
    switches:
        Recomputations of the inverse so far.
    log_det:
        ``log det Lambda`` now (the sum over the blocks).
    inverse:
        ``(A, d, d)``: the blocks of ``Lambda^-1`` as of the last switch (what the bonus uses).
    """

    def __init__(self, num_actions: int, dim: int, beta: float = 10.0, lam: float = 0.1,
                 switch_log_det: float = math.log(2)) -> None:
        self.beta, self.lam = check_positive(beta, "beta"), check_positive(lam, "lam")
        self.switch_log_det = check_non_negative(switch_log_det, "switch_log_det")
        num_actions, dim = check_positive_int(num_actions, "num_actions"), check_positive_int(dim, "dim")
        self.gram = np.tile(lam * np.eye(dim), (num_actions, 1, 1))
        self._current_inverse = np.tile(np.eye(dim) / lam, (num_actions, 1, 1))
        self.inverse = self._current_inverse.copy()
        self.log_det = float(num_actions * dim * math.log(lam))
        self._switched_at = self.log_det
        self.switches = 0

    def update(self, features: np.ndarray, actions: np.ndarray) -> bool:
        """Add ``phi(s) phi(s)^T`` to block ``a`` for each row; returns whether the inverse was recomputed."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        actions = np.atleast_1d(np.asarray(actions, dtype=np.int64))
        if features.shape != (len(actions), self.gram.shape[1]) or np.any(actions < 0) or np.any(
                actions >= len(self.gram)):
            raise ValueError(f"features must be (n, {self.gram.shape[1]}) with one action in [0, {len(self.gram)}) "
                             f"each, got {features.shape} and {actions.tolist()}")
        for phi, action in zip(features, actions):
            self.gram[action] += np.outer(phi, phi)
            inverse = self._current_inverse[action]
            projected = inverse @ phi
            gain = 1.0 + phi @ projected  # det(L + phi phi^T) = det(L) (1 + phi^T L^-1 phi)
            self.log_det += math.log(gain)
            inverse -= np.outer(projected, projected) / gain  # Sherman-Morrison
        if self.log_det < self._switched_at + self.switch_log_det - SWITCH_TOLERANCE:
            return False
        # Switch: exact inverse and log det (which also clears the rounding of the incremental updates).
        self._current_inverse = np.linalg.inv(self.gram)
        self.inverse = self._current_inverse.copy()
        self.log_det = float(np.linalg.slogdet(self.gram)[1].sum())
        self._switched_at = self.log_det
        self.switches += 1
        return True

    def __call__(self, features: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """The bonus of each (``phi(s)`` row, action) under the inverse of the last switch; with no
        ``actions``, of every action: ``(n, A)``."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if actions is None:
            squared = np.einsum("nd,ade,ne->na", features, self.inverse, features)
        else:
            actions = np.atleast_1d(np.asarray(actions, dtype=np.int64))
            squared = np.einsum("nd,nde,ne->n", features, self.inverse[actions], features)
        return self.beta * np.sqrt(np.maximum(squared, 0.0))


# ------------------------------------------------------------------ the Q-network
class QNetwork(nn.Module):
    """``Q(s, .) = W phi(s) + b``: an MLP trunk whose last hidden layer is the feature map ``phi``."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_actions: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            in_features = width
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(in_features, num_actions)

    def features(self, planes: torch.Tensor) -> torch.Tensor:
        """``phi(s)``, normalised to unit length (a zero vector stays zero)."""
        return F.normalize(self.trunk(planes), dim=-1)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(planes))


class ExplorerCritic:
    """An explorer's exploration values ``U(s, a)`` as a :class:`~agents.interface.Critic` over PettingZoo
    observation dicts (one dict or a batch)."""

    def __init__(self, explorer: "Explorer") -> None:
        self.explorer = explorer

    def q_values(self, obs, actions) -> np.ndarray:
        planes, _, single = as_tensors(obs, self.explorer.game)
        values = self.explorer.values(planes)
        actions = torch.as_tensor(np.array(np.broadcast_to(np.asarray(actions, dtype=np.int64), (len(values),))))
        chosen = values.gather(1, actions[:, None])[:, 0].double().numpy()
        return chosen[0] if single else chosen


def masked_greedy(q: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The legal move of largest Q in each row (an illegal move is never chosen while a legal one exists)."""
    return q.masked_fill(~masks, -torch.inf).argmax(dim=-1)


def td_targets(rewards: torch.Tensor, next_q: torch.Tensor, next_masks: torch.Tensor, dones: torch.Tensor,
               gamma: float) -> torch.Tensor:
    """``r + gamma * max_{a' legal} next_q(s', a')``, and just ``r`` where the move ended the game.

    The terminal mask matters: a finished game has no next position, and bootstrapping
    from whatever is stored there would credit the explorer with bonus it can never collect.
    """
    best_next = next_q.masked_fill(~next_masks, -torch.inf).max(dim=-1).values
    return rewards + gamma * torch.where(dones, torch.zeros_like(best_next), best_next)


class ReplayBuffer:
    """The explorer's transitions, from one of its turns to its next (or the end of the game)."""

    def __init__(self, capacity: int, game: Game) -> None:
        size, actions = game.observation_size, game.num_actions
        self.planes = np.zeros((capacity, size), np.float32)
        self.masks = np.zeros((capacity, actions), bool)
        self.actions = np.zeros(capacity, np.int64)
        self.next_planes = np.zeros((capacity, size), np.float32)
        self.next_masks = np.zeros((capacity, actions), bool)
        self.dones = np.zeros(capacity, bool)
        self.size = 0

    def add(self, planes, mask, action: int, next_planes, next_mask, done: bool) -> None:
        if self.size == len(self.actions):
            raise ValueError(f"the replay buffer is full ({self.size} transitions): give it a larger capacity")
        i = self.size
        self.planes[i], self.masks[i], self.actions[i] = planes, mask, action
        self.next_planes[i], self.next_masks[i], self.dones[i] = next_planes, next_mask, done
        self.size += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        rows = rng.integers(self.size, size=batch_size)
        return tuple(torch.from_numpy(array[rows]) for array in
                     (self.planes, self.actions, self.next_planes, self.next_masks, self.dones))


class Explorer:
    """The deviating seat: a DQN that maximises the elliptical bonus (and nothing else).

    Parameters
    ----------
    game:
        The game.
    config:
        Settings.
    capacity:
        Most transitions it will store (its seat's query budget is enough).
    seed:
        Seeds the network, the minibatches and the epsilon moves.
    """

    def __init__(self, game: Game, config: ExploreConfig, capacity: int, seed: int) -> None:
        self.game, self.config = game, config
        with torch.random.fork_rng():  # nn.Linear initialises from the global generator
            torch.manual_seed(seed)
            self.network = QNetwork(game.observation_size, config.hidden, game.num_actions)
        self.target = copy.deepcopy(self.network)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate)
        self.bonus = EllipticalBonus(game.num_actions, config.hidden[-1], config.beta, config.lam,
                                     config.switch_log_det)
        self.buffer = ReplayBuffer(max(capacity, 1), game)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    @property
    def critic(self) -> ExplorerCritic:
        return ExplorerCritic(self)

    def values(self, planes: torch.Tensor, network: QNetwork | None = None) -> torch.Tensor:
        """Exploration values ``U(s, .) = bonus(s, .) + C(s, .)``: the bonus of the move itself (known, computed)
        plus the network's estimate ``C`` of the discounted bonus still to come (``network``: default the
        online one)."""
        with torch.no_grad():
            bonus = self.bonus(self.network.features(planes).double().numpy())
            return torch.from_numpy(bonus).float() + (network or self.network)(planes)

    def act(self, observation: dict) -> int:
        """The legal move of largest exploration value (a random legal one with probability epsilon);
        its ``phi`` enters ``Lambda``."""
        planes, masks, _ = as_tensors(observation, self.game)
        if self.rng.random() < self.config.epsilon:
            move = int(self.rng.choice(np.flatnonzero(masks[0].numpy())))
        else:
            move = int(masked_greedy(self.values(planes), masks)[0])
        with torch.no_grad():
            self.bonus.update(self.network.features(planes).double().numpy(), np.array([move]))
        return move

    def store(self, observation: dict, move: int, next_observation: dict | None) -> None:
        """One transition; ``next_observation`` is ``None`` when the game ended before the explorer's next turn.
        Then gradient steps, once enough transitions are stored."""
        planes, masks, _ = split_observation(observation, self.game)
        if next_observation is None:
            next_planes, next_masks = np.zeros_like(planes), np.zeros_like(masks)
        else:
            next_planes, next_masks, _ = split_observation(next_observation, self.game)
        self.buffer.add(planes.reshape(-1), masks[0], move, next_planes.reshape(-1), next_masks[0],
                        next_observation is None)
        if self.buffer.size >= self.config.learning_starts and self.config.epsilon < 1:  # epsilon 1: Q unused
            for _ in range(self.config.updates_per_move):
                self.learn()

    def learn(self) -> float:
        """One DQN step on a minibatch: ``C(s, a) <- gamma * max_a' U'(s', a')`` (0 where the game ended),
        with ``U'`` the bonus now plus the target network's ``C``."""
        planes, actions, next_planes, next_masks, dones = self.buffer.sample(self.config.batch_size, self.rng)
        next_values = self.values(next_planes, self.target)
        targets = td_targets(torch.zeros(len(actions)), next_values, next_masks, dones, self.config.gamma)
        continuation = self.network(planes).gather(1, actions[:, None])[:, 0]
        loss = F.smooth_l1_loss(continuation, targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.config.target_update == 0:
            self.target.load_state_dict(self.network.state_dict())
        return float(loss.detach())


def explore(game: Game, oracle: GameOracle, log: QueryLog, explorer: Explorer, deviator: int, budget: int,
            seed: int = 0) -> int:
    """Play games with ``explorer`` in seat ``deviator`` and the expert (through ``oracle``) in the other,
    querying the expert at every position, until ``oracle`` has answered ``budget`` queries in all.
    Returns the number of games started."""
    env = game.make_env()
    seats = {agent: seat for seat, agent in enumerate(env.possible_agents)}
    games = 0
    while oracle.queries < budget:
        env.reset(seed=seed + games)
        games += 1
        pending: tuple[dict, int] | None = None  # the explorer's last (observation, move), waiting for its next turn
        for agent in env.agent_iter():
            observation, _, termination, truncation, _ = env.last()
            if termination or truncation:
                if seats[agent] == deviator and pending is not None:
                    explorer.store(*pending, None)
                    pending = None
                env.step(None)
                continue
            if oracle.queries >= budget:
                break  # the budget is spent: the explorer's last move is left without a successor
            expert_move = oracle.query(observation)
            log.add(observation, expert_move)
            if seats[agent] != deviator:
                env.step(expert_move)  # the expert plays live: the answer is its move
                continue
            if pending is not None:
                explorer.store(*pending, observation)
            move = explorer.act(observation)
            if not observation["action_mask"][move]:  # PettingZoo would end the game with a penalty, hiding the bug
                raise RuntimeError(f"the explorer picked the illegal move {move}")
            pending = (observation, move)
            env.step(move)
    return games


def explore_then_clone(game: Game, expert: Policy, budget: int, seed: int = 0,
                       config: ExploreConfig = ExploreConfig(), clone: CloneConfig = CloneConfig()) -> CloneResult:
    """Explore-then-clone with ``budget`` expert queries in all (half with each seat deviating).

    Parameters
    ----------
    game:
        The game (:data:`mail.games.common.GAMES`).
    expert:
        The expert policy, reached only through a counting :class:`~mail.games.common.GameOracle`.
    budget:
        Expert queries in all.
    seed:
        Seeds the expert's sampling, the explorers and the classifier.
    config, clone:
        Explorer and classifier settings.
    """
    budget, seed = check_non_negative_int(budget, "budget"), check_seed(seed) or 0
    oracle, log = GameOracle(expert, seed), QueryLog(game)
    games, info = 0, {}
    for deviator, until in ((0, budget // 2), (1, budget)):
        explorer = Explorer(game, config, until - oracle.queries, seed=2 * seed + deviator)
        games += explore(game, oracle, log, explorer, deviator, until, seed=seed)
        info[f"switches_seat{deviator}"] = explorer.bonus.switches
        info[f"updates_seat{deviator}"] = explorer.updates
    return CloneResult(fit_clone(log, clone, seed), log, oracle.queries, games, info)
