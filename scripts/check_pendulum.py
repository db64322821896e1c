"""Learning check: this SAC with L = 1 against stable-baselines3's SAC on Pendulum-v1.

    python scripts/check_pendulum.py [--steps 15000] [--seeds 3] [--jobs 1] [--out runs/sac]
    python scripts/check_pendulum.py --out docs/sac   # the published check

Both use the same hyperparameters (256x256, lr 3e-4, batch 256, buffer 1e6, tau 0.005,
gamma 0.99, learned entropy coefficient, 1000 uniformly random warm-up steps), one torch
thread each, and the same evaluation: every 1000 steps, 10 deterministic episodes with
reset seeds 10000..10009, through the toolkit's own ``agents.rollout.evaluate``. Passing
``--precision medium`` also runs this SAC with bf16 matmuls (``float32_matmul_precision``).
Writes ``pendulum.csv`` (one row per evaluation), ``pendulum.png`` and ``pendulum.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np

FIELDS = {"learner": str, "seed": int, "step": int, "return_mean": float, "seconds": float}
EVAL_EVERY, EVAL_EPISODES, WARMUP = 1000, 10, 1000


def train_one(job: tuple[str, int, int]) -> list[dict]:
    learner, seed, steps = job
    import gymnasium as gym
    import torch

    from agents.rollout import evaluate
    from agents.policies import policy_from_sb3_actor_weights

    torch.set_num_threads(1)
    torch.set_float32_matmul_precision("medium" if learner.endswith("bf16") else "highest")
    env, eval_env = gym.make("Pendulum-v1"), gym.make("Pendulum-v1")
    rows: list[dict] = []
    start = time.perf_counter()

    def log(step: int, policy) -> None:
        returns = evaluate(policy, eval_env, EVAL_EPISODES, seed=10_000)
        rows.append({"learner": learner, "seed": seed, "step": step, "return_mean": float(returns.mean()),
                     "seconds": round(time.perf_counter() - start, 1)})

    if learner == "sb3":
        from stable_baselines3 import SAC as SB3SAC
        from stable_baselines3.common.callbacks import BaseCallback

        model = SB3SAC("MlpPolicy", env, learning_starts=WARMUP, seed=seed, verbose=0)
        low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (env.action_space.low, env.action_space.high))

        class Hook(BaseCallback):
            def _on_step(self) -> bool:
                if self.model.num_timesteps % EVAL_EVERY == 0:
                    log(self.model.num_timesteps, policy_from_sb3_actor_weights(self.model.policy.state_dict(), low, high))
                return True

        model.learn(steps, callback=Hook())
    else:
        from agents.sac import SAC

        agent = SAC(env, num_critics=1, learning_starts=WARMUP, seed=seed)

        def hook(agent: SAC) -> None:
            if agent.num_timesteps % EVAL_EVERY == 0:
                log(agent.num_timesteps, agent.policy())

        agent.learn(steps, callback=hook)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15_000, help="environment steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one torch thread each)")
    parser.add_argument("--precision", choices=("highest", "medium"), nargs="+", default=["highest"],
                        help="matmul precisions for this SAC ('medium': bf16 matmuls)")
    parser.add_argument("--out", type=Path, default=Path("runs/sac"),
                        help="output directory (default: %(default)s; the published check is --out docs/sac)")
    args = parser.parse_args()
    if args.steps < EVAL_EVERY or args.seeds < 1 or args.jobs < 1:
        parser.error(f"need --steps >= {EVAL_EVERY}, --seeds >= 1, --jobs >= 1")

    from tqdm.auto import tqdm

    from agents.records import write_rows

    learners = ["sb3"] + [{"highest": "ours", "medium": "ours-bf16"}[p] for p in args.precision]
    jobs = [(learner, seed, args.steps) for seed in range(args.seeds) for learner in learners]
    start = time.perf_counter()
    rows: list[dict] = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for result in tqdm(pool.imap_unordered(train_one, jobs), total=len(jobs), desc="Pendulum runs"):
            rows += result
    elapsed = time.perf_counter() - start
    rows.sort(key=lambda r: (r["learner"], r["seed"], r["step"]))
    write_rows(rows, args.out / "pendulum.csv", FIELDS)

    lines = [f"Pendulum-v1, {args.steps} steps, seeds 0..{args.seeds - 1}, {elapsed / 60:.1f} min "
             f"({args.jobs} parallel run(s), one torch thread each)", "",
             "| learner | final return per seed | mean | best-so-far mean | seconds per run (median) |",
             "|---|---|---|---|---|"]
    for learner in learners:
        mine = [r for r in rows if r["learner"] == learner]
        final = [r["return_mean"] for r in mine if r["step"] == args.steps]
        best = [max(r["return_mean"] for r in mine if r["seed"] == s) for s in range(args.seeds)]
        seconds = np.median([r["seconds"] for r in mine if r["step"] == args.steps])
        lines.append(f"| {learner} | {', '.join(f'{x:.0f}' for x in final)} | {np.mean(final):.0f} | "
                     f"{np.mean(best):.0f} | {seconds:.0f} |")
    table = "\n".join(lines)
    (args.out / "pendulum.md").write_text(table + "\n")
    print(table)
    plot(rows, learners, args.out / "pendulum.png")


def plot(rows: list[dict], learners: list[str], path: Path) -> None:
    """Mean return over seeds per learner, shaded from the worst to the best seed; legend right of the axes."""
    from agents import plotting

    figure, axes = plotting.new_figure(width=8, height=4)
    ax = axes[0, 0]
    seeds = []
    for color, learner in zip(("C0", "C1", "C2"), learners):
        mine = [r for r in rows if r["learner"] == learner]
        steps = sorted({r["step"] for r in mine})
        seed_ids = sorted({r["seed"] for r in mine})
        curves = np.array([[r["return_mean"] for r in mine if r["seed"] == s] for s in seed_ids])
        ax.plot(steps, curves.mean(axis=0), color=color, label=learner)
        plotting.draw_band(ax, steps, curves.min(axis=0), curves.max(axis=0), color)
        seeds.append(len(curves))
    ax.axhline(-300, color="grey", linestyle="--", linewidth=1, label="-300")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic return (10 episodes)")
    ax.set_title("Pendulum-v1: mean over seeds")
    plotting.legend_outside(ax, extra=[plotting.band_handle(plotting.band_text(
        f"min..max over {plotting.count_text(seeds, 'seeds')}"))])
    plotting.save_figure(figure, path, dpi=120)


if __name__ == "__main__":
    main()
