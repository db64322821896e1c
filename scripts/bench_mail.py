"""Throughput of the MAIL algorithms: iterations and expert queries per second.

    python scripts/bench_mail.py [--seconds 3]

On the lower-bound game (7 states, 3x3 actions) and a 200-state random
zero-sum game (3x3 actions), each algorithm runs for a fixed number of
iterations (scaled so a run takes about ``--seconds``); the Nash-gap logging is
reduced to the two end points so it does not dominate. Prints a table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents import tabular
from envs import games
from mail import ExpertOracle, bc, expert_dataset, mail_bro, murmail


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="target seconds per measurement (default: 3)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    settings = {
        "lower-bound (S=7)": (games.lower_bound_game(), games.lower_bound_expert(np.sqrt(1 - 1e-3))),
    }
    big = games.random_game(200, 3, seed=0)
    settings["random zero-sum (S=200)"] = (big, tabular.zero_sum_equilibrium(big).policies)
    algorithms = {
        "mail-bro": lambda g, o, k: mail_bro(g, o, k, seed=0, num_log_points=2),
        "murmail (ucbvi)": lambda g, o, k: murmail(g, o, k, inner="ucbvi", seed=0, num_log_points=2),
        "murmail (exact)": lambda g, o, k: murmail(g, o, k, inner="exact", seed=0, num_log_points=2),
    }
    print(f"{'game':<25} {'algorithm':<16} {'iterations/s':>13} {'queries/s':>12} {'sim. steps/s':>13}")
    for name, (game, expert) in settings.items():
        # Warm-up compiles and loads the jitted kernels.
        for run in algorithms.values():
            run(game, ExpertOracle(expert, seed=0), 2)
        for label, run in algorithms.items():
            iterations = 4
            while True:
                oracle = ExpertOracle(expert, seed=0)
                seconds = timed(lambda: run(game, oracle, iterations))
                if seconds >= args.seconds / 4 or iterations > 10**7:
                    break
                iterations *= 4
            oracle = ExpertOracle(expert, seed=0)
            start = time.perf_counter()
            result = run(game, oracle, iterations)
            seconds = time.perf_counter() - start
            steps = result.history.simulator_steps[-1]
            print(f"{name:<25} {label:<16} {iterations / seconds:>13.0f} {oracle.total_queries / seconds:>12.0f} "
                  f"{steps / seconds:>13.0f}")
        samples = 100_000
        seconds = timed(lambda: bc(game, expert_dataset(game, expert, samples, seed=0)))
        print(f"{name:<25} {'bc (1e5 samples)':<16} {'-':>13} {samples / seconds:>12.0f} {'-':>13}")


if __name__ == "__main__":
    main()
