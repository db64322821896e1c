"""Soft Actor-Critic with a batched ensemble of critic pairs and SOAR's optimistic actor.

One algorithm, readable top to bottom:

* ``L = num_critics`` critics, each a clipped double-Q pair ``(Q1_l, Q2_l)``, live in one
  :class:`~agents.networks.EnsembleMLP` of ``2L`` members (stacked weights,
  batched matmuls, no Python loop over critics), with a target copy updated by
  one fused Polyak step.
* Each pair draws its own minibatch from the one replay buffer (optionally with a fixed
  share of expert rows, SQIL's balanced minibatches) and gets its own
  pessimistic target ``y_l = r + gamma (1 - terminated) [min(Qbar1_l, Qbar2_l)(s', a') - alpha log pi(a' | s')]``.
  The reward is relabelled at sample time by ``reward_fn`` when one is given
  (the learned reward of imitation learning), never read from the buffer then.
* Optionally (OPT-AIL) each critic's loss carries ``- critic_optimism * mean Q``.
* The actor maximises ``Q_opt - alpha log pi`` where, with ``m_l = min(Q1_l, Q2_l)``,
  ``Q_opt = m_1`` for ``L = 1`` (plain SAC) and
  ``Q_opt = mean_l m_l + optimism * clip(std_l m_l, 0, std_clip)`` for ``L > 1``
  (SOAR: optimism enters the actor only), computed by
  :func:`agents.optimism.optimistic_value`, which tabular SOAR shares.

The agent follows stable-baselines3's idioms where they exist: ``learn``, ``predict``
returning ``(action, None)``, ``save`` and the class method ``load``.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from agents.checkpoints import atomic_output
from agents.logger import MetricWindow, RunLogger, check_finite
from agents.networks import EnsembleMLP, TanhGaussianActor
from agents.optimism import check_optimism, optimistic_value
from agents.policies import GaussianPolicy, mlp_actor_layout
from agents.run_folder import first_line
from agents.untrusted import (
    MAX_BATCH_SIZE, MAX_BUFFER_SIZE, MAX_CRITICS, RefusedFile, check_stored_count, check_stored_floats,
    check_stored_widths, first_non_finite, load_torch,
)
from envs.validation import (
    check_discount, check_int, check_interval, check_non_negative, check_non_negative_int, check_positive,
    check_positive_int,
)
from envs.validation import check_finite as check_finite_number

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[["SAC"], "bool | None"]
CHECKPOINT_FORMAT = "soar-mail/sac-checkpoint/2"
_BUFFER_FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; ``"cuda"`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU here (use 'cpu' or 'auto')")
    return device


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


#: Completed episodes remembered for :meth:`SAC.recent_episodes` (it returns at most this many).
MAX_EPISODES_KEPT = 1000


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


def demonstration_buffer(demonstrations: dict[str, Any], obs_dim: int, act_dim: int) -> ReplayBuffer:
    """A full :class:`ReplayBuffer` of expert transitions (``obs``, ``actions``, ``next_obs``, ``terminated``)."""
    try:
        arrays = {name: np.asarray(demonstrations[name].cpu() if isinstance(demonstrations[name], torch.Tensor)
                                   else demonstrations[name], dtype=np.float32)
                  for name in ("obs", "actions", "next_obs", "terminated")}
    except (KeyError, TypeError) as error:
        raise ValueError(f"demonstrations must map obs, actions, next_obs and terminated to arrays ({error})") from None
    count = len(arrays["obs"])
    shapes = {"obs": (count, obs_dim), "actions": (count, act_dim), "next_obs": (count, obs_dim),
              "terminated": (count,)}
    for name, shape in shapes.items():
        if arrays[name].shape != shape or not np.isfinite(arrays[name]).all():
            raise ValueError(f"demonstrations[{name!r}] must be finite with shape {shape}, got {arrays[name].shape}")
    if count == 0:
        raise ValueError("demonstrations hold no transition")
    buffer = ReplayBuffer(count, obs_dim, act_dim)
    buffer.obs[:], buffer.actions[:], buffer.next_obs[:] = arrays["obs"], arrays["actions"], arrays["next_obs"]
    buffer.terminated[:], buffer.size = arrays["terminated"], count
    return buffer


def _check_stored_sizes(state: dict, source: str, overrides: dict[str, Any]) -> None:
    """Refuse a checkpoint whose stored sizes would make :meth:`SAC.load` allocate more than its own weights
    (or a replay buffer beyond :data:`agents.untrusted.MAX_BUFFER_SIZE`) before they are read.

    The hidden widths and number of critics it declares must be those of its actor and
    critic tensors; values given as ``overrides`` are the caller's and are not checked.
    """
    stored = state["hyperparameters"]
    for name, limit in (("buffer_size", MAX_BUFFER_SIZE), ("batch_size", MAX_BATCH_SIZE)):
        if name not in overrides and name in stored:
            check_stored_count(stored[name], name, source, limit)
    hidden = check_stored_widths(stored.get("hidden", []), "hidden", source)
    critics = check_stored_count(stored.get("num_critics"), "num_critics", source, MAX_CRITICS)
    batch_size = overrides.get("batch_size", stored.get("batch_size", 1))
    check_stored_floats(int(batch_size) * 2 * critics * max(hidden, default=1), "the critics' minibatch activations",
                        source)
    try:
        actor_hidden = mlp_actor_layout(state["actor"], "trunk.", ("mean", "log_std"), {"scale", "offset"})[2]
        critic = state["critic"]
        count = len(critic) // 2
        layers = [tuple(critic[f"layers.{i}.weight"].shape) for i in range(count)]
        expected = {f"layers.{i}.{kind}" for i in range(count) for kind in ("weight", "bias")}
        if not layers or set(critic) != expected or any(len(shape) != 3 for shape in layers):
            raise ValueError("the critic is not an ensemble of stacked layers")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{source} does not hold this SAC's networks ({error})") from None
    critic_hidden = tuple(shape[2] for shape in layers[:-1])
    if actor_hidden != hidden or critic_hidden != hidden or any(shape[0] != 2 * critics for shape in layers):
        raise ValueError(f"{source} declares hidden widths {list(hidden)} and {critics} critics, its weights have "
                         f"actor widths {list(actor_hidden)}, critic widths {list(critic_hidden)} and "
                         f"{layers[0][0]} critic members")


class SAC:
    """Soft Actor-Critic with ``num_critics`` critics (SOAR's optimistic actor for more than one).

    Parameters
    ----------
    env:
        A Gymnasium environment with 1-D ``Box`` observations and a ``Box`` action space.
    num_critics:
        L, the number of critics, each a clipped double-Q pair (1: plain SAC; SOAR uses 4).
    optimism:
        kappa >= 0, weight of the critics' standard deviation in the actor's critic.
    std_clip:
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
        Replay capacity (at least ``batch_size``); uniformly random actions for the first
        ``learning_starts`` steps, then one gradient step after every environment step (the
        first right after step ``learning_starts``; minibatches are drawn with replacement).
    reward_fn:
        ``reward_fn(obs, actions, next_obs) -> rewards`` on flat batches ``(N, d)``,
        relabelling every sampled critic minibatch; ``None`` uses the environment reward.
    terminal_value:
        ``terminal_value() -> float``: the value of the state a *terminated* episode ends
        in, bootstrapped by terminal transitions (``None``: 0, the usual convention).
        Imitation with a learned absorbing state passes ``r_abs / (1 - gamma)``.
    demonstrations, demo_share, demo_reward:
        Expert transitions (a dict of ``obs``, ``actions``, ``next_obs``, ``terminated``
        arrays) that fill the last ``round(demo_share * batch_size)`` rows of every pair's
        minibatch (SQIL's balanced minibatches); their reward is ``demo_reward`` when given,
        else ``reward_fn``'s like every other row.
    critic_optimism:
        lambda >= 0: every critic member's loss becomes ``MSE - lambda * mean Q(s, a)`` over
        its minibatch (OPT-AIL's optimism on the critic; 0, the default, is plain SAC); the
        logged ``critic_loss`` includes the term.
    seed:
        Seeds torch, numpy and the environment once.
    flush_denormal:
        Flush subnormal floats to zero during :meth:`learn` (see :func:`flushed_denormals`).

    Every argument but ``env``, ``reward_fn``, ``terminal_value`` and ``demonstrations`` is kept in :attr:`hyperparameters` and
    stored by :meth:`save`, so that :meth:`load` rebuilds the same agent.
    """

    def __init__(
        self,
        env: gym.Env,
        num_critics: int = 1,
        optimism: float = 1.0,
        std_clip: float = 1.0,
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
        terminal_value: Callable[[], float] | None = None,
        demonstrations: dict[str, Any] | None = None,
        demo_share: float = 0.0,
        demo_reward: float | None = None,
        critic_optimism: float = 0.0,
        seed: int = 0,
        flush_denormal: bool = True,
        device: str = "cpu",
    ) -> None:
        check_action_box(env.action_space, "SAC")
        if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
            raise ValueError(f"SAC needs 1-D Box observations, got {env.observation_space}")
        num_critics, optimism, std_clip = check_optimism(num_critics, optimism, std_clip)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__") or not len(hidden):
            raise ValueError(f"hidden must be a non-empty sequence of layer widths, got {hidden!r}")
        hidden = tuple(check_positive_int(width, "hidden") for width in hidden)
        learning_rate = check_positive(learning_rate, "learning_rate")
        batch_size = check_positive_int(batch_size, "batch_size")
        gamma = check_discount(gamma)
        tau = check_interval(tau, "tau", 0.0, 1.0, low_open=True)
        if not (alpha == "auto" or isinstance(alpha, (int, float, np.floating))):
            raise ValueError(f"alpha must be 'auto' or a finite number >= 0, got {alpha!r}")
        alpha = alpha if alpha == "auto" else check_non_negative(alpha, "alpha")
        target_entropy = None if target_entropy is None else check_finite_number(target_entropy, "target_entropy")
        buffer_size = check_int(buffer_size, "buffer_size", minimum=batch_size)
        learning_starts = check_non_negative_int(learning_starts, "learning_starts")
        seed = check_non_negative_int(seed, "seed")
        demo_share = check_interval(demo_share, "demo_share", 0.0, 1.0, high_open=True)
        demo_reward = None if demo_reward is None else check_finite_number(demo_reward, "demo_reward")
        critic_optimism = check_non_negative(critic_optimism, "critic_optimism")
        if demo_share > 0 and demonstrations is None:
            raise ValueError("demo_share > 0 needs demonstrations to draw those rows from")
        self.env = env
        self.device = resolve_device(device)
        self.obs_dim = env.observation_space.shape[0]
        self.act_dim = int(np.prod(env.action_space.shape))
        self.num_critics = int(num_critics)
        self.optimism = float(optimism)
        self.std_clip = float(std_clip)
        # Plain numbers, strings and lists only: save() stores them for load() (weights_only=True).
        self.hyperparameters: dict[str, Any] = {
            "num_critics": self.num_critics, "optimism": self.optimism, "std_clip": self.std_clip,
            "hidden": [int(h) for h in hidden], "learning_rate": float(learning_rate), "batch_size": int(batch_size),
            "gamma": float(gamma), "tau": float(tau), "alpha": alpha if alpha == "auto" else float(alpha),
            "target_entropy": None if target_entropy is None else float(target_entropy),
            "buffer_size": int(buffer_size), "learning_starts": int(learning_starts), "seed": int(seed),
            "flush_denormal": bool(flush_denormal), "device": str(device),
            "demo_share": float(demo_share), "demo_reward": None if demo_reward is None else float(demo_reward),
            "critic_optimism": float(critic_optimism),
        }
        self.batch_size, self.gamma, self.tau = int(batch_size), float(gamma), float(tau)
        self.learning_starts = int(learning_starts)
        self.reward_fn = reward_fn
        self.terminal_value = terminal_value
        self.seed = seed
        self.flush_denormal = bool(flush_denormal)
        torch.manual_seed(seed)  # network initialisation
        # Action noise, independent of other agents; on the device the noise is drawn on.
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env.action_space.seed(seed)

        self.actor = TanhGaussianActor.for_spaces(env.observation_space, env.action_space, hidden).to(self.device)
        self.critic = EnsembleMLP(2 * self.num_critics, self.obs_dim + self.act_dim, tuple(hidden), 1).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.learn_alpha = alpha == "auto"
        self.target_entropy = -float(self.act_dim) if target_entropy is None else float(target_entropy)
        # Entropies are measured in the squashed [-1, 1]^d space (as stable-baselines3 does), so
        # the default target means the same for any action box: log pi(a) + sum log(scale).
        self.log_scale = float(torch.log(self.actor.scale).sum())
        self.log_alpha = torch.zeros(1, device=self.device, requires_grad=self.learn_alpha)
        if not self.learn_alpha:
            self.log_alpha.data.fill_(np.log(max(float(alpha), 1e-30)))
        # Adam is per-parameter, so one optimiser over the actor and log(alpha) (same step
        # size) is exactly two optimisers; the two losses share one backward pass because
        # neither depends on the other's parameters. Fused kernels: one op per step, not dozens.
        actor_parameters = [*self.actor.parameters(), *([self.log_alpha] if self.learn_alpha else [])]
        self.actor_optimizer = torch.optim.Adam(actor_parameters, lr=learning_rate, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=learning_rate, fused=True)
        self.buffer = ReplayBuffer(buffer_size, self.obs_dim, self.act_dim)
        self.demo_buffer = None if demonstrations is None else demonstration_buffer(demonstrations, self.obs_dim,
                                                                                      self.act_dim)
        self.demo_rows = int(round(demo_share * self.batch_size)) if demonstrations is not None else 0
        if demo_share > 0 and not 0 < self.demo_rows < self.batch_size:
            raise ValueError(f"demo_share {demo_share} of a minibatch of {self.batch_size} is {self.demo_rows} rows: "
                             "it must leave at least one expert and one learner row")
        self.demo_reward = None if demo_reward is None else float(demo_reward)
        self.critic_optimism = float(critic_optimism)
        self.num_timesteps = 0
        self.num_gradient_steps = 0
        # Completed episodes as (first step, end step) in num_timesteps: imitation learning's
        # cost updates read the learner's recent episodes back from the replay buffer.
        self.episode_start = 0
        self.completed_episodes: list[tuple[int, int]] = []
        self._obs, _ = env.reset(seed=seed)

    # ------------------------------------------------------------- acting
    def act(self, obs: np.ndarray, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Action(s) for observation(s) of shape ``(obs_dim,)`` or ``(N, obs_dim)``.

        :class:`~agents.interface.Policy` interface; the agent's own generator draws the
        noise (``rng`` is ignored), so acting stays part of its reproducible random stream.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1] != self.obs_dim or obs.ndim not in (1, 2):
            raise ValueError(f"observation must have shape ({self.obs_dim},) or (N, {self.obs_dim}), got {obs.shape}")
        with torch.no_grad():
            tensor = torch.from_numpy(obs).to(self.device)
            action = self.actor.deterministic(tensor) if deterministic else self.actor.sample(tensor, self.generator)[0]
        return action.cpu().numpy()

    def predict(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, None]:
        """``(action, None)``, as stable-baselines3's ``predict`` (no recurrent state)."""
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Log-density of ``actions`` under the current actor."""
        return self.policy().log_prob(obs, actions)

    def q_values(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """:class:`~agents.policies.Critic` interface: every member's Q value, shape ``(2L, N)``
        (members ``2l`` and ``2l + 1`` form pair ``l``)."""
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs_dim)
        actions = np.asarray(actions, dtype=np.float32)
        if actions.reshape(len(obs), -1).shape[1] != self.act_dim:
            raise ValueError(f"actions must have shape (N, {self.act_dim}) for {len(obs)} observations, got {actions.shape}")
        actions = actions.reshape(len(obs), self.act_dim)
        inputs = torch.from_numpy(np.concatenate([obs, actions], axis=1)).to(self.device)
        with torch.no_grad():
            return self.critic(inputs.expand(2 * self.num_critics, *inputs.shape)).squeeze(-1).cpu().numpy()

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

    def sample_minibatch(self) -> tuple[torch.Tensor, ...]:
        """One minibatch per pair on the device: ``obs, actions, rewards, next_obs, terminated``, shapes ``(L, B, ...)``.

        Rows are drawn with replacement from the replay buffer, the last ``demo_rows`` of each
        pair from the demonstrations; rewards are relabelled by ``reward_fn`` when there is
        one, and the demonstrations' rows then set to ``demo_reward`` when that is given.
        """
        L, B, D = self.num_critics, self.batch_size, self.demo_rows
        batch = self.buffer.sample(self.rng.integers(0, self.buffer.size, size=(L, B - D)))
        if D:  # the expert's rows last in every pair's minibatch
            demo = self.demo_buffer.sample(self.rng.integers(0, self.demo_buffer.size, size=(L, D)))
            batch = tuple(torch.cat([ours, theirs], dim=1) for ours, theirs in zip(batch, demo))
        obs, actions, rewards, next_obs, terminated = (x.to(self.device) for x in batch)
        if self.reward_fn is not None:
            flat = self.reward_fn(obs.reshape(L * B, -1), actions.reshape(L * B, -1), next_obs.reshape(L * B, -1))
            rewards = torch.as_tensor(flat, dtype=torch.float32, device=self.device).reshape(L, B)
        if D and self.demo_reward is not None:
            rewards = torch.cat([rewards[:, : B - D], rewards.new_full((L, D), self.demo_reward)], dim=1)
        return obs, actions, rewards, next_obs, terminated

    def train_step(self) -> dict[str, float]:
        """One gradient step of the critics, the actor and (if learned) the entropy coefficient."""
        L, B = self.num_critics, self.batch_size
        obs, actions, rewards, next_obs, terminated = self.sample_minibatch()
        alpha = self.alpha

        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(next_obs, self.generator)
            next_log_prob = next_log_prob + self.log_scale
            target = self.pair_values(self.critic_target, next_obs, next_actions).view(L, 2, B).amin(dim=1)
            target = rewards + self.gamma * (1.0 - terminated) * (target - alpha * next_log_prob)
            if self.terminal_value is not None:
                target = target + self.gamma * terminated * float(self.terminal_value())
        q = self.pair_values(self.critic, obs, actions)
        critic_loss = (q - target.repeat_interleave(2, dim=0)).pow(2).mean(dim=1).sum()
        if self.critic_optimism:
            critic_loss = critic_loss - self.critic_optimism * q.mean(dim=1).sum()
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
        q_optimistic = optimistic_value(pair_min, self.optimism, self.std_clip, form="reward")
        disagreement = pair_min.detach().std(dim=0, unbiased=False).mean() if L > 1 else torch.zeros(())
        actor_loss = (alpha * log_prob - q_optimistic).mean()
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
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha.item(),
                "critic_std": disagreement.item()}

    # ------------------------------------------------------------- learning
    def new_episode(self, seed: int | None = None) -> None:
        """Cut the current episode short (as a time-limit truncation would) and reset the environment with ``seed``.

        The cut episode's transitions stay in the replay buffer, but it is not a complete
        episode: :meth:`recent_episodes` leaves it out (a cost update compares whole
        episodes with the expert's).
        """
        self._end_episode(complete=False)
        self._obs, _ = self.env.reset(seed=seed)

    def _end_episode(self, complete: bool = True) -> None:
        if complete and self.num_timesteps > self.episode_start:
            self.completed_episodes.append((self.episode_start, self.num_timesteps))
            del self.completed_episodes[:-MAX_EPISODES_KEPT]
        self.episode_start = self.num_timesteps

    def recent_episodes(self, count: int) -> list[dict[str, np.ndarray]]:
        """The last ``count`` completed episodes still in the replay buffer, oldest first.

        Each is a dict of ``obs``, ``actions``, ``next_obs`` and ``terminated`` arrays (the
        environment's reward is left out on purpose: imitation never reads it).
        """
        episodes = []
        oldest_kept = self.num_timesteps - self.buffer.size
        for start, end in reversed(self.completed_episodes):
            if len(episodes) == count or start < oldest_kept:
                break
            index = np.arange(start, end) % self.buffer.capacity
            episodes.append({"obs": self.buffer.obs[index], "actions": self.buffer.actions[index],
                             "next_obs": self.buffer.next_obs[index], "terminated": self.buffer.terminated[index]})
        return episodes[::-1]

    def learn(
        self,
        total_timesteps: int,
        progress: bool = False,
        callback: Callback | None = None,
        logger: RunLogger | None = None,
        log_every: int = 1000,
    ) -> "SAC":
        """Interact for ``total_timesteps`` more steps, one gradient step per step after ``learning_starts``.

        Parameters
        ----------
        total_timesteps:
            Environment steps to add to :attr:`num_timesteps`.
        progress:
            Show a progress bar.
        callback:
            ``callback(agent)`` runs after every environment step and its gradient step
            (for evaluation or checkpoints); returning ``False`` stops learning there.
        logger:
            Receives, whenever :attr:`num_timesteps` is a multiple of ``log_every``, the
            losses averaged since the previous log (``train/critic_loss``,
            ``train/actor_loss``, ``train/alpha``, ``train/critic_std``: the critic pairs'
            disagreement) and ``time/steps_per_second``,
            ``time/elapsed_seconds``.
        log_every:
            Environment steps between logs (counted from the run's first step, so a
            resumed run keeps the schedule).
        """
        total_timesteps = check_non_negative_int(total_timesteps, "total_timesteps")
        log_every = check_positive_int(log_every, "log_every")
        window = MetricWindow("train")
        with flushed_denormals(self.flush_denormal):
            for _ in tqdm(range(total_timesteps), disable=not progress, desc="SAC", leave=False):
                if self.num_timesteps < self.learning_starts:
                    action = self.env.action_space.sample()
                else:
                    action = self.act(self._obs)
                next_obs, reward, terminated, truncated, _ = self.env.step(action)
                self.buffer.add(self._obs, action, reward, next_obs, terminated)
                self._obs = next_obs
                self.num_timesteps += 1
                if terminated or truncated:
                    self._end_episode()
                    self._obs, _ = self.env.reset()
                window.step()
                # From learning_starts on, whatever the batch size: minibatches are drawn with replacement
                # (as stable-baselines3 does), so a buffer smaller than a minibatch is no reason to wait.
                if self.num_timesteps >= self.learning_starts:
                    metrics = self.train_step()
                    check_finite(metrics, "SAC", self.num_timesteps, cause="a reward or weight became NaN or infinite")
                    window.add(metrics)
                if logger is not None and self.num_timesteps % log_every == 0:
                    window.log(logger, self.num_timesteps)
                if callback is not None and callback(self) is False:
                    break
        return self

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path, include_buffer: bool = False) -> None:
        """Hyperparameters, weights, optimiser states, counters and random streams (and the replay buffer
        if asked) in one torch file of tensors and plain values, readable with ``weights_only=True``."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "hyperparameters": copy.deepcopy(self.hyperparameters),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "counters": torch.tensor([self.num_timesteps, self.num_gradient_steps, self.buffer.position,
                                      self.episode_start]),
            "completed_episodes": torch.tensor(self.completed_episodes, dtype=torch.int64).reshape(-1, 2),
            # Every random stream, so a resumed run continues exactly where it stopped.
            "torch_generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "action_space_rng": self.env.action_space.np_random.bit_generator.state,
            "generator_device": self.device.type,
        }
        if include_buffer:
            b = self.buffer
            for name in _BUFFER_FIELDS:
                state[f"buffer_{name}"] = torch.from_numpy(getattr(b, name)[: b.size].copy())
        with atomic_output(path) as temporary:
            torch.save(state, temporary)

    @staticmethod
    def _read(path: str | Path) -> dict:
        try:
            state = load_torch(path, finite=False)  # weights_only=True, sizes checked
        except RefusedFile as error:
            raise ValueError(f"{path} is not a readable SAC checkpoint ({error.problem})") from None
        # NaN or infinite weights, optimiser moments or entropy coefficient are refused; the replay buffer is
        # data (an imitation run stores environment rewards it never reads, whatever they are).
        bad = first_non_finite({k: v for k, v in state.items() if not str(k).startswith("buffer_")}) \
            if isinstance(state, dict) else None
        if bad is not None:
            raise ValueError(f"{path} is not a readable SAC checkpoint ({bad} holds NaN or infinite values)")
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a SAC checkpoint of this toolkit (format {CHECKPOINT_FORMAT!r})")
        if not isinstance(state.get("hyperparameters"), dict):
            raise ValueError(f"{path} is not a SAC checkpoint of this toolkit (no hyperparameters)")
        return state

    @classmethod
    def load(cls, path: str | Path, env: gym.Env, **overrides: Any) -> "SAC":
        """A new agent on ``env`` with the hyperparameters and state that :meth:`save` wrote to ``path``.

        Parameters
        ----------
        path:
            The file (never unpickled: ``torch.load(..., weights_only=True)``; sizes it declares are
            checked against its tensors and limits before anything is built, and NaN or infinite
            tensors are refused).
        env:
            The environment to act in (not stored in the file).
        overrides:
            Constructor arguments replacing the stored ones, and ``reward_fn``,
            ``terminal_value`` and ``demonstrations``, which are never stored.
        """
        state = cls._read(path)
        unknown = sorted(set(overrides) - set(state["hyperparameters"]) - {"reward_fn", "terminal_value", "demonstrations"})
        if unknown:
            raise ValueError(f"SAC.load got unknown arguments {unknown}")
        _check_stored_sizes(state, str(path), overrides)
        try:
            agent = cls(env, **{**state["hyperparameters"], **overrides})
        except TypeError as error:  # hyperparameters of another version of this class
            raise ValueError(f"{path} holds hyperparameters this SAC does not take ({error})") from None
        agent._restore(state, path)
        return agent

    def restore(self, path: str | Path) -> "SAC":
        """Load into this agent what :meth:`save` wrote to ``path`` (never unpickles: ``weights_only=True``).

        The agent must have the file's sizes and number of critics; its other
        hyperparameters stay as they are.
        """
        self._restore(self._read(path), path)
        return self

    def _restore(self, state: dict, path: str | Path) -> None:
        stored = state["hyperparameters"].get("num_critics")
        if stored != self.num_critics:
            raise ValueError(f"{path} holds {stored} critics, this agent has {self.num_critics}")
        written_on = state.get("generator_device", "cpu")
        if written_on != self.device.type:
            # The noise generator's state is device-specific: continuing exactly needs the same kind of device.
            raise ValueError(f"{path} was written on the {written_on}, this agent runs on the {self.device.type}; "
                             f"resume it with device={written_on!r}")
        # Everything is read and checked first; the agent changes only once all of it fits, and is put
        # back as it was if a part still fails while being loaded.
        try:
            counters = [int(x) for x in state["counters"]]
            num_timesteps, num_gradient_steps, position = counters[:3]
            # Checkpoints written before episodes were recorded resume with none recorded yet.
            episode_start = counters[3] if len(counters) > 3 else num_timesteps
            recorded = state.get("completed_episodes", torch.zeros((0, 2), dtype=torch.int64))
            episodes = [tuple(int(x) for x in row) for row in recorded.reshape(-1, 2)]
            buffer = {name: state[f"buffer_{name}"].numpy() for name in _BUFFER_FIELDS if f"buffer_{name}" in state}
            for name in ("actor", "critic", "critic_target"):
                _check_state_dict(state[name], getattr(self, name).state_dict(), name)
            if not torch.isfinite(torch.as_tensor(state["log_alpha"])).all():
                raise ValueError("log_alpha is not finite")
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} does not fit this agent (other sizes or environment?): {first_line(error)}") \
                from None
        if min(num_timesteps, num_gradient_steps, position, episode_start) < 0 or episode_start > num_timesteps:
            raise ValueError(f"{path} holds inconsistent counters {counters}")
        size = len(buffer["obs"]) if buffer else 0
        if buffer and (len(buffer) != len(_BUFFER_FIELDS) or size > self.buffer.capacity
                       or any(len(values) != size for values in buffer.values())
                       or position > self.buffer.capacity):
            raise ValueError(f"{path} holds a replay buffer that does not fit this agent's "
                             f"(sizes {sorted({len(v) for v in buffer.values()})}, capacity {self.buffer.capacity})")
        before = self._snapshot()
        try:
            self.actor.load_state_dict(state["actor"])
            self.critic.load_state_dict(state["critic"])
            self.critic_target.load_state_dict(state["critic_target"])
            self.actor_optimizer.load_state_dict(state["actor_optimizer"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
            self.log_alpha.data.copy_(state["log_alpha"])
            self.generator.set_state(state["torch_generator"])
            self.rng.bit_generator.state = state["numpy_rng"]
            self.env.action_space.np_random.bit_generator.state = state["action_space_rng"]
            for name, values in buffer.items():
                getattr(self.buffer, name)[:size] = values
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
            self._apply_snapshot(before)
            raise ValueError(f"{path} does not fit this agent (other sizes or environment?): {first_line(error)}") \
                from None
        if buffer:
            # The write position, not size % capacity: once the buffer has wrapped they differ.
            self.buffer.size, self.buffer.position = size, position
        self.num_timesteps, self.num_gradient_steps = num_timesteps, num_gradient_steps
        self.episode_start, self.completed_episodes = episode_start, episodes

    def _snapshot(self) -> dict:
        """What :meth:`_restore` may change, copied (the buffer's rows are only written once all else loaded)."""
        return {
            "modules": {name: copy.deepcopy(getattr(self, name).state_dict())
                        for name in ("actor", "critic", "critic_target", "actor_optimizer", "critic_optimizer")},
            "log_alpha": self.log_alpha.detach().clone(),
            "torch_generator": self.generator.get_state(),
            "numpy_rng": copy.deepcopy(self.rng.bit_generator.state),
            "action_space_rng": copy.deepcopy(self.env.action_space.np_random.bit_generator.state),
        }

    def _apply_snapshot(self, snapshot: dict) -> None:
        for name, values in snapshot["modules"].items():
            getattr(self, name).load_state_dict(values)
        self.log_alpha.data.copy_(snapshot["log_alpha"])
        self.generator.set_state(snapshot["torch_generator"])
        self.rng.bit_generator.state = snapshot["numpy_rng"]
        self.env.action_space.np_random.bit_generator.state = snapshot["action_space_rng"]

    def policy(self, env_id: str = "") -> GaussianPolicy:
        """A detached copy of the actor as a deployable :class:`~agents.policies.GaussianPolicy`."""
        return GaussianPolicy(copy.deepcopy(self.actor).to("cpu").eval(), env_id)

    def save_policy(self, path: str | Path, env_id: str = "") -> None:
        """The actor alone, for deployment (read back with :func:`agents.policies.load_policy`)."""
        self.policy(env_id).save(path)


def check_action_box(space: gym.Space, who: str) -> None:
    """``ValueError`` unless ``space`` is a Box with finite bounds and ``high > low`` in every dimension.

    The actor squashes into the box: an infinite bound makes every action infinite and a
    zero-width one divides by zero in the log-likelihood, so the first update would be NaN.
    """
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{who} needs a Box action space, got {space}")
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError(f"{who} needs a bounded action box, got low {space.low} and high {space.high}")
    if not (high > low).all():
        raise ValueError(f"{who} needs high > low in every action dimension, got low {space.low} and high {space.high}")


def _check_state_dict(stored: Any, current: dict[str, torch.Tensor], name: str) -> None:
    """``ValueError`` unless ``stored`` has ``current``'s keys, shapes and dtypes and only finite values."""
    if not isinstance(stored, dict) or set(stored) != set(current):
        raise ValueError(f"{name} has other parameters")
    for key, tensor in current.items():
        value = stored[key]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape or value.dtype != tensor.dtype:
            raise ValueError(f"{name}.{key} has shape {getattr(value, 'shape', None)}, this agent {tuple(tensor.shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{name}.{key} holds NaN or infinite values")

