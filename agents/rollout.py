"""One path for running policies in environments: :func:`collect` episodes and :func:`evaluate` returns.

Both take any :class:`~agents.interface.Policy` and either

* a Gymnasium environment: a :class:`~agents.interface.TabularPolicy` on the Gymnasium
  view of an MDP (:class:`envs.gym_env.TabularMDPEnv`), a
  :class:`~agents.policies.GaussianPolicy` or :class:`~agents.sac.SAC` on MuJoCo; or
* a PettingZoo ``ParallelEnv``: a :class:`~agents.interface.PolicyProfile` (or one
  policy per agent) on the PettingZoo view of a Markov game
  (:meth:`envs.MarkovGame.parallel_env`). Agent ``i`` of ``env.possible_agents``
  plays the profile's policy ``i`` on its own observation.

A multi-agent trajectory stores the agents' observations and actions side by side
(``obs[T + 1, n * obs_dim]``, ``acts[T, n * act_dim]``) and one reward column per
agent (``rewards[T, n]``), so its return is one number per agent.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from agents.demonstrations import Trajectory
from agents.interface import Policy, PolicyProfile, TabularPolicy


def _flat(values: Sequence[Any]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1) for v in values])


def _single_agent_episode(
    policy: Policy, env: gym.Env, seed: int, deterministic: bool, rng: np.random.Generator
) -> Trajectory:
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy.act(obs, deterministic=deterministic, rng=rng)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(np.asarray(action, dtype=np.float32).reshape(-1))
        rewards.append(float(reward))
    # Discrete observations (tabular environments) become one column.
    return Trajectory(
        np.asarray(observations, dtype=np.float32).reshape(len(observations), -1),
        np.asarray(actions, dtype=np.float32), np.asarray(rewards, dtype=np.float32),
        bool(terminated), bool(truncated and not terminated),
    )


def _agent_policies(policy: Any, agents: list[str]) -> list[Policy]:
    if isinstance(policy, Mapping):
        missing = [a for a in agents if a not in policy]
        if missing:
            raise ValueError(f"no policy for agents {missing}")
        return [policy[a] for a in agents]
    if isinstance(policy, Sequence) and all(isinstance(p, np.ndarray) for p in policy):
        policy = PolicyProfile(policy)  # plain (S, A_i) tables, as the solvers take them
    if not isinstance(policy, Sequence) or len(policy) != len(agents):
        raise ValueError(
            f"a multi-agent environment needs one policy per agent ({len(agents)}: a PolicyProfile, "
            f"a sequence or a dict), got {type(policy).__name__}"
        )
    return list(policy)


def _multi_agent_episode(
    policy: Any, env: Any, seed: int, deterministic: bool, rng: np.random.Generator
) -> Trajectory:
    agents = list(env.possible_agents)
    policies = _agent_policies(policy, agents)
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [_flat([obs[a] for a in agents])], [], []
    terminated = truncated = False
    while env.agents:
        if set(env.agents) != set(agents):
            raise ValueError("agents left the episode before its end; only episodes where every agent "
                             "acts at every step are supported")
        joint = {a: p.act(obs[a], deterministic=deterministic, rng=rng) for a, p in zip(agents, policies)}
        obs, reward, terminations, truncations, _ = env.step(joint)
        terminated = any(terminations.values())
        truncated = any(truncations.values())
        observations.append(_flat([obs[a] for a in agents]))
        actions.append(_flat([joint[a] for a in agents]))
        rewards.append([float(reward[a]) for a in agents])
        if terminated or truncated:
            break
    return Trajectory(
        np.asarray(observations, dtype=np.float32), np.asarray(actions, dtype=np.float32),
        np.asarray(rewards, dtype=np.float32).reshape(len(rewards), len(agents)),
        bool(terminated), bool(truncated and not terminated),
    )


def is_multi_agent(env: Any) -> bool:
    """A PettingZoo ``ParallelEnv`` (or anything with ``possible_agents``) rather than a Gymnasium ``Env``."""
    return hasattr(env, "possible_agents") and not isinstance(env, gym.Env)


def collect(
    policy: Policy | Sequence[Policy] | Mapping[str, Policy],
    env: gym.Env | Any,
    episodes: int,
    seed: int = 0,
    deterministic: bool = False,
    progress: bool = False,
) -> list[Trajectory]:
    """Roll ``policy`` out for ``episodes`` whole episodes (reset seeds ``seed, seed + 1, ...``).

    Plain ``(S, A)`` tables (one per agent for a multi-agent environment) are taken as tabular policies.

    Action noise comes from a generator seeded with ``seed`` (policies that own their
    generator, such as :class:`~agents.sac.SAC`, use that instead).
    """
    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    episode = _multi_agent_episode if is_multi_agent(env) else _single_agent_episode
    if isinstance(policy, np.ndarray):
        policy = TabularPolicy(policy)  # a plain (S, A) table
    rng = np.random.default_rng(seed)
    return [
        episode(policy, env, seed + i, deterministic, rng)
        for i in tqdm(range(int(episodes)), disable=not progress, desc="rollouts", unit="episode")
    ]


def evaluate(
    policy: Policy | Sequence[Policy] | Mapping[str, Policy],
    env: gym.Env | Any,
    episodes: int,
    seed: int = 0,
    deterministic: bool = True,
) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes (reset seeds ``seed, seed + 1, ...``).

    Shape ``(episodes,)`` for a Gymnasium environment, ``(episodes, n)`` for a
    PettingZoo one (one column per agent of ``env.possible_agents``).
    """
    return np.array([t.episode_return for t in collect(policy, env, episodes, seed=seed, deterministic=deterministic)])
