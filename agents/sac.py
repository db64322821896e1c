"""Soft Actor-Critic with a batched ensemble of critic pairs and SOAR's optimistic actor.

One algorithm, readable top to bottom:

* ``L = num_q_pairs`` critic pairs ``(Q1_l, Q2_l)`` live in one
  :class:`~agents.networks.EnsembleMLP` of ``2L`` members (stacked weights,
  batched matmuls, no Python loop over critics), with a target copy updated by
  one fused Polyak step.
* Each pair draws its own minibatch from the one replay buffer and gets its own
  pessimistic target ``y_l = r + gamma (1 - terminated) [min(Qbar1_l, Qbar2_l)(s', a') - alpha log pi(a' | s')]``.
  The reward is relabelled at sample time by ``reward_fn`` when one is given
  (the learned reward of imitation learning), never read from the buffer then.
* The actor maximises ``Q_opt - alpha log pi`` where, with ``m_l = min(Q1_l, Q2_l)``,
  ``Q_opt = m_1`` for ``L = 1`` (plain SAC) and
  ``Q_opt = mean_l m_l + kappa * clip(std_l m_l, 0, sigma_clip)`` for ``L > 1``
  (SOAR: optimism enters the actor only). ``std`` is the population standard deviation.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from agents.networks import EnsembleMLP, TanhGaussianActor
from agents.policies import GaussianPolicy

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def optimistic_q(pair_min: torch.Tensor, uncertainty_coef: float, q_std_clip: float) -> torch.Tensor:
    """SOAR's optimistic critic from the per-pair minima ``m`` of shape (L, B).

    ``m[0]`` when ``L = 1``; otherwise ``mean_l m_l + uncertainty_coef * clip(std_l m_l, 0, q_std_clip)``.
    """
    if pair_min.shape[0] == 1:
        return pair_min[0]
    spread = pair_min.std(dim=0, unbiased=False).clamp(0.0, q_std_clip)
    return pair_min.mean(dim=0) + uncertainty_coef * spread


_flush_depth = 0


@contextlib.contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[None]:
    """Treat subnormal floats as zero on the CPU while inside (torch's default is off again after).

    After a few thousand updates some of Adam's second moments and gradients become
    subnormal, which x86 cores compute many times slower: measured on Hopper-v5, one SAC
    step drifts from 6.8 to 8.3 ms without this and stays at 6.8 ms with it. The values
    involved are below 1e-38, so flushing them changes nothing that matters to learning.
    """
    global _flush_depth
    if not enabled:
        yield
        return
    # torch cannot report the current mode, so nesting is counted: only the outermost exit restores it.
    flushing = torch.set_flush_denormal(True)
    _flush_depth += 1
    try:
        yield
    finally:
        _flush_depth -= 1
        if flushing and _flush_depth == 0:
            torch.set_flush_denormal(False)


class ReplayBuffer:
    """Fixed-size FIFO of transitions ``(s, a, r, s', terminated)`` in preallocated float32 arrays."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.position = 0

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.position
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, indices: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Tensors for ``indices`` of any shape ``(...)``: obs/next_obs/actions ``(..., d)``, reward/terminated ``(...)``."""
        return tuple(
            torch.from_numpy(array[indices])
            for array in (self.obs, self.actions, self.rewards, self.next_obs, self.terminated)
        )


class SAC:
    """Soft Actor-Critic with ``num_q_pairs`` critic pairs (SOAR's optimistic actor for > 1).

    Parameters
    ----------
    env:
        A Gymnasium environment with 1-D ``Box`` observations and a ``Box`` action space.
    num_q_pairs:
        L, the number of critic pairs (1: plain SAC; SOAR uses 4).
    uncertainty_coef:
        kappa, weight of the ensemble standard deviation in the actor's critic.
    q_std_clip:
        sigma_clip >= 0, upper clip of that standard deviation.
    hidden:
        Hidden widths of actor and critics.
    learning_rate, batch_size, gamma, tau:
        Adam step (actor, critics and entropy coefficient), minibatch size per pair,
        discount, Polyak coefficient (target <- (1 - tau) target + tau online).
    alpha:
        Entropy coefficient: a float to fix it, or ``"auto"`` to learn it towards
        ``target_entropy`` (default ``-act_dim``; entropies of the squashed action in
        ``[-1, 1]^d``, as in stable-baselines3, whatever the action box).
    buffer_size, learning_starts:
        Replay capacity; uniformly random actions before this many steps.
    reward_fn:
        ``reward_fn(obs, actions, next_obs) -> rewards`` on flat batches ``(N, d)``,
        relabelling every sampled critic minibatch; ``None`` uses the environment reward.
    seed:
        Seeds torch, numpy and the environment once.
    flush_denormal:
        Flush subnormal floats to zero during :meth:`learn` (see :func:`flushed_denormals`).
    """

    def __init__(
        self,
        env: gym.Env,
        num_q_pairs: int = 1,
        uncertainty_coef: float = 1.0,
        q_std_clip: float = 1.0,
        hidden: tuple[int, ...] = (256, 256),
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        alpha: float | str = "auto",
        target_entropy: float | None = None,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        reward_fn: RewardFn | None = None,
        seed: int = 0,
        flush_denormal: bool = True,
    ) -> None:
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"SAC needs a Box action space, got {env.action_space}")
        if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
            raise ValueError(f"SAC needs 1-D Box observations, got {env.observation_space}")
        if int(num_q_pairs) != num_q_pairs or num_q_pairs < 1:
            raise ValueError(f"num_q_pairs must be an integer >= 1, got {num_q_pairs!r}")
        if q_std_clip < 0:
            raise ValueError(f"q_std_clip must be >= 0, got {q_std_clip}")
        if batch_size < 1 or buffer_size < batch_size or not 0 < tau <= 1 or not 0 <= gamma < 1:
            raise ValueError("need batch_size >= 1, buffer_size >= batch_size, 0 < tau <= 1, 0 <= gamma < 1")
        if not (alpha == "auto" or (isinstance(alpha, (int, float)) and alpha >= 0)):
            raise ValueError(f"alpha must be 'auto' or a number >= 0, got {alpha!r}")
        self.env = env
        self.obs_dim = env.observation_space.shape[0]
        self.act_dim = int(np.prod(env.action_space.shape))
        self.num_q_pairs = int(num_q_pairs)
        self.uncertainty_coef = float(uncertainty_coef)
        self.q_std_clip = float(q_std_clip)
        self.batch_size, self.gamma, self.tau = int(batch_size), float(gamma), float(tau)
        self.learning_starts = int(learning_starts)
        self.reward_fn = reward_fn
        self.seed = seed
        self.flush_denormal = bool(flush_denormal)
        torch.manual_seed(seed)  # network initialisation
        self.generator = torch.Generator().manual_seed(seed)  # action noise, independent of other agents
        self.rng = np.random.default_rng(seed)
        self.env.action_space.seed(seed)

        low = torch.as_tensor(env.action_space.low, dtype=torch.float32)
        high = torch.as_tensor(env.action_space.high, dtype=torch.float32)
        self.actor = TanhGaussianActor(self.obs_dim, self.act_dim, hidden, low, high)
        self.critic = EnsembleMLP(2 * self.num_q_pairs, self.obs_dim + self.act_dim, hidden, 1)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.learn_alpha = alpha == "auto"
        self.target_entropy = -float(self.act_dim) if target_entropy is None else float(target_entropy)
        # Entropies are measured in the squashed [-1, 1]^d space (as stable-baselines3 does), so
        # the default target means the same for any action box: log pi(a) + sum log(scale).
        self.log_scale = float(torch.log(self.actor.scale).sum())
        self.log_alpha = torch.zeros(1, requires_grad=self.learn_alpha)
        if not self.learn_alpha:
            self.log_alpha.data.fill_(np.log(max(float(alpha), 1e-30)))
        # Adam is per-parameter, so one optimiser over the actor and log(alpha) (same step
        # size) is exactly two optimisers; the two losses share one backward pass because
        # neither depends on the other's parameters. Fused kernels: one op per step, not dozens.
        actor_parameters = [*self.actor.parameters(), *([self.log_alpha] if self.learn_alpha else [])]
        self.actor_optimizer = torch.optim.Adam(actor_parameters, lr=learning_rate, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=learning_rate, fused=True)
        self.buffer = ReplayBuffer(buffer_size, self.obs_dim, self.act_dim)
        self.num_timesteps = 0
        self.num_gradient_steps = 0
        self._obs, _ = env.reset(seed=seed)

    # ------------------------------------------------------------- acting
    def predict(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) for observation(s) of shape ``(obs_dim,)`` or ``(N, obs_dim)``."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1] != self.obs_dim or obs.ndim not in (1, 2):
            raise ValueError(f"observation must have shape ({self.obs_dim},) or (N, {self.obs_dim}), got {obs.shape}")
        with torch.no_grad():
            tensor = torch.from_numpy(obs)
            action = self.actor.deterministic(tensor) if deterministic else self.actor.sample(tensor, self.generator)[0]
        return action.numpy()

    def act(self, obs: np.ndarray, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """:class:`~agents.policies.Policy` interface (the agent's own generator draws the noise)."""
        return self.predict(obs, deterministic=deterministic)

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Log-density of ``actions`` under the current actor."""
        return GaussianPolicy(self.actor).log_prob(obs, actions)

    def q_values(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """:class:`~agents.policies.Critic` interface: every member's Q value, shape ``(2L, N)``
        (members ``2l`` and ``2l + 1`` form pair ``l``)."""
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs_dim)
        actions = np.asarray(actions, dtype=np.float32)
        if actions.reshape(len(obs), -1).shape[1] != self.act_dim:
            raise ValueError(f"actions must have shape (N, {self.act_dim}) for {len(obs)} observations, got {actions.shape}")
        actions = actions.reshape(len(obs), self.act_dim)
        inputs = torch.from_numpy(np.concatenate([obs, actions], axis=1))
        with torch.no_grad():
            return self.critic(inputs.expand(2 * self.num_q_pairs, *inputs.shape)).squeeze(-1).numpy()

    # --------------------------------------------------------------- critics
    def pair_values(self, critic: torch.nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q values of every member, shape (2L, B), for per-pair inputs of shape (L, B, d).

        Both members of pair l see pair l's minibatch.
        """
        inputs = torch.cat([obs, actions], dim=-1).repeat_interleave(2, dim=0)
        return critic(inputs).squeeze(-1)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def train_step(self) -> dict[str, float]:
        """One gradient step of the critics, the actor and (if learned) the entropy coefficient."""
        L, B = self.num_q_pairs, self.batch_size
        indices = self.rng.integers(0, self.buffer.size, size=(L, B))
        obs, actions, rewards, next_obs, terminated = self.buffer.sample(indices)
        if self.reward_fn is not None:
            flat = self.reward_fn(obs.reshape(L * B, -1), actions.reshape(L * B, -1), next_obs.reshape(L * B, -1))
            rewards = torch.as_tensor(flat, dtype=torch.float32).reshape(L, B)
        alpha = self.alpha

        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(next_obs, self.generator)
            next_log_prob = next_log_prob + self.log_scale
            target = self.pair_values(self.critic_target, next_obs, next_actions).view(L, 2, B).amin(dim=1)
            target = rewards + self.gamma * (1.0 - terminated) * (target - alpha * next_log_prob)
        q = self.pair_values(self.critic, obs, actions)
        critic_loss = (q - target.repeat_interleave(2, dim=0)).pow(2).mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # The actor sees the first pair's states; the critics are frozen for its step.
        actor_obs = obs[0]
        new_actions, log_prob = self.actor.sample(actor_obs, self.generator)
        log_prob = log_prob + self.log_scale
        self.critic.requires_grad_(False)
        expanded_obs = actor_obs.expand(L, B, self.obs_dim)
        pair_min = self.pair_values(self.critic, expanded_obs, new_actions.expand(L, B, self.act_dim))
        pair_min = pair_min.view(L, 2, B).amin(dim=1)
        actor_loss = (alpha * log_prob - optimistic_q(pair_min, self.uncertainty_coef, self.q_std_clip)).mean()
        loss = actor_loss
        if self.learn_alpha:
            # alpha above is detached and log_prob is detached here: no cross-gradients.
            loss = loss - (self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()
        self.critic.requires_grad_(True)

        with torch.no_grad():
            torch._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), self.tau)
        self.num_gradient_steps += 1
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha.item()}

    # ------------------------------------------------------------- learning
    def learn(self, total_timesteps: int, progress: bool = False, callback: Callable[["SAC"], None] | None = None) -> "SAC":
        """Interact for ``total_timesteps`` steps, one gradient step per step after ``learning_starts``.

        ``callback(agent)`` runs after every environment step (for evaluation or checkpoints).
        """
        with flushed_denormals(self.flush_denormal):
            for _ in tqdm(range(int(total_timesteps)), disable=not progress, desc="SAC", leave=False):
                if self.num_timesteps < self.learning_starts:
                    action = self.env.action_space.sample()
                else:
                    action = self.predict(self._obs)
                next_obs, reward, terminated, truncated, _ = self.env.step(action)
                self.buffer.add(self._obs, action, reward, next_obs, terminated)
                self._obs = next_obs
                if terminated or truncated:
                    self._obs, _ = self.env.reset()
                self.num_timesteps += 1
                if self.num_timesteps >= self.learning_starts and self.buffer.size >= self.batch_size:
                    self.train_step()
                if callback is not None:
                    callback(self)
        return self

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path, include_buffer: bool = False) -> None:
        """Weights, optimiser states and counters (and the replay buffer if asked) in one torch file."""
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "counters": torch.tensor([self.num_timesteps, self.num_gradient_steps, self.buffer.position]),
            "num_q_pairs": torch.tensor(self.num_q_pairs),
            # Both random streams, so a resumed run continues exactly where it stopped.
            "torch_generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
        }
        if include_buffer:
            b = self.buffer
            for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
                state[f"buffer_{name}"] = torch.from_numpy(getattr(b, name)[: b.size].copy())
        torch.save(state, path)

    def load(self, path: str | Path) -> "SAC":
        """Restore what :meth:`save` wrote (never unpickles code: ``weights_only=True``)."""
        try:
            state = torch.load(path, weights_only=True)
        except Exception as error:  # corrupt or foreign file
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"{path} is not a readable SAC checkpoint ({first_line})") from None
        if not isinstance(state, dict) or not {"actor", "critic", "counters"} <= set(state):
            raise ValueError(f"{path} is not a SAC checkpoint of this toolkit (no actor/critic/counters)")
        if int(state.get("num_q_pairs", -1)) != self.num_q_pairs:
            raise ValueError(f"{path} holds {int(state.get('num_q_pairs', -1))} critic pairs, this agent has {self.num_q_pairs}")
        try:
            self.actor.load_state_dict(state["actor"])
            self.critic.load_state_dict(state["critic"])
            self.critic_target.load_state_dict(state["critic_target"])
            self.actor_optimizer.load_state_dict(state["actor_optimizer"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise ValueError(f"{path} does not fit this agent (other sizes or environment?): {first_line}") from None
        self.log_alpha.data.copy_(state["log_alpha"])
        self.num_timesteps, self.num_gradient_steps, position = (int(x) for x in state["counters"])
        self.generator.set_state(state["torch_generator"])
        self.rng.bit_generator.state = state["numpy_rng"]
        if "buffer_obs" in state:
            size = len(state["buffer_obs"])
            for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
                getattr(self.buffer, name)[:size] = state[f"buffer_{name}"].numpy()
            # The write position, not size % capacity: once the buffer has wrapped they differ.
            self.buffer.size, self.buffer.position = size, position
        return self

    def policy(self, env_id: str = "") -> GaussianPolicy:
        """A detached copy of the actor as a deployable :class:`~agents.policies.GaussianPolicy`."""
        return GaussianPolicy(copy.deepcopy(self.actor).eval(), env_id)

    def save_policy(self, path: str | Path, env_id: str = "") -> None:
        """The actor alone, for deployment (read back with :func:`agents.policies.load_policy`)."""
        self.policy(env_id).save(path)
