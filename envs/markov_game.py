"""Tabular n-player, general-sum, infinite-horizon discounted Markov games.

A :class:`MarkovGame` is the model (transitions, rewards, initial distribution,
discount). With one player it is an MDP. The model is validated once and is
immutable afterwards; the exact solvers of :mod:`agents.tabular` read it, and
algorithms that must learn from interaction use its sampling simulator
(:meth:`MarkovGame.reset` / :meth:`MarkovGame.step`).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

# check_distribution_rows and ROW_SUM_TOLERANCE lived here first; importing them from here still works.
from envs.validation import ROW_SUM_TOLERANCE, check_discount, check_distribution_rows, check_finite_array, check_seed

__all__ = ["MarkovGame", "ROW_SUM_TOLERANCE", "check_distribution_rows"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, order="C", copy=True)
    array.flags.writeable = False
    return array


class MarkovGame:
    """An n-player general-sum discounted Markov game (an MDP when n = 1).

    Parameters
    ----------
    transitions:
        Array of shape ``(S, A_1, ..., A_n, S)``: ``transitions[s, a_1, ..., a_n, s']``
        is the probability of moving to ``s'`` from ``s`` under the joint action.
    rewards:
        Array of shape ``(n, S, A_1, ..., A_n)``: ``rewards[i, s, a]`` is player
        ``i``'s reward for the joint action ``a`` in state ``s``.
    initial:
        Initial state distribution, shape ``(S,)``.
    gamma:
        Discount factor in ``[0, 1)``.

    Raises
    ------
    ValueError
        If a field has the wrong shape, is not finite, or is not a probability
        distribution where one is required; the message names the field and the
        first offending index.
    """

    def __init__(
        self,
        transitions: np.ndarray,
        rewards: np.ndarray,
        initial: np.ndarray,
        gamma: float,
    ) -> None:
        transitions = np.asarray(transitions, dtype=np.float64)
        rewards = np.asarray(rewards, dtype=np.float64)
        initial = np.asarray(initial, dtype=np.float64)
        if transitions.ndim < 3:
            raise ValueError(
                "transitions must have shape (S, A_1, ..., A_n, S) with n >= 1 players, "
                f"got shape {transitions.shape}"
            )
        num_states = transitions.shape[0]
        num_actions = tuple(int(a) for a in transitions.shape[1:-1])
        num_players = len(num_actions)
        if num_states == 0 or min(num_actions) == 0:
            raise ValueError(f"transitions has an empty axis: shape {transitions.shape}")
        if transitions.shape[-1] != num_states:
            raise ValueError(
                f"transitions must have shape (S, A_1, ..., A_n, S): first axis has "
                f"{num_states} states but last axis has {transitions.shape[-1]}"
            )
        expected_rewards = (num_players, num_states, *num_actions)
        if rewards.shape != expected_rewards:
            raise ValueError(
                f"rewards must have shape (n, S, A_1, ..., A_n) = {expected_rewards} to match "
                f"transitions {transitions.shape}, got {rewards.shape}"
            )
        if initial.shape != (num_states,):
            raise ValueError(f"initial must have shape ({num_states},), got {initial.shape}")
        gamma = check_discount(gamma)
        check_distribution_rows(transitions, "transitions")
        check_finite_array(rewards, "rewards")
        check_distribution_rows(initial, "initial")

        self._transitions = _frozen(transitions)
        self._rewards = _frozen(rewards)
        self._initial = _frozen(initial)
        self._gamma = gamma
        self._num_actions = num_actions
        num_joint = int(np.prod(num_actions))
        # Flat views over joint actions (C order: player n's action varies fastest);
        # these are what the jitted solvers consume.
        self._joint_transitions = self._transitions.reshape(num_states, num_joint, num_states)
        self._joint_rewards = self._rewards.reshape(num_players, num_states, num_joint)
        self._rng = np.random.default_rng()
        self._state: int | None = None

    # ----------------------------------------------------------------- model
    @property
    def transitions(self) -> np.ndarray:
        """Read-only transition tensor of shape ``(S, A_1, ..., A_n, S)``."""
        return self._transitions

    @property
    def rewards(self) -> np.ndarray:
        """Read-only reward tensor of shape ``(n, S, A_1, ..., A_n)``."""
        return self._rewards

    @property
    def initial(self) -> np.ndarray:
        """Read-only initial distribution of shape ``(S,)``."""
        return self._initial

    @property
    def gamma(self) -> float:
        return self._gamma

    @property
    def num_states(self) -> int:
        return self._transitions.shape[0]

    @property
    def num_players(self) -> int:
        return len(self._num_actions)

    @property
    def num_actions(self) -> tuple[int, ...]:
        """Number of actions of each player."""
        return self._num_actions

    @property
    def num_joint_actions(self) -> int:
        return self._joint_transitions.shape[1]

    @property
    def joint_transitions(self) -> np.ndarray:
        """Transitions with the joint action flattened: shape ``(S, prod A_i, S)``."""
        return self._joint_transitions

    @property
    def joint_rewards(self) -> np.ndarray:
        """Rewards with the joint action flattened: shape ``(n, S, prod A_i)``."""
        return self._joint_rewards

    def is_zero_sum(self, atol: float = 1e-12) -> bool:
        """Whether the players' rewards sum to zero everywhere."""
        return bool(np.all(np.abs(self._rewards.sum(axis=0)) <= atol))

    def __repr__(self) -> str:
        return (
            f"MarkovGame(num_states={self.num_states}, num_actions={self.num_actions}, "
            f"gamma={self.gamma})"
        )

    # ------------------------------------------------------------- simulator
    def joint_action_index(self, actions: Sequence[int]) -> int:
        """Flat index of a joint action ``(a_1, ..., a_n)``."""
        if len(actions) != self.num_players:
            raise ValueError(
                f"a joint action needs {self.num_players} actions, got {len(actions)}: {actions!r}"
            )
        for player, (action, count) in enumerate(zip(actions, self._num_actions)):
            if not (0 <= int(action) < count) or int(action) != action:
                raise ValueError(
                    f"action {action!r} of player {player} is out of range [0, {count})"
                )
        return int(np.ravel_multi_index(tuple(int(a) for a in actions), self._num_actions))

    def reset(self, seed: int | None = None) -> int:
        """Start an episode: sample ``s_0 ~ initial``.

        Parameters
        ----------
        seed:
            Reseeds the simulator's ``numpy.random.Generator`` when given.
        """
        if seed is not None:
            self._rng = np.random.default_rng(check_seed(seed))
        self._state = int(self._rng.choice(self.num_states, p=self._initial))
        return self._state

    def step(self, actions: Sequence[int]) -> tuple[int, np.ndarray]:
        """Play one joint action from the current state.

        Returns
        -------
        next_state, rewards:
            The sampled next state and every player's reward, shape ``(n,)``.
            The game is infinite-horizon: discounting is the caller's business.
        """
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        joint = self.joint_action_index(actions)
        state = self._state
        rewards = self._joint_rewards[:, state, joint].copy()
        self._state = int(self._rng.choice(self.num_states, p=self._joint_transitions[state, joint]))
        return self._state, rewards

    @property
    def state(self) -> int | None:
        """Current simulator state (``None`` before :meth:`reset`)."""
        return self._state

    def simulator(self) -> "MarkovGame":
        """A new handle on the same read-only model with its own simulator state and generator.

        The Gymnasium and PettingZoo views step through one of these, so they share the
        game's :meth:`step` without disturbing (or being disturbed by) other users of the game.
        """
        handle = copy.copy(self)
        handle._rng = np.random.default_rng()
        handle._state = None
        return handle

    def parallel_env(self, max_steps: int = 100, render_mode: str | None = None):
        """A PettingZoo ``ParallelEnv`` view of this game (see :mod:`envs.parallel`)."""
        from envs.parallel import MarkovGameParallelEnv

        return MarkovGameParallelEnv(self, max_steps=max_steps, render_mode=render_mode)
