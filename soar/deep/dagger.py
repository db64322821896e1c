"""DAgger: behavioural cloning on the states the learner visits, labelled by the expert policy.

    D <- the demonstrations' (s, a);  pi <- BC on D (bc_steps)
    repeat until `steps` environment steps:
        act with pi (its own sampled actions) for `dagger_every` steps;
        at every visited state s ask the expert for its action (one expert query)
        D <- D + {(s, expert(s))};  pi <- pi after `dagger_bc_steps` more BC steps on D

(beta = 0 after the first round: the expert never acts, it only labels). Every label is an
expert query, counted as ``mail`` counts them and logged as ``train/expert_queries`` at each
aggregation; here every visited state is labelled, so queries equal environment steps (the
states of a last, unfinished round are labelled but not learnt from: choose ``steps`` a
multiple of ``dagger_every``, as the defaults are).
The expert is the bundled policy for the environment or a policy file (``expert_policy``);
its deterministic action is the label. Checkpoints hold the policy, its optimiser, the
aggregated data and the random streams, so a killed run resumes exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.demonstrations import Demonstrations
from agents.harness import Schedule, TrainingRun, episode_seed, read_progress
from agents.logger import stopping_note
from agents.policies import GaussianPolicy, load_policy
from agents.sac import resolve_device
from agents.untrusted import load_torch
from soar.deep.bc import maximum_likelihood, new_policy
from soar.deep.config import TrainConfig
from soar.deep.results import EVAL_SEED, TrainResult, check_spaces, expert_tensors, write_expert_summary


def load_expert_policy(source: str, env_id: str) -> GaussianPolicy:
    """The labelling expert: ``"bundled"`` (the package's policy for ``env_id``) or a policy file."""
    if source == "bundled":
        from agents.experts import bundled_policy

        return bundled_policy(env_id)
    return load_policy(Path(source))  # weights only, never unpickled


def check_expert(expert, env: gym.Env, env_id: str, source: str) -> None:
    """``ValueError`` unless a policy file's expert was made for ``env_id`` (when it says) and for its sizes."""
    recorded = getattr(expert, "env_id", "")
    if recorded and recorded != env_id:
        raise ValueError(f"expert_policy {source} is a policy for {recorded}, not for {env_id}")
    actor = getattr(expert, "actor", None)
    if actor is not None:
        first = next(layer for layer in (*actor.trunk, actor.mean) if isinstance(layer, torch.nn.Linear))
        sizes = (first.in_features, actor.mean.out_features)
        wanted = (env.observation_space.shape[0], env.action_space.shape[0])
        if sizes != wanted:
            raise ValueError(f"expert_policy {source} maps {sizes[0]} observations to {sizes[1]} actions, {env_id} "
                             f"has {wanted[0]} and {wanted[1]}")


def run_dagger(config: TrainConfig, env: gym.Env, eval_env: gym.Env, demos: Demonstrations, out: str | Path,
               progress: bool = False) -> TrainResult:
    """Run (or resume) DAgger in ``out``; see the module docstring."""
    check_spaces(env)
    device = resolve_device(config.device)
    expert = load_expert_policy(config.expert_policy, config.env_id)
    check_expert(expert, env, config.env_id, config.expert_policy)
    policy = new_policy(env, config.hidden, config.seed, device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.bc_lr)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)  # the learner's action noise
    demo = expert_tensors(demos, env, device, horizon=0)
    data = {"obs": demo["obs"], "labels": demo["actions"]}
    state = {"step": 0, "queries": 0}
    schedule = Schedule(config.steps, config.eval_every, config.checkpoint_every)

    with TrainingRun(out, config, schedule, eval_env, config.eval_episodes, eval_seed=EVAL_SEED + 1000 * config.seed,
                     reference_return=demos.return_mean, title=f"{config.env_id} dagger", progress=progress) as run:
        def restore(folder: Path) -> dict:
            saved = load_torch(folder / "dagger.pt")  # weights_only, sizes and finiteness checked
            if int(saved["step"]) != read_progress(folder)["step"]:
                raise ValueError("dagger.pt and progress.json disagree on the step")
            # Into copies first: nothing changes unless all of it fits.
            trial_policy = copy.deepcopy(policy)
            trial_policy.load_state_dict(saved["policy"])
            torch.optim.Adam(trial_policy.parameters(), lr=config.bc_lr).load_state_dict(saved["optimizer"])
            np.random.default_rng().bit_generator.state = saved["numpy_rng"]
            torch.Generator(device=device).set_state(saved["torch_generator"])
            for name, width in (("obs", demo["obs"].shape[1]), ("labels", demo["actions"].shape[1])):
                for key in (name, f"pending_{name}"):
                    if saved[key].ndim != 2 or saved[key].shape[1] != width:
                        raise ValueError(f"dagger.pt's {key} has shape {tuple(saved[key].shape)}")
            policy.load_state_dict(saved["policy"])
            optimizer.load_state_dict(saved["optimizer"])
            rng.bit_generator.state = saved["numpy_rng"]
            generator.set_state(saved["torch_generator"])
            return saved

        saved = run.resume(restore)
        write_expert_summary(Path(out), demos)
        if saved is None:
            nll = maximum_likelihood(policy, optimizer, data["obs"], data["labels"], config.bc_steps, config.bc_batch,
                                     rng, where="dagger fit")
            run.logger.log(0, {"train/bc_negative_log_likelihood": nll, "train/expert_queries": 0,
                               "train/dataset_size": len(data["obs"])})
        else:
            data = {"obs": saved["obs"].to(device), "labels": saved["labels"].to(device)}
            state = {"step": int(saved["step"]), "queries": int(saved["queries"])}

        def deployed() -> GaussianPolicy:
            return GaussianPolicy(copy.deepcopy(policy).to("cpu").eval(), config.env_id)

        def pending(rows: list[np.ndarray], width: int) -> torch.Tensor:
            return torch.from_numpy(np.asarray(rows, np.float32).reshape(-1, width))

        def save(staging: Path) -> None:
            torch.save({"policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
                        "numpy_rng": rng.bit_generator.state, "torch_generator": generator.get_state(),
                        "obs": data["obs"].cpu(), "labels": data["labels"].cpu(),
                        # Labelled since the last aggregation, not yet learnt from.
                        "pending_obs": pending(new_obs, data["obs"].shape[1]),
                        "pending_labels": pending(new_labels, data["labels"].shape[1]),
                        "step": state["step"], "queries": state["queries"]}, staging / "dagger.pt")

        new_obs: list[np.ndarray] = [] if saved is None else list(saved["pending_obs"].numpy())
        new_labels: list[np.ndarray] = [] if saved is None else list(saved["pending_labels"].numpy())
        obs, _ = env.reset(seed=episode_seed(config.seed, state["step"]))
        while state["step"] < config.steps:
            with torch.no_grad():
                action = policy.sample(torch.as_tensor(obs, dtype=torch.float32, device=device)[None],
                                       generator)[0][0].cpu().numpy()
            label = np.asarray(expert.act(obs, deterministic=True), dtype=np.float32)
            # Checked here, before a checkpoint could store them with the pending pairs (and refuse to resume).
            for name, values in (("observation", obs), ("expert's label", label)):
                if not np.all(np.isfinite(values)):
                    raise FloatingPointError(
                        f"dagger: the {name} at step {state['step']} is {np.asarray(values).tolist()}; "
                        + stopping_note(state["step"]))
            new_obs.append(np.asarray(obs, dtype=np.float32))
            new_labels.append(label)
            state["queries"] += 1
            obs, _, terminated, truncated, _ = env.step(action)
            state["step"] += 1
            if terminated or truncated:
                obs, _ = env.reset()
            metrics = {}
            # Only on the round's schedule, not at the budget's end: a longer budget resumes the same run.
            if state["step"] % config.dagger_every == 0:
                data = {"obs": torch.cat([data["obs"], torch.from_numpy(np.stack(new_obs)).to(device)]),
                        "labels": torch.cat([data["labels"], torch.from_numpy(np.stack(new_labels)).to(device)])}
                new_obs, new_labels = [], []
                nll = maximum_likelihood(policy, optimizer, data["obs"], data["labels"], config.dagger_bc_steps,
                                         config.bc_batch, rng, where="dagger fit", step=state["step"])
                metrics = {"train/bc_negative_log_likelihood": nll, "train/dataset_size": len(data["obs"])}
            if metrics or run.schedule.evaluates_at(state["step"]):  # the count beside every evaluation too
                run.logger.log(state["step"], {**metrics, "train/expert_queries": state["queries"],
                                               "time/elapsed_seconds": run.logger.elapsed_seconds()})
            run.after_step(state["step"], deployed, save)
            if run.schedule.checkpoints_at(state["step"]):  # as SAC does: a checkpoint ends the episode
                obs, _ = env.reset(seed=episode_seed(config.seed, state["step"]))
        final = deployed()
        final.save(Path(out) / "final_policy.pt")
        return TrainResult(final, None, list(run.evaluations), Path(out))
