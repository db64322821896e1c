"""Demo: exact solvers on the built-in games, then tabular SOAR's reference sweep.

    python scripts/demo.py [--out runs/demo]

1. For each built-in game: the equilibrium value found by Shapley iteration,
   the exact Nash gap of the uniform profile and of that equilibrium, and the
   expert concentrability coefficients; then the lower-bound game's expert
   family, whose mixing weight sets the concentrability.
2. Tabular SOAR-IL on the two-state MDP for L in {1, 2, 3, 5, 10} critics and
   10 seeds, the README's reference experiment (``soar tabular --env two-state
   --occupancy state --iterations 300``), writing a CSV and a plot to ``--out``.
3. The bundled MuJoCo experts: their demonstrations and a fresh deterministic
   evaluation of the bundled policies; then this toolkit's SAC trained briefly
   on InvertedPendulum-v5 through ``soar expert train`` and rolled out through
   ``soar expert rollout`` into a demonstration file.
4. Deep imitation: ``soar train`` with ML-IRL (state-action reward) on InvertedPendulum-v5
   from one bundled expert trajectory, the base method (L = 1) and SOAR (L = 4), a few
   thousand steps each, then ``soar plot`` draws their learning curves.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from agents import tabular
from envs import games
from soar import cli as soar_cli


def format_number(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default: runs/demo)")
    args = parser.parse_args()
    start = time.perf_counter()
    catalogue = {
        "matching pennies": games.matching_pennies(),
        "rock-paper-scissors": games.rock_paper_scissors(),
        "lower-bound game (c=0.5)": games.lower_bound_game(c=0.5),
        "random zero-sum 10x3x3 (seed 0)": games.random_game(10, 3, seed=0),
        "random zero-sum 50x5x5 (seed 0)": games.random_game(50, 5, seed=0),
    }
    print("Built-in two-player zero-sum games, gamma = 0.9\n")
    header = (
        f"{'game':<33} {'S':>3} {'V*(rho0)':>9} {'gap(uniform)':>13} {'gap(NE)':>9} "
        f"{'Shapley it.':>11} {'C(NE)':>7} {'C_max(NE)':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, game in catalogue.items():
        uniform_gap = tabular.nash_gap(game, tabular.uniform_policies(game)).total
        equilibrium = tabular.zero_sum_equilibrium(game)
        coefficients = tabular.concentrability(game, equilibrium.policies)
        print(
            f"{name:<33} {game.num_states:>3} {game.initial @ equilibrium.values:>9.4f} "
            f"{uniform_gap:>13.4f} {equilibrium.nash_gap:>9.1e} {equilibrium.iterations:>11d} "
            f"{format_number(coefficients.single_policy):>7} {format_number(coefficients.all_policy):>9}"
        )

    print("\nLower-bound game: experts mixing the two pure equilibria at s0 (weight lambda on a3/b3)\n")
    game = games.lower_bound_game()
    header = f"{'lambda':>10} {'gap(expert)':>12} {'C':>10} {'C_max':>10}"
    print(header)
    print("-" * len(header))
    for weight in (0.5, 1 / np.sqrt(2), np.sqrt(1 - 1e-3), np.sqrt(1 - 1e-4), 1.0):
        expert = games.lower_bound_expert(weight)
        coefficients = tabular.concentrability(game, expert)
        print(
            f"{weight:>10.6f} {tabular.nash_gap(game, expert).total:>12.1e} "
            f"{format_number(coefficients.single_policy):>10} {format_number(coefficients.all_policy):>10}"
        )

    print("\nTabular SOAR-IL, two-state MDP (20 actions, gamma 0.99, state-only matching), L = 1, 2, 3, 5, 10 "
          "critics, 10 seeds\n")
    soar_cli.main(["tabular", "--env", "two-state", "--occupancy", "state", "--iterations", "300", "--seeds", "10",
                   "--out", str(args.out / "soar_two_state")])
    print("\nBundled experts (agents/data): stored demonstrations and a fresh evaluation of each policy\n")
    import gymnasium as gym

    from agents.experts import BUNDLED_ENVS, bundled_demonstrations, bundled_policy
    from agents.rollout import evaluate

    for env_id in BUNDLED_ENVS:
        demos = bundled_demonstrations(env_id)
        returns = evaluate(bundled_policy(env_id), gym.make(env_id), episodes=3, seed=100)
        print(f"{env_id:<26} {demos.summary()}; policy now: {returns.mean():.1f} +- {returns.std():.1f} (3 episodes)")

    print("\nThis toolkit's SAC, 4000 steps on InvertedPendulum-v5, then 4 demonstration episodes\n")
    expert_dir = args.out / "inverted_pendulum_expert"
    # The demo's runs start over each time: a showcase, not work to resume (and a run folder left by an
    # older version with other default settings would be refused as a different run).
    shutil.rmtree(expert_dir, ignore_errors=True)
    shutil.rmtree(args.out / "imitation", ignore_errors=True)
    soar_cli.main(["expert", "train", "--env", "InvertedPendulum-v5", "--steps", "4000", "--algorithm", "soar",
                   "--learning-starts", "1000", "--eval-every", "1000", "--out", str(expert_dir)])
    soar_cli.main(["expert", "rollout", "--policy", str(expert_dir / "policy.pt"), "--episodes", "4",
                   "--out", str(expert_dir / "demos.npz")])
    print("\nDeep imitation: ML-IRL (state-action) on InvertedPendulum-v5 from 1 bundled trajectory, L = 1 and 4\n")
    imitation_dir = args.out / "imitation"
    for critics in (1, 4):
        soar_cli.main(["train", "--env", "InvertedPendulum-v5", "--method", "ml-irl-sa", "--critics", str(critics),
                       "--steps", "5000", "--out", str(imitation_dir / f"ml-irl-sa-L{critics}")])
    # --force: a second demo redraws its own figure.
    soar_cli.main(["plot", str(imitation_dir), "--out", str(imitation_dir / "learning_curves.png"), "--force"])
    print(f"\ndone in {time.perf_counter() - start:.1f} s (the first run includes numba compilation)")


if __name__ == "__main__":
    main()
