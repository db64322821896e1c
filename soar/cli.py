"""Command line of the SOAR half of the toolkit: ``soar tabular ...`` (or ``python -m soar``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.config import ArgumentParser, add_arguments, from_arguments, non_negative_int, positive_int, run_command
from agents.checkpoints import write_text_atomic
from agents.run_folder import StopOnInterrupt, prepare_output_dir, prepare_output_file
from soar import experiment
from soar.bench import cli as bench_cli
from soar.deep import cli as deep_cli


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="soar", description="SOAR imitation learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser(
        "tabular",
        help="tabular SOAR-IL over ensemble sizes and seeds",
        description="Run tabular SOAR-IL for every ensemble size and seed; write a tidy CSV, a plot "
        "of the true value against model trajectories and iterations, and a table of the trajectories, "
        "iterations and environment steps to 95% of the expert's value.",
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
    rollout.add_argument("--env", default=None,
                         help="Gymnasium id (default: the one stored in the policy file, unless it names a module "
                         "to import, 'module:Env-v0', which runs only when given here)")
    rollout.add_argument("--episodes", type=positive_int, default=16, help="episodes (default: %(default)s)")
    rollout.add_argument("--seed", type=non_negative_int, default=0, help="first reset seed (default: %(default)s)")
    rollout.add_argument("--stochastic", action="store_true",
                         help="sample actions instead of acting with the policy's mean")
    rollout.add_argument("--out", type=Path, required=True, help="demonstration file to write (.npz)")
    rollout.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rollout.set_defaults(handler=run_expert_rollout, parser=rollout, errors=gymnasium_errors)
    deep_cli.add_commands(commands)
    bench_cli.add_commands(commands)
    return parser


def run_tabular(args: argparse.Namespace) -> None:
    config = from_arguments(experiment.SweepConfig, args)
    out = prepare_output_dir(args.out)  # a bad --out fails now, not after the runs
    start = time.perf_counter()
    rows: list[dict] = []
    with StopOnInterrupt() as interrupt:
        experiment.run_sweep(config, args.critics, range(args.seeds), progress=not args.no_progress, rows=rows)
    elapsed = time.perf_counter() - start
    if not rows:
        raise SystemExit("soar tabular: interrupted before the first run finished; nothing written")
    experiment.write_csv(rows, out / "soar_tabular.csv")
    title = f"tabular SOAR ({config.critic}, {config.occupancy}, optimism={config.optimism:g}) on {config.env}"
    experiment.plot_sweep(rows, out / "soar_tabular.png", title=title)
    table = experiment.format_threshold_table(experiment.threshold_table(rows))
    finished = len({(row["num_critics"], row["seed"]) for row in rows})
    planned = len(args.critics) * args.seeds
    runs = f"{args.seeds} seeds" if finished == planned else f"{finished} of {planned} runs (interrupted)"
    write_text_atomic(out / "summary.md", f"{title}; {runs}; {elapsed:.1f} s\n\n{table}\n")
    print(f"{title}, {runs}, expert value {rows[0]['expert_value']:.3f}\n\n{table}\n")
    print(f"wrote {out / 'soar_tabular.csv'}, {out / 'soar_tabular.png'}, {out / 'summary.md'} ({elapsed:.1f} s)")
    if interrupt.happened:
        raise SystemExit(130)


def run_expert_train(args: argparse.Namespace) -> None:
    import torch

    from agents.experts import ExpertConfig, train_expert

    config = from_arguments(ExpertConfig, args)
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    prepare_output_dir(args.out)
    try:
        result = train_expert(config, args.out, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"soar expert train: interrupted; the logs and policy.pt so far are kept, and the same command "
              f"continues from the last checkpoint in {args.out}", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"best deterministic return {result.best_return:.1f}; policy at {result.policy_path}")


def run_expert_rollout(args: argparse.Namespace) -> None:
    import gymnasium

    from agents.demonstrations import Demonstrations, save_demonstrations
    from agents.policies import load_policy
    from agents.rollout import collect
    from agents.untrusted import checked_env_id

    prepare_output_file(args.out)
    policy = load_policy(args.policy)
    if not (args.env or policy.env_id):
        raise ValueError(f"{args.policy} does not record its environment: pass --env")
    # The id stored in the file is data: it may not name a module to import unless the user typed it.
    env_id = args.env or checked_env_id(policy.env_id, str(args.policy))
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
    save_demonstrations(demos, args.out)  # checked by the loader's own checks: never an unloadable file
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
