"""Speed of the exact tabular solvers: numba kernels vs plain numpy vs quantecon.

On random two-player games (Dirichlet(1) transitions, 5x5 actions, gamma 0.9)
with S in {50, 200, 500}, it times in one run, interleaved:

* ``nash_gap`` of a random full-support profile: ``agents.tabular`` (numba)
  against ``agents.tabular_numpy`` (vectorised numpy, Howard policy iteration
  with LU evaluations);
* ``best_response`` of player 0, the same two;
* solving the induced MDP of player 0 (already built): our ``solve_mdp``, the
  numpy one, and quantecon's ``DiscreteDP(...).solve("policy_iteration")``.

Every pair of results must agree to 1e-8 or the script exits non-zero. Times
are medians over ``--repeats`` runs; numba compile time (empty cache) and
cache-load time are measured separately in fresh subprocesses.

    python scripts/bench_tabular.py [--sizes 50 200 500] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500], help="numbers of states")
    parser.add_argument("--actions", type=int, default=5, help="actions per player")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per cell (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="threads of the BLAS/LAPACK that numpy, scipy and quantecon call (default: the "
        "library's own choice, all cores). The numba kernels are single-threaded either way.",
    )
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.actions < 1 or args.repeats < 1:
        parser.error("--sizes, --actions and --repeats must be positive")
    if args.blas_threads is not None and args.blas_threads < 1:
        parser.error("--blas-threads must be positive")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.blas_threads is not None:
    # Must be set before numpy loads its BLAS.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.blas_threads)

import numpy as np  # noqa: E402

from agents import tabular, tabular_numpy  # noqa: E402
from envs import games  # noqa: E402

TOLERANCE = 1e-8


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def quantecon_solver():
    try:
        from quantecon.markov import DiscreteDP
    except ImportError:
        return None

    def solve(transitions, rewards, gamma):
        result = DiscreteDP(rewards, transitions, gamma).solve(method="policy_iteration")
        return result.sigma, result.v

    return solve


def first_call_seconds(cache_dir: str) -> float:
    """Time of the first ``nash_gap`` call in a fresh interpreter using ``cache_dir``."""
    code = (
        "import time; t = time.perf_counter();"
        "from agents import tabular; from envs import games;"
        "g = games.random_game(4, 2, seed=0);"
        "tabular.nash_gap(g, tabular.uniform_policies(g));"
        "tabular.concentrability(g, tabular.uniform_policies(g));"
        "print(time.perf_counter() - t)"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(args: argparse.Namespace) -> int:
    threads = args.blas_threads if args.blas_threads is not None else "default"
    print(f"BLAS threads for numpy/scipy/quantecon: {threads}; {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as cache_dir:
        compile_time = first_call_seconds(cache_dir)
        cached_time = first_call_seconds(cache_dir)
    print(f"numba first call in a fresh process: {compile_time:.1f} s compiling, "
          f"{cached_time:.2f} s loading from the cache")

    quantecon = quantecon_solver()
    if quantecon is None:
        print("quantecon is not installed (pip install '.[bench]'): its column is skipped")
    rng = np.random.default_rng(args.seed)
    rows = []
    failures = []
    for size in args.sizes:
        game = games.random_game(size, args.actions, seed=args.seed)
        policies = [rng.dirichlet(np.ones(a), size=size) for a in game.num_actions]
        transitions, rewards = tabular.induced_mdp(game, policies, 0)
        # Warm up (compilation happened above; this loads code and caches).
        tabular.nash_gap(game, policies)

        def check(name, ours, theirs):
            if abs(ours - theirs) > TOLERANCE:
                failures.append(f"S={size} {name}: {ours!r} vs {theirs!r}")

        gap = tabular.nash_gap(game, policies).total
        check("nash_gap", gap, tabular_numpy.nash_gap(game, policies)[0])
        br = tabular.best_response(game, policies, 0).value
        check("best_response", br, tabular_numpy.best_response(game, policies, 0)[1])
        mdp_value = game.initial @ tabular.solve_mdp(transitions, rewards, game.gamma)[1]
        check("solve_mdp numpy", mdp_value, game.initial @ tabular_numpy.solve_mdp(transitions, rewards, game.gamma)[1])
        if quantecon is not None:
            check("solve_mdp quantecon", mdp_value, game.initial @ quantecon(transitions, rewards, game.gamma)[1])

        timings = {
            "nash_gap numba": lambda: tabular.nash_gap(game, policies),
            "nash_gap numpy": lambda: tabular_numpy.nash_gap(game, policies),
            "best_response numba": lambda: tabular.best_response(game, policies, 0),
            "best_response numpy": lambda: tabular_numpy.best_response(game, policies, 0),
            "MDP solve numba": lambda: tabular.solve_mdp(transitions, rewards, game.gamma),
            "MDP solve numpy": lambda: tabular_numpy.solve_mdp(transitions, rewards, game.gamma),
        }
        if quantecon is not None:
            timings["MDP solve quantecon"] = lambda: quantecon(transitions, rewards, game.gamma)
        # Interleave the contenders round by round so machine noise hits all alike.
        samples = {name: [] for name in timings}
        for _ in range(args.repeats):
            for name, function in timings.items():
                samples[name].append(median_seconds(function, 1))
        medians = {name: float(np.median(values)) for name, values in samples.items()}
        rows.append((size, medians, gap))

    print(f"\nrandom 2-player games, {args.actions}x{args.actions} actions, gamma 0.9; "
          f"median of {args.repeats} runs, milliseconds\n")
    header = f"{'S':>5} | {'task':<14} | {'numba':>9} | {'numpy':>9} | {'quantecon':>9} | {'numpy/numba':>11} | {'quantecon/numba':>15}"
    print(header)
    print("-" * len(header))
    for size, medians, _ in rows:
        for task, label in (("nash_gap", "nash_gap"), ("best_response", "best_response"), ("MDP solve", "MDP solve")):
            ours = medians[f"{task} numba"]
            numpy_time = medians[f"{task} numpy"]
            qe = medians.get(f"{task} quantecon")
            qe_text = f"{qe * 1e3:9.3f}" if qe is not None else f"{'-':>9}"
            qe_ratio = f"{qe / ours:15.1f}" if qe is not None else f"{'-':>15}"
            print(f"{size:>5} | {label:<14} | {ours * 1e3:9.3f} | {numpy_time * 1e3:9.3f} | {qe_text} | "
                  f"{numpy_time / ours:11.1f} | {qe_ratio}")
    if failures:
        print("\nRESULTS DISAGREE beyond 1e-8:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nall results agree to {TOLERANCE:g} (Nash gap, best-response value, MDP value at rho_0)")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
