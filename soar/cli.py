"""Command line of the SOAR half of the toolkit: ``soar tabular ...`` (or ``python -m soar``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.config import ArgumentParser, add_arguments, from_arguments, non_negative_int, positive_int, run_command
from soar import experiment
from soar.deep import cli as deep_cli


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="soar", description="SOAR imitation learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser(
        "tabular",
        help="tabular SOAR-IL over ensemble sizes and seeds",
        description="Run tabular SOAR-IL for every ensemble size and seed; write a tidy CSV, a plot "
        "of the true value against MDP samples, and a table of samples and iterations to 95% of "
        "the expert's value.",
    )
    sweep.add_argument("--critics", type=positive_int, nargs="+", default=[1, 2, 3, 5, 10],
                       help="ensemble sizes L to run (default: %(default)s)")
    sweep.add_argument("--seeds", type=positive_int, default=10, help="number of seeds, 0..N-1 (default: %(default)s)")
    # Only the options given reach the config, so that one that does not apply to the critic is refused.
    add_arguments(sweep, experiment.SweepConfig, only_given=True)
    sweep.add_argument("--out", type=Path, required=True, help="output directory")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(handler=run_tabular, parser=sweep)

    expert = commands.add_parser("expert", help="train experts and roll them out into demonstrations")
    expert_commands = expert.add_subparsers(dest="expert_command", required=True)
    train = expert_commands.add_parser(
        "train", help="train a SAC expert (resumes from DIR/checkpoint)",
        description="Train a SAC expert with stable-baselines3 (rl-zoo3 MuJoCo hyperparameters) or this "
        "toolkit's SAC; evaluate it every --eval-every steps and keep the best deterministic policy as "
        "DIR/policy.pt; log to DIR/logs/*.csv and DIR/tensorboard. Re-running the same command (with "
        "--steps as large or larger) resumes an interrupted run from its last checkpoint.",
    )
    from agents.experts import ExpertConfig

    add_arguments(train, ExpertConfig)
    train.add_argument("--out", type=Path, required=True, help="output directory")
    train.add_argument("--threads", type=positive_int, default=1, help="torch threads (default: %(default)s)")
    train.add_argument("--matmul-precision", choices=("highest", "high", "medium"), default="highest",
                       help="torch float32 matmul precision; 'medium' runs matmuls in bfloat16 on CPUs with "
                       "AMX/AVX512-BF16, about 1.5-2x faster training (default: %(default)s)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=run_expert_train, parser=train, errors=gymnasium_errors)

    rollout = expert_commands.add_parser(
        "rollout", help="roll a policy out into a demonstration file",
        description="Roll a policy (this toolkit's policy.pt, or a stable-baselines3 SAC .zip, read without "
        "unpickling) out for whole episodes and write them, with their return statistics, as an .npz "
        "demonstration file (format: agents/demonstrations.py).",
    )
    rollout.add_argument("--policy", type=Path, required=True, help="policy file")
    rollout.add_argument("--env", default=None, help="Gymnasium id (default: the one stored in the policy file)")
    rollout.add_argument("--episodes", type=positive_int, default=16, help="episodes (default: %(default)s)")
    rollout.add_argument("--seed", type=non_negative_int, default=0, help="first reset seed (default: %(default)s)")
    rollout.add_argument("--stochastic", action="store_true",
                         help="sample actions instead of acting with the policy's mean")
    rollout.add_argument("--out", type=Path, required=True, help="demonstration file to write (.npz)")
    rollout.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rollout.set_defaults(handler=run_expert_rollout, parser=rollout, errors=gymnasium_errors)
    deep_cli.add_commands(commands)
    return parser


def run_tabular(args: argparse.Namespace) -> None:
    config = from_arguments(experiment.SweepConfig, args)
    args.out.mkdir(parents=True, exist_ok=True)  # a bad --out fails now, not after the runs
    start = time.perf_counter()
    rows = experiment.run_sweep(config, args.critics, range(args.seeds), progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    out: Path = args.out
    experiment.write_csv(rows, out / "soar_tabular.csv")
    title = f"tabular SOAR ({config.critic}, {config.occupancy}, optimism={config.optimism:g}) on {config.env}"
    experiment.plot_sweep(rows, out / "soar_tabular.png", title=title)
    table = experiment.format_threshold_table(experiment.threshold_table(rows))
    (out / "summary.md").write_text(f"{title}; {args.seeds} seeds; {elapsed:.1f} s\n\n{table}\n")
    print(f"{title}, {args.seeds} seeds, expert value {rows[0]['expert_value']:.3f}\n\n{table}\n")
    print(f"wrote {out / 'soar_tabular.csv'}, {out / 'soar_tabular.png'}, {out / 'summary.md'} ({elapsed:.1f} s)")


def run_expert_train(args: argparse.Namespace) -> None:
    import torch

    from agents.experts import ExpertConfig, train_expert

    config = from_arguments(ExpertConfig, args)
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    result = train_expert(config, args.out, progress=not args.no_progress)
    print(f"best deterministic return {result.best_return:.1f}; policy at {result.policy_path}")


def run_expert_rollout(args: argparse.Namespace) -> None:
    import gymnasium

    from agents.demonstrations import Demonstrations, save_demonstrations
    from agents.policies import load_policy
    from agents.rollout import collect

    policy = load_policy(args.policy)
    env_id = args.env or policy.env_id
    if not env_id:
        raise ValueError(f"{args.policy} does not record its environment: pass --env")
    env = gymnasium.make(env_id)
    if env.observation_space.shape != (policy.obs_dim,) or env.action_space.shape != (policy.act_dim,):
        raise ValueError(
            f"{args.policy} maps {policy.obs_dim} observations to {policy.act_dim} actions, but {env_id} has "
            f"observation shape {env.observation_space.shape} and action shape {env.action_space.shape}"
        )
    mode = "stochastic" if args.stochastic else "deterministic"
    trajectories = collect(policy, env, args.episodes, seed=args.seed, deterministic=not args.stochastic,
                           progress=not args.no_progress)
    demos = Demonstrations(trajectories, env_id=env_id,
                           source=f"{args.policy.name}, {mode}, seeds {args.seed}..{args.seed + args.episodes - 1}")
    save_demonstrations(demos, args.out)
    print(f"wrote {args.out}: {demos.summary()}")


def gymnasium_errors() -> tuple[type[Exception], ...]:
    """Gymnasium's errors (an unknown environment id, ...): bad input too, imported only where needed."""
    import gymnasium

    return (gymnasium.error.Error,)


def main(argv: list[str] | None = None) -> int:
    """Run one ``soar`` command; bad input ends it with one line ``soar COMMAND: message``, never a traceback."""
    args = build_parser().parse_args(argv)
    errors = args.errors() if hasattr(args, "errors") else ()
    run_command(args.parser, lambda: args.handler(args), errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
