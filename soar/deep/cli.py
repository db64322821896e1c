"""``soar train``, ``soar evaluate`` and ``soar plot``: deep imitation from the command line.

Building the parser imports no torch (only the settings dataclass); the commands do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from agents.config import (
    OptionError, add_arguments, check_applicable, check_new_file, given_settings, non_negative_int, positive_int,
)
from agents.run_folder import prepare_output_dir
from soar.deep.config import TrainConfig


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``plot`` to the ``soar`` command line."""
    train = commands.add_parser(
        "train", help="imitation learning on a Gymnasium/MuJoCo task (ML-IRL, f-IRL, CSIL, GAIL, AIRL, SQIL, OPT-AIL, "
        "BC, DAgger; --critics 4 is SOAR)",
        description="Imitate expert demonstrations with SAC and a learned reward; --critics 1 is the base method, "
        "--critics 4 SOAR's optimistic critic ensemble (for every method on SAC; bc and dagger train no critic). "
        "Settings: the defaults below, then the method's own (gail, airl: discriminator_steps 100; opt-ail: "
        "critic_optimism 0.001), then the environment's YAML file in soar/deep/configs/ (Hopper-v5: steps "
        "1000000), then the options given, then --set. Writes config.json, logs/*.csv, "
        "tensorboard/, checkpoint/, policy.pt (best evaluation), final_policy.pt and evaluations.png to --out; "
        "'soar train --resume DIR' continues a killed run (pass its --env too if the stored id names a module "
        "to import, 'module:Env-v0').",
    )
    add_arguments(train, TrainConfig, only_given=True)
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any setting, e.g. --set batch_size=256 --set hidden=64,64")
    train.add_argument("--out", type=Path, help="run folder (required unless --resume)")
    train.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR with its stored settings")
    train.add_argument("--threads", type=positive_int, default=1, help="torch threads (default: %(default)s)")
    train.add_argument("--matmul-precision", choices=("highest", "high", "medium"), default="highest",
                       help="torch float32 matmul precision; 'medium' runs matmuls in bfloat16 on CPUs with "
                       "AMX/AVX512-BF16 (faster there, no gain on AVX2 alone) (default: %(default)s)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=run_train, parser=train, errors=_gymnasium_errors)

    evaluate = commands.add_parser("evaluate", help="evaluate the best policy of a soar train run",
                                   description="Run DIR/policy.pt (or --final: final_policy.pt) for deterministic "
                                   "episodes of the run's environment; print the return and its fraction of the "
                                   "expert's. With --stochastic the policy samples its actions, and the episode "
                                   "length and the policy's entropy at the states visited (16 draws per state) "
                                   "are printed too, with what SAC's entropy bonus pays for it.")
    evaluate.add_argument("dir", type=Path, help="a folder written by soar train")
    evaluate.add_argument("--env", default=None,
                          help="the run's Gymnasium id, to confirm one that names a module to import "
                          "('module:Env-v0'); ids read from config.json never import code otherwise")
    evaluate.add_argument("--episodes", type=positive_int, default=20, help="episodes (default: %(default)s)")
    evaluate.add_argument("--seed", type=non_negative_int, default=0, help="first reset seed (default: %(default)s)")
    evaluate.add_argument("--final", action="store_true", help="the final policy instead of the best one")
    evaluate.add_argument("--stochastic", action="store_true",
                          help="sample actions (as in training) and report the entropy per step")
    evaluate.set_defaults(handler=run_evaluate, parser=evaluate, errors=_gymnasium_errors)

    plot = commands.add_parser("plot", help="learning curves of soar train runs",
                               description="Deterministic return against environment steps of every run folder "
                               "given, grouped by environment, method and critics (mean and 95% t-interval over "
                               "seeds), with the expert's return as a dashed line.")
    plot.add_argument("dirs", type=Path, nargs="+", help="run folders (or folders holding run folders)")
    plot.add_argument("--out", type=Path, required=True, help="figure file (.png or .pdf); an existing one is kept "
                      "unless --force")
    plot.add_argument("--force", action="store_true", help="replace the figure --out if it exists")
    plot.set_defaults(handler=run_plot, parser=plot)


def _gymnasium_errors() -> tuple[type[Exception], ...]:
    import gymnasium

    return (gymnasium.error.Error,)


def run_train(args: argparse.Namespace) -> None:
    import gymnasium
    import torch

    from agents.untrusted import checked_env_id
    from soar.deep.config import build_config, parse_overrides, read_config
    from soar.deep.demos import load_expert
    from soar.deep.loop import run_training

    given = given_settings(TrainConfig, args)
    try:
        overrides = parse_overrides(args.set)
        if args.resume is not None:
            changes = {**given, **overrides}
            resumable = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resumable")}
            fixed = sorted(set(changes) - resumable - {"env_id"}) + (["out"] if args.out is not None else [])
            if fixed:
                raise OptionError(f"--resume continues the run with its stored settings; only {sorted(resumable)} "
                                  f"may change, drop {fixed}")
            out = args.resume
            stored = read_config(out / "config.json")
            # --env may repeat the stored id (to confirm one that names a module to import), never change it.
            confirmed = changes.pop("env_id", None)
            if confirmed is not None and confirmed != stored.env_id:
                raise ValueError(f"--resume continues the run with its stored settings; only {sorted(resumable)} "
                                 f"may change, drop ['env_id'] (the run was trained on {stored.env_id!r})")
            config = dataclasses.replace(stored, **changes)
        else:
            settings = {**given, **overrides}  # --set last, env_id and method included
            if "env_id" not in settings or args.out is None:
                raise OptionError("--env and --out are required (or --resume DIR)")
            env_id, method = settings.pop("env_id"), settings.pop("method", "ml-irl-sa")
            config = build_config(env_id, method, **settings)
            # Name the option as the user wrote it: --flag, or the key of --set key=value.
            check_applicable(config, set(given) - set(overrides), flags=True)
            check_applicable(config, overrides)
            out = args.out
    except OptionError:
        raise
    except ValueError as error:  # a setting out of range, from an option or --set: a usage error too
        raise OptionError(str(error)) from None
    if args.resume is not None:  # what the run folder says is data, not a usage error: checked here
        checked_env_id(config.env_id, str(out / "config.json"), given=given.get("env_id"))
    prepare_output_dir(out, option="--resume" if args.resume is not None else "--out")  # before any compute
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    demos = load_expert(config.demos, config.env_id, config.trajectories)
    env, eval_env = gymnasium.make(config.env_id), gymnasium.make(config.env_id)
    try:
        result = run_training(config, env, eval_env, demos, out, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"soar train: interrupted; the logs so far are kept and 'soar train --resume {out}' continues from "
              "the last checkpoint", file=sys.stderr)
        raise SystemExit(130) from None
    best = max((row["return_mean"] for row in result.history), default=float("nan"))
    print(f"best deterministic return {best:.1f} ({best / demos.return_mean:.0%} of the expert's "
          f"{demos.return_mean:.1f}); run folder {out}")


def run_evaluate(args: argparse.Namespace) -> None:
    import gymnasium
    import numpy as np

    from agents.policies import load_policy
    from agents.rollout import collect
    from agents.untrusted import checked_env_id
    from soar.deep.config import SAC_METHODS, read_config

    config = read_config(args.dir / "config.json")
    if args.env is not None and args.env != config.env_id:
        raise ValueError(f"--env {args.env}: the run was trained on {config.env_id!r}")
    env_id = checked_env_id(config.env_id, str(args.dir / "config.json"), given=args.env)
    policy = load_policy(args.dir / ("final_policy.pt" if args.final else "policy.pt"))
    episodes = collect(policy, gymnasium.make(env_id), args.episodes, seed=args.seed, deterministic=not args.stochastic)
    returns = np.array([episode.episode_return for episode in episodes])
    expert = json.loads((args.dir / "expert.json").read_text()).get("return_mean")
    if not isinstance(expert, (int, float)):
        raise ValueError(f"{args.dir / 'expert.json'} holds no expert return_mean")
    print(f"{config.env_id} {config.method} L={config.critics} seed {config.seed}: return {returns.mean():.1f} +- "
          f"{returns.std():.1f} over {args.episodes} {'sampled' if args.stochastic else 'deterministic'} episodes "
          f"({returns.mean() / expert:.0%} of the expert's {expert:.1f})")
    if args.stochastic:
        # The entropy the policy keeps where it goes is what SAC pays alpha for at every step: a bonus a
        # learned reward has to outweigh. SAC measures it on the [-1, 1] box it squashes to.
        visited = np.concatenate([episode.obs[:-1] for episode in episodes])
        entropy = float(policy.entropy(visited, rng=np.random.default_rng(args.seed)).mean())
        line = (f"sampled actions: episodes of {np.mean([len(e.acts) for e in episodes]):.0f} steps on average, "
                f"entropy {entropy:.3f} nats per step at the states visited")
        if config.method in SAC_METHODS:
            squashed = entropy - policy.log_half_widths
            bonus = config.alpha * squashed
            line += (f"; SAC's entropy bonus alpha * H = {bonus:.3f} per step (H on SAC's [-1, 1] box: "
                     f"{squashed:.3f} nats), {bonus / (1 - config.gamma):.1f} discounted over an endless episode "
                     f"(gamma {config.gamma:g})")
        print(line)


def run_plot(args: argparse.Namespace) -> None:
    from soar.deep.plot import find_runs, plot_runs

    out = check_new_file(args.out, args.force)
    runs = find_runs(args.dirs)
    plot_runs(runs, out)
    print(f"wrote {args.out} ({len(runs)} runs)")
