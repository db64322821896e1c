"""Command line of the SOAR half of the toolkit: ``soar tabular ...`` (or ``python -m soar``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from soar import experiment
from soar.tabular import CRITICS, OCCUPANCIES


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soar", description="SOAR imitation learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser(
        "tabular",
        help="tabular SOAR-IL over ensemble sizes and seeds",
        description="Run tabular SOAR-IL for every ensemble size and seed; write a tidy CSV, a plot "
        "of the true value against MDP samples, and a table of samples and iterations to 95%% of "
        "the expert's value.",
    )
    defaults = experiment.SweepConfig()
    sweep.add_argument("--env", choices=sorted(experiment.ENVIRONMENTS), default=defaults.env,
                       help="tabular MDP (default: %(default)s)")
    sweep.add_argument("--critics", type=_positive_int, nargs="+", default=[1, 2, 3, 5, 10],
                       help="ensemble sizes L to run (default: %(default)s)")
    sweep.add_argument("--seeds", type=_positive_int, default=10, help="number of seeds, 0..N-1 (default: %(default)s)")
    sweep.add_argument("--iterations", type=_positive_int, default=defaults.iterations,
                       help="primal-dual iterations per run (default: %(default)s)")
    sweep.add_argument("--critic", choices=CRITICS, default=defaults.critic,
                       help="optimistic (mean - beta std), min over the ensemble, or a count-based ucb bonus "
                       "(default: %(default)s)")
    sweep.add_argument("--occupancy", choices=OCCUPANCIES, default=defaults.occupancy,
                       help="occupancy matched by the cost update (default: %(default)s)")
    sweep.add_argument("--beta", type=_non_negative_float, default=defaults.beta,
                       help="optimism strength (default: %(default)s)")
    sweep.add_argument("--expert-samples", type=_positive_int, default=defaults.expert_samples,
                       help="expert state-action samples (default: %(default)s)")
    sweep.add_argument("--cost-step", type=_positive_float, default=defaults.cost_step,
                       help="cost step size eta_c (default: %(default)s)")
    sweep.add_argument("--policy-step", type=_positive_float, default=defaults.policy_step,
                       help="mirror-descent step size eta (default: %(default)s)")
    sweep.add_argument("--out", type=Path, required=True, help="output directory")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run_tabular(args: argparse.Namespace) -> None:
    config = experiment.SweepConfig(
        env=args.env, critic=args.critic, occupancy=args.occupancy, beta=args.beta,
        iterations=args.iterations, expert_samples=args.expert_samples,
        cost_step=args.cost_step, policy_step=args.policy_step,
    )
    start = time.perf_counter()
    rows = experiment.run_sweep(config, args.critics, range(args.seeds), progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    out: Path = args.out
    experiment.write_csv(rows, out / "soar_tabular.csv")
    title = f"tabular SOAR ({config.critic}, {config.occupancy}, beta={config.beta:g}) on {config.env}"
    experiment.plot_sweep(rows, out / "soar_tabular.png", title=title)
    table = experiment.format_threshold_table(experiment.threshold_table(rows))
    (out / "summary.md").write_text(f"{title}; {args.seeds} seeds; {elapsed:.1f} s\n\n{table}\n")
    print(f"{title}, {args.seeds} seeds, expert value {rows[0]['expert_value']:.3f}\n\n{table}\n")
    print(f"wrote {out / 'soar_tabular.csv'}, {out / 'soar_tabular.png'}, {out / 'summary.md'} ({elapsed:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "tabular":
        run_tabular(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
