"""Gradient steps per second: this SAC (L = 1 and L = 4) against stable-baselines3's SAC.

    python scripts/bench_sac.py [--steps 300] [--updates-before 1000] [--repeats 3] [--threads 1 2] [--precision highest medium]

Hopper-v5, 256x256 networks, batch 256, one gradient step per environment
step; timing starts after 1000 random warm-up steps and ``--updates-before``
gradient steps, because steps get slower once Adam's statistics turn
subnormal (a long run's steady state is what users wait for). This SAC
flushes subnormals to zero while learning; stable-baselines3 does not, so
it is timed both as it ships and with ``torch.set_flush_denormal(True)``
("SB3+FTZ"). Each configuration runs in its own
subprocess (clean thread pools), interleaved and repeated, all in one
invocation, for every torch thread count given; the table shows medians.
Also reports the matmul FLOP/s of one SAC step (counted analytically)
against a measured matmul peak of the machine at the same precision.

``--precision medium`` sets ``torch.set_float32_matmul_precision("medium")``
in the child, which lets oneDNN run float32 matmuls in bfloat16 on CPUs
with AMX/AVX512-BF16; it is applied to stable-baselines3 as well, so each
row compares like with like.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import gymnasium as gym, numpy as np, torch
threads, kind, critics, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.set_float32_matmul_precision(sys.argv[5])
warm = 1000 + int(sys.argv[6])
if kind == "sb3ftz":
    torch.set_flush_denormal(True)
    kind = "sb3"
env = gym.make("Hopper-v5")
if kind == "ours":
    from agents.sac import SAC
    agent = SAC(env, num_critics=critics, batch_size=256, learning_starts=1000, seed=0)
    agent.learn(warm)
    start = time.perf_counter(); agent.learn(steps); seconds = time.perf_counter() - start
elif kind == "sb3":
    from stable_baselines3 import SAC
    model = SAC("MlpPolicy", env, batch_size=256, learning_starts=1000, seed=0)
    model.learn(warm)
    start = time.perf_counter(); model.learn(steps, reset_num_timesteps=False); seconds = time.perf_counter() - start
else:
    a = torch.randn(256, 256); b = torch.randn(4, 256, 256); c = torch.randn(4, 256, 256)
    for _ in range(20): torch.bmm(b, c)
    start = time.perf_counter(); n = 200
    for _ in range(n): torch.bmm(b, c)
    seconds = time.perf_counter() - start
    print(json.dumps({"flops": 2 * 4 * 256**3 * n / seconds})); sys.exit()
print(json.dumps({"steps_per_second": steps / seconds}))
"""


def step_flops(critics: int, obs_dim: int = 11, act_dim: int = 3, hidden: int = 256, batch: int = 256) -> float:
    """Matmul FLOPs of one SAC gradient step (forward 2 * m * n * k; backward twice that)."""
    critic = 2 * batch * ((obs_dim + act_dim) * hidden + hidden * hidden + hidden)  # one member, forward
    actor = 2 * batch * (obs_dim * hidden + hidden * hidden + 2 * hidden * act_dim)
    members = 2 * critics
    flops = actor  # next-action sample for the targets (no grad)
    flops += members * critic  # target critics
    flops += 3 * members * critic  # online critics, forward + backward
    flops += 3 * actor  # actor forward + backward
    flops += 2 * members * critic  # critics on the actor's actions: forward + input gradient
    return float(flops)


def run(threads: int, kind: str, critics: int, steps: int, precision: str, updates_before: int = 0) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), kind, str(critics), str(steps), precision, str(updates_before)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="timed environment steps per configuration")
    parser.add_argument("--updates-before", type=int, default=1000, help="gradient steps before timing starts")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--precision", choices=("highest", "medium"), nargs="+", default=["highest", "medium"],
                        help="float32 matmul precisions ('medium': bf16 matmuls where the CPU has them)")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1 or min(args.threads) < 1 or args.updates_before < 0:
        parser.error("--steps, --repeats and --threads must be positive, --updates-before >= 0")
    print(f"{'threads':>7} | {'precision':>9} | {'SB3 SAC':>8} | {'SB3+FTZ':>8} | {'ours L=1':>8} | {'ours L=4':>8} | "
          f"{'L=1/SB3':>7} | {'L=1/SB3+FTZ':>11} | {'L=4 cost':>8} | {'GFLOP/s L=1':>11} | {'peak GFLOP/s':>12}")
    for threads in args.threads:
        for precision in args.precision:
            samples: dict[str, list[float]] = {"sb3": [], "sb3ftz": [], "one": [], "four": [], "peak": []}
            for _ in range(args.repeats):
                for key, kind, critics in (("sb3", "sb3", 1), ("sb3ftz", "sb3ftz", 1), ("one", "ours", 1), ("four", "ours", 4)):
                    result = run(threads, kind, critics, args.steps, precision, args.updates_before)
                    samples[key].append(result["steps_per_second"])
                samples["peak"].append(run(threads, "peak", 0, 0, precision)["flops"])
            sb3, ftz, one, four, peak = (statistics.median(samples[k]) for k in ("sb3", "sb3ftz", "one", "four", "peak"))
            achieved = step_flops(1) * one
            print(f"{threads:>7} | {precision:>9} | {sb3:>8.1f} | {ftz:>8.1f} | {one:>8.1f} | {four:>8.1f} | "
                  f"{one / sb3:>7.2f} | {one / ftz:>11.2f} | {one / four:>7.2f}x | {achieved / 1e9:>11.1f} | "
                  f"{peak / 1e9:>12.1f}", flush=True)
    print("\nsteps/s are environment steps with one gradient step each (medians of the repeats); 'L=4 cost' "
          "is the time of an L=4 step over an L=1 step; GFLOP/s counts only the matmuls of one L=1 step; "
          "'medium' runs float32 matmuls in bfloat16 (both libraries).")


if __name__ == "__main__":
    main()
