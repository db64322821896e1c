"""Reproduce the tabular SOAR experiment and look for the regime where optimism pays.

    python scripts/reproduce_soar_tabular.py [--seeds 10] [--out runs/soar_tabular]
    python scripts/reproduce_soar_tabular.py --out docs/soar_tabular   # the published run of the README

Runs, for L in {1, 2, 3, 5, 10}:

1. the reference experiment: two-state MDP (20 actions, gamma 0.99), 100 expert
   samples, optimism (the paper's beta) 1e-3, eta_c 0.9, eta 4, state-only occupancies (as
   the research code), 100 fresh learner states per iteration for the cost step, 300 iterations;
   the same with the models' trajectories as the learner's sample (no fresh states), with
   optimism 10, and with state-action occupancies (an easy variant: the expert's data name
   the good action);
2. the same reference settings on RiverSwim (6 states, gamma 0.95): state-action occupancies,
   300 iterations, and state-only (the expert's actions are hidden, so the learner must find
   them by exploring) for optimism in {1e-3, 1}, 1000 iterations;
3. the comparison critics (min over the ensemble, count-based UCB) on RiverSwim.

Writes one plot per setting, CSVs under ``OUT/csv/`` and ``results.md`` with the tables of
MDP samples and iterations to 95% of the expert's value.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.config import ArgumentParser, positive_int, run_command
from soar import experiment
from soar.experiment import SweepConfig

SETTINGS = {
    "two_state": SweepConfig(env="two-state", occupancy="state", iterations=300),
    "two_state_models_only": SweepConfig(env="two-state", occupancy="state", learner_samples=0, iterations=300),
    "two_state_beta10": SweepConfig(env="two-state", occupancy="state", optimism=10.0, iterations=300),
    "two_state_state_action": SweepConfig(env="two-state", iterations=100),
    "river_swim": SweepConfig(env="river-swim", iterations=300),
    "river_swim_state_only": SweepConfig(env="river-swim", occupancy="state", iterations=1000),
    "river_swim_state_only_beta1": SweepConfig(env="river-swim", occupancy="state", optimism=1.0, iterations=1000),
    "river_swim_min": SweepConfig(env="river-swim", critic="min", iterations=300),
    "river_swim_ucb": SweepConfig(env="river-swim", critic="ucb", optimism=0.1, iterations=300),
}
ENSEMBLE_SIZES = (1, 2, 3, 5, 10)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="reproduce_soar_tabular.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds per ensemble size (default: 10)")
    parser.add_argument("--out", type=Path, default=Path("runs/soar_tabular"),
                        help="output directory (default: %(default)s; the README's published results are "
                        "--out docs/soar_tabular)")
    args = parser.parse_args(argv)
    run_command(parser, lambda: reproduce(args))


def reproduce(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)  # a bad --out fails now, not after the runs
    report = ["# Tabular SOAR: samples and iterations to 95% of the expert's value", ""]
    total_start = time.perf_counter()
    for name, config in SETTINGS.items():
        start = time.perf_counter()
        rows = experiment.run_sweep(config, ENSEMBLE_SIZES, range(args.seeds))
        elapsed = time.perf_counter() - start
        experiment.write_csv(rows, args.out / "csv" / f"{name}.csv")  # git-ignored: large
        learner = (f"{config.learner_samples} fresh learner states per iteration" if config.learner_samples
                   else "the models' trajectories as the learner's sample")
        setting = f"{config.env}, {config.occupancy}, {config.critic} critic, optimism={config.optimism:g}"
        title = f"{setting}, {learner}"
        experiment.plot_sweep(rows, args.out / f"{name}.png", title=f"{setting}\n{learner}")
        table = experiment.format_threshold_table(experiment.threshold_table(rows))
        heading = (f"## {name}: {title}; {config.iterations} iterations, {args.seeds} seeds, "
                   f"expert value {rows[0]['expert_value']:.3f} ({elapsed:.1f} s)")
        print(f"{heading}\n\n{table}\n")
        report += [heading, "", table, "", f"![{name}]({name}.png)", ""]
    total = time.perf_counter() - total_start
    report.append(f"Total run time: {total:.0f} s.")
    (args.out / "results.md").write_text("\n".join(report) + "\n")
    print(f"wrote {args.out}/results.md and one CSV and PNG per setting ({total:.0f} s)")


if __name__ == "__main__":
    main()
