"""Speed of the whole deep imitation loop: ML-IRL (state-action) on Hopper-v5, L = 1 and L = 4 critics.

    python scripts/bench_il.py [--quick] [--repeats 3] [--timed-steps 3000] [--warmup-updates 1000]
                               [--natural-eval] [--precision highest|medium] [--markdown FILE] [--note TEXT]

Runs ``soar.deep.loop.train`` itself (``ml-irl-sa``, Hopper-v5, the bundled expert's first
trajectory, the default settings: batch 100, lr 1e-3, alpha 0.2, 256x256 networks, one
cost update and one evaluation of 10 deterministic episodes every 5000 steps, a checkpoint
every 25000) with one torch thread, and splits the loop's wall time into

* SAC steps: everything done once per environment step (environment step, gradient step
  with the reward relabelling, the loop's callback and logging), timed over the steps
  ``(learning_starts + warmup, learning_starts + warmup + timed]`` minus the events below;
* cost updates (``recent_episodes`` plus the method's ``update``), per update;
* evaluations (``TrainingRun.evaluate``: the policy copy, 10 episodes, saving the best
  policy), per evaluation;
* checkpoints (``TrainingRun.checkpoint``, with the replay buffer so far), per checkpoint.

The whole-loop rate is then ``1 / (SAC step + cost update / 5000 + evaluation / 5000 +
checkpoint / 25000)``: the rate of a long run at the default cadence, in the steady state.
The run stops at the window's last step, where the cost update, the evaluation and (the
run ending there) a checkpoint happen; with the defaults that is step 5000, where the
default cadence puts the first cost update and evaluation, so the timed run is a
default-settings run stopped at step 5000. ``--quick`` moves the events to step 2000.

Steady state: timing starts after ``learning_starts`` (1000) random steps and
``--warmup-updates`` gradient steps (Adam's statistics turn subnormal after ~1000
updates; see ``scripts/bench_sac.py``). A policy that has learnt to hop runs full
1000-step evaluation episodes, while the young policies of a short benchmark fall after
a few dozen steps, so evaluation runs on ``Hopper-v5`` with
``terminate_when_unhealthy=False`` (every episode 1000 steps: what a long run pays once
it imitates; ``--natural-eval`` uses the plain environment). Likewise a cost update at
step 5000 sees short learner episodes, so each child also times the same ``update`` on
10 episodes of 1000 steps (the steady-state input) after its run; the table uses that
one and shows the in-loop one next to it.

Yardstick: stable-baselines3's SAC with the same batch (100), network (256x256),
learning rate (1e-3), fixed entropy coefficient (0.2) and ``learning_starts``, timed the
same way (its whole loop is the SAC step). Each configuration runs in its own subprocess
with one torch thread (``OMP_NUM_THREADS=MKL_NUM_THREADS=1``), the configurations
interleaved (order rotated each repeat) and repeated; medians are reported. The script
also reports how many cores other processes kept busy during each run and overall
(``--note`` adds a line of your own), and measures one thread's float32 matmul peak to
show the matmul floor of a step (FLOPs counted by ``scripts/bench_sac.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "Hopper-v5"
METHOD = "ml-irl-sa"
# The reference cadence of TrainConfig (the SOAR paper's settings) that the amortisation uses.
COST_EVERY, EVAL_EVERY, CHECKPOINT_EVERY = 5000, 5000, 25_000
BATCH, HIDDEN, LEARNING_RATE, ALPHA, LEARNING_STARTS = 100, (256, 256), 1e-3, 0.2, 1000
ISSUE_RESEARCH = {4: (30, 36), 1: (68, 81)}  # whole-loop steps/s of the public research code (issue)
TARGET_L4_STEPS, TARGET_RATIO = 70.0, 2.0


# --------------------------------------------------------------------------- children
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    # Both libraries alike: 'medium' lets oneDNN run float32 matmuls in bfloat16 where the CPU has it (AMX).
    torch.set_float32_matmul_precision(os.environ.get("BENCH_MATMUL_PRECISION", "highest"))


def child_ours(critics: int, learning_starts: int, warmup: int, timed: int, natural_eval: bool) -> dict:
    """One ``train`` run to step ``learning_starts + warmup + timed``, instrumented from outside the library."""
    _one_thread()
    import gymnasium as gym
    import numpy as np
    import torch

    from agents import harness
    from agents.sac import SAC
    from soar.deep import loop
    from soar.deep.ml_irl import MLIRL

    start_step = learning_starts + warmup
    end_step = start_step + timed
    marks: dict[int, float] = {}
    events: list[tuple[str, float, float]] = []  # (kind, start time, seconds)
    eval_steps: list[int] = []

    def timed_method(cls, name: str, kind: str) -> None:
        original = getattr(cls, name)

        def wrapper(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                events.append((kind, begin, time.perf_counter() - begin))

        setattr(cls, name, wrapper)

    timed_method(SAC, "recent_episodes", "cost")
    timed_method(MLIRL, "update", "cost")
    timed_method(harness.TrainingRun, "evaluate", "eval")
    timed_method(SAC, "policy", "policy")  # the deep copy of the actor each evaluation makes first
    timed_method(harness.TrainingRun, "checkpoint", "checkpoint")
    original_after_step = harness.TrainingRun.after_step

    def after_step(self, step, *args, **kwargs):
        result = original_after_step(self, step, *args, **kwargs)
        if step in (start_step, end_step):
            marks[step] = time.perf_counter()
        return result

    harness.TrainingRun.after_step = after_step

    env_seconds: list[float] = []

    class CountSteps(gym.Wrapper):
        """Counts the evaluation's environment steps and the time spent inside them."""

        def step(self, action):
            eval_steps[-1] += 1
            begin = time.perf_counter()
            try:
                return self.env.step(action)
            finally:
                env_seconds[-1] += time.perf_counter() - begin

    eval_kwargs = {} if natural_eval else {"terminate_when_unhealthy": False}
    eval_env = CountSteps(gym.make(ENV_ID, **eval_kwargs))
    original_evaluate = harness.TrainingRun.evaluate

    def evaluate(self, *args, **kwargs):
        eval_steps.append(0)
        env_seconds.append(0.0)
        return original_evaluate(self, *args, **kwargs)

    harness.TrainingRun.evaluate = evaluate

    from soar.deep.config import TrainConfig

    # The CPU (one thread) even where a GPU could be picked, in versions that have the setting.
    device = {"device": "cpu"} if "device" in TrainConfig.__dataclass_fields__ else {}
    with tempfile.TemporaryDirectory(prefix="bench-il-") as out:
        wall = time.perf_counter()
        result = loop.train(
            ENV_ID, METHOD, critics=critics, steps=end_step, out=out, eval_env=eval_env,
            batch_size=BATCH, hidden=HIDDEN, learning_rate=LEARNING_RATE, alpha=ALPHA,
            learning_starts=learning_starts, cost_every=end_step, eval_every=end_step,
            checkpoint_every=max(CHECKPOINT_EVERY, end_step), **device,
        )
        wall = time.perf_counter() - wall
        run_events = list(events)  # the run's own: the timing below calls the wrapped update again
        config = json.loads((Path(out) / "config.json").read_text())
        # The same cost update on the steady-state input: the expert's trajectory against
        # the learner's 10 most recent episodes at full length (1000 steps each).
        from soar.deep.demos import load_expert

        flat = load_expert("bundled", ENV_ID, 1).transitions()
        expert = {"obs": torch.from_numpy(flat["obs"]), "actions": torch.from_numpy(flat["acts"]),
                  "next_obs": torch.from_numpy(flat["next_obs"])}
        rng = np.random.default_rng(0)
        obs_dim, act_dim = eval_env.observation_space.shape[0], eval_env.action_space.shape[0]
        learner = [{"obs": rng.normal(size=(1000, obs_dim)).astype(np.float32),
                    "actions": rng.uniform(-1, 1, size=(1000, act_dim)).astype(np.float32),
                    "next_obs": rng.normal(size=(1000, obs_dim)).astype(np.float32),
                    "terminated": np.zeros(1000, np.float32)} for _ in range(config["cost_episodes"])]
        method = result.reward
        steady_cost = []
        for _ in range(7):
            begin = time.perf_counter()
            method.update(expert, learner)
            steady_cost.append(time.perf_counter() - begin)
    window = marks[end_step] - marks[start_step]

    def inside(kind: str) -> list[float]:
        return [s for k, b, s in run_events if k == kind and marks[start_step] < b < marks[end_step]]

    def every(kind: str) -> list[float]:
        return [s for k, _, s in run_events if k == kind]

    # An evaluation is the policy copy before it plus the episodes (the run's final copy has no evaluation).
    evaluations = [a + b for a, b in zip(every("policy"), every("eval"))]
    excluded = sum(sum(inside(kind)) for kind in ("cost", "policy", "eval", "checkpoint"))
    # recent_episodes and update come in pairs: one cost update is their sum.
    cost_updates = [a + b for a, b in zip(every("cost")[0::2], every("cost")[1::2])]
    return {
        "sac_step_ms": 1000 * (window - excluded) / timed,
        "window_s": window,
        "cost_update_ms_in_loop": 1000 * statistics.median(cost_updates),
        "cost_update_ms_steady": 1000 * statistics.median(steady_cost),
        "evaluation_s": statistics.median(evaluations),
        "evaluation_steps": statistics.median(eval_steps),
        "evaluation_env_s": statistics.median(env_seconds),
        "checkpoint_s": statistics.median(every("checkpoint")),
        "run_s": wall,
        "settings": {k: config[k] for k in ("critics", "batch_size", "learning_rate", "alpha", "hidden",
                                             "std_clip", "trajectories", "eval_episodes", "cost_episodes")},
    }


def child_sb3(learning_starts: int, warmup: int, timed: int) -> dict:
    _one_thread()
    import gymnasium as gym
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gym.make(ENV_ID), batch_size=BATCH, learning_rate=LEARNING_RATE, ent_coef=ALPHA,
                learning_starts=learning_starts, buffer_size=1_000_000, seed=0,
                policy_kwargs={"net_arch": list(HIDDEN)})
    model.learn(learning_starts + warmup)
    begin = time.perf_counter()
    model.learn(timed, reset_num_timesteps=False)
    window = time.perf_counter() - begin
    return {"sac_step_ms": 1000 * window / timed, "window_s": window}


def child_peak() -> dict:
    """Float32 matmul FLOP/s of one thread on the critics' shapes (4 members, batch 100, 256 wide)."""
    _one_thread()
    import torch

    a, b = torch.randn(4, BATCH, HIDDEN[0]), torch.randn(4, HIDDEN[0], HIDDEN[1])
    for _ in range(50):
        torch.bmm(a, b)
    count, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < 1.0:
        for _ in range(50):
            torch.bmm(a, b)
        count += 50
    return {"flops": 2 * a.numel() * HIDDEN[1] * count / (time.perf_counter() - begin)}


def run_child(kind: str, critics: int, args: argparse.Namespace) -> dict:
    spec = {"kind": kind, "critics": critics, "learning_starts": args.learning_starts,
            "warmup": args.warmup_updates, "timed": args.timed_steps, "natural_eval": args.natural_eval}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "BENCH_MATMUL_PRECISION": args.precision,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    busy0, own0, begin = cpu_busy_seconds()[0], own_cpu_seconds(), time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} L={critics} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Cores that other processes kept busy meanwhile (the machine's busy time less this child's).
    seconds = time.perf_counter() - begin
    result["others_cores"] = max(0.0, (cpu_busy_seconds()[0] - busy0) - (own_cpu_seconds() - own0)) / seconds
    return result


def child_main(spec: dict) -> None:
    if spec["kind"] == "peak":
        result = child_peak()
    elif spec["kind"] == "sb3":
        result = child_sb3(spec["learning_starts"], spec["warmup"], spec["timed"])
    else:
        result = child_ours(spec["critics"], spec["learning_starts"], spec["warmup"], spec["timed"],
                            spec["natural_eval"])
    print(json.dumps(result))


# --------------------------------------------------------------------------- the machine
def cpu_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (0, 0 if unreadable)."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def own_cpu_seconds() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def others_busy_cores(seconds: float = 2.0) -> float:
    busy0, _ = cpu_busy_seconds()
    own0 = own_cpu_seconds()
    time.sleep(seconds)
    busy1, _ = cpu_busy_seconds()
    return max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0)) / seconds


# --------------------------------------------------------------------------- report
def whole_loop(sac_ms: float, cost_ms: float, eval_s: float, checkpoint_s: float) -> float:
    """Environment steps per second of a long run at the reference cadence."""
    per_step_ms = sac_ms + cost_ms / COST_EVERY + 1000 * eval_s / EVAL_EVERY + 1000 * checkpoint_s / CHECKPOINT_EVERY
    return 1000.0 / per_step_ms


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a check that it works (a minute or two): 1 repeat, 200 warm-up updates, 800 timed "
                        "steps, events at step 2000")
    parser.add_argument("--repeats", type=int, help="interleaved repetitions (default 3; 1 with --quick)")
    parser.add_argument("--timed-steps", type=int, help="timed environment steps per run (default 3000; 800 with --quick)")
    parser.add_argument("--warmup-updates", type=int,
                        help="gradient steps before timing starts (default 1000; 200 with --quick)")
    parser.add_argument("--learning-starts", type=int, default=LEARNING_STARTS, help="random steps first (default 1000)")
    parser.add_argument("--natural-eval", action="store_true",
                        help="evaluate on the plain environment (young policies fall early) instead of full-length episodes")
    parser.add_argument("--precision", choices=("highest", "medium"), default="highest",
                        help="torch float32 matmul precision in every configuration (soar train's "
                        "--matmul-precision); 'medium' runs matmuls in bfloat16 on CPUs with AMX (default: %(default)s)")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--note", default="", help="a line about the machine to print with the results "
                        "(e.g. what else was running)")
    args = parser.parse_args()
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.timed_steps = args.timed_steps or (800 if quick else 3000)
    args.warmup_updates = args.warmup_updates if args.warmup_updates is not None else (200 if quick else 1000)
    if args.repeats < 1 or args.timed_steps < 1 or args.warmup_updates < 0 or args.learning_starts < BATCH:
        parser.error("--repeats and --timed-steps must be positive, --warmup-updates >= 0, --learning-starts >= 100")

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    started = time.perf_counter()
    busy0, own0 = cpu_busy_seconds()[0], own_cpu_seconds()
    before = others_busy_cores()
    end_step = args.learning_starts + args.warmup_updates + args.timed_steps
    say(f"# Whole imitation loop: {METHOD} on {ENV_ID}, bundled expert (1 trajectory)")
    say()
    say(f"{os.cpu_count()} CPUs; other processes kept {before:.1f} cores busy just before the start "
        "(see the end for the whole run). One torch thread per configuration, each in its own process.")
    say(f"Settings: batch {BATCH}, lr {LEARNING_RATE:g}, alpha {ALPHA}, {HIDDEN[0]}x{HIDDEN[1]} networks, learning_starts "
        f"{args.learning_starts}; timed steps {args.learning_starts + args.warmup_updates}..{end_step} "
        f"({args.warmup_updates} warm-up gradient steps, {args.timed_steps} timed), {args.repeats} interleaved repeat(s); "
        f"events (cost update, evaluation) at step {end_step}, amortised over the reference cadence "
        f"(cost update and evaluation every {COST_EVERY}, checkpoint every {CHECKPOINT_EVERY} steps); "
        f"evaluation episodes: {'the plain environment' if args.natural_eval else 'full length (1000 steps)'}; "
        f"float32 matmul precision {args.precision}."
        + (" QUICK MODE: a check that the script works, not a measurement." if quick else ""))
    if args.note:
        say()
        say(f"Note: {args.note}")
    say()

    configs = [("sb3", 1), ("ours", 1), ("ours", 4)]
    samples: dict[tuple[str, int], list[dict]] = {c: [] for c in configs}
    peaks: list[float] = []
    for repeat in range(args.repeats):
        peaks.append(run_child("peak", 0, args)["flops"])
        order = configs[repeat % len(configs):] + configs[:repeat % len(configs)]
        for kind, critics in order:
            result = run_child(kind, critics, args)
            samples[(kind, critics)].append(result)
            name = "SB3 SAC" if kind == "sb3" else f"ours L={critics}"
            say(f"- repeat {repeat + 1}/{args.repeats}, {name}: SAC step {result['sac_step_ms']:.2f} ms"
                + (f", evaluation {result['evaluation_s']:.2f} s ({result['evaluation_steps']:.0f} steps, "
                   f"{result['evaluation_env_s']:.2f} s of them in env.step), cost update "
                   f"{result['cost_update_ms_in_loop']:.1f} ms in the loop / {result['cost_update_ms_steady']:.1f} ms "
                   f"at full length, checkpoint {result['checkpoint_s']:.2f} s, run {result['run_s']:.0f} s"
                   if kind == "ours" else "") + f"; other processes: {result['others_cores']:.1f} cores")
    say()

    def med(key: tuple[str, int], field: str) -> float:
        return statistics.median(r[field] for r in samples[key])

    rows = {}
    for key in configs:
        runs = samples[key]
        if key[0] == "sb3":
            rates = [1000.0 / r["sac_step_ms"] for r in runs]
        else:
            rates = [whole_loop(r["sac_step_ms"], r["cost_update_ms_steady"], r["evaluation_s"], r["checkpoint_s"])
                     for r in runs]
        rows[key] = {"rate": statistics.median(rates), "low": min(rates), "high": max(rates),
                     "sac": med(key, "sac_step_ms")}
        if key[0] == "ours":
            rows[key].update(cost=med(key, "cost_update_ms_steady"), cost_loop=med(key, "cost_update_ms_in_loop"),
                             eval=med(key, "evaluation_s"), ckpt=med(key, "checkpoint_s"),
                             eval_steps=med(key, "evaluation_steps"))

    say("| configuration | whole-loop steps/s (range) | SAC step ms | cost update ms at full length (in loop at step "
        f"{end_step}) | cost update ms/step | evaluation s | evaluation ms/step | checkpoint s (ms/step) |")
    say("|---|---|---|---|---|---|---|---|")
    for key in configs:
        row = rows[key]
        rate = f"{row['rate']:.1f} ({row['low']:.1f}-{row['high']:.1f})"
        if key[0] == "sb3":
            say(f"| SB3 SAC (batch {BATCH}, 256x256) | {rate} | {row['sac']:.2f} | - | - | - | - | - |")
            continue
        say(f"| ours ML-IRL-sa L={key[1]} | {rate} | {row['sac']:.2f} | {row['cost']:.1f} ({row['cost_loop']:.1f}) | "
            f"{row['cost'] / COST_EVERY:.4f} | {row['eval']:.2f} | {1000 * row['eval'] / EVAL_EVERY:.3f} | "
            f"{row['ckpt']:.2f} ({1000 * row['ckpt'] / CHECKPOINT_EVERY:.3f}) |")
    one, four, sb3 = rows[("ours", 1)], rows[("ours", 4)], rows[("sb3", 1)]
    step_ratio = four["sac"] / one["sac"]
    loop_ratio = one["rate"] / four["rate"]
    say()
    say(f"L=4 step / L=1 step: {step_ratio:.2f}x (SAC step), {loop_ratio:.2f}x (whole loop, time per step). "
        f"L=1 whole loop / SB3 SAC: {one['rate'] / sb3['rate']:.2f}x; L=4 whole loop / SB3 SAC: "
        f"{four['rate'] / sb3['rate']:.2f}x.")
    say(f"Share of an L=4 step's time: SAC step {100 * four['sac'] * four['rate'] / 1000:.1f}%, evaluation "
        f"{100 * four['eval'] / EVAL_EVERY * four['rate']:.1f}%, cost update "
        f"{100 * four['cost'] / 1000 / COST_EVERY * four['rate']:.3f}%, checkpoint "
        f"{100 * four['ckpt'] / CHECKPOINT_EVERY * four['rate']:.2f}%. Evaluation episodes: "
        f"{one['eval_steps']:.0f} steps per evaluation.")
    say()
    say("Targets (issue) and the public research code's whole loop on this machine:")
    say()
    say("| | public research code | target | measured | met |")
    say("|---|---|---|---|---|")
    say(f"| L=4 whole-loop steps/s | {ISSUE_RESEARCH[4][0]}-{ISSUE_RESEARCH[4][1]} | >= {TARGET_L4_STEPS:.0f} | "
        f"{four['rate']:.1f} | {'yes' if four['rate'] >= TARGET_L4_STEPS else 'no'} |")
    say(f"| L=1 whole-loop steps/s | {ISSUE_RESEARCH[1][0]}-{ISSUE_RESEARCH[1][1]} | - | {one['rate']:.1f} | - |")
    say(f"| L=4 step / L=1 step | - | <= {TARGET_RATIO:.0f}x | {step_ratio:.2f}x | "
        f"{'yes' if step_ratio <= TARGET_RATIO else 'no'} |")
    # Where the SAC step's time goes: its matmuls at the machine's measured peak, and the rest.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sac import step_flops

    peak = statistics.median(peaks)
    flops = {L: step_flops(L, hidden=HIDDEN[0], batch=BATCH) for L in (1, 4)}
    floor = {L: 1000 * flops[L] / peak for L in (1, 4)}
    rest = {1: one["sac"] - floor[1], 4: four["sac"] - floor[4]}
    events_ms = 1000 / four["rate"] - four["sac"]
    bound = 1000 / (floor[4] + rest[1] + events_ms)
    say()
    say(f"Matmul floor (float32, one thread; FLOPs counted as in scripts/bench_sac.py at batch {BATCH}): a step is "
        f"{flops[1] / 1e6:.0f} MFLOP of matmuls at L=1 and {flops[4] / 1e6:.0f} at L=4 ({flops[4] / flops[1]:.2f}x); "
        f"at the measured peak of {peak / 1e9:.0f} GFLOP/s (bmm of the critics' shapes) that is {floor[1]:.2f} ms and "
        f"{floor[4]:.2f} ms, leaving {rest[1]:.2f} ms (L=1) and {rest[4]:.2f} ms (L=4) of each measured SAC step for "
        "everything else (environment step, acting, sampling, relabelling, matmuls below peak, other ops, autograd, "
        f"Adam). Even with its matmuls at peak and the rest as small as at L=1, an L=4 whole-loop step would take "
        f"{floor[4] + rest[1] + events_ms:.1f} ms: at most {bound:.0f} steps/s.")
    busy1, own1 = cpu_busy_seconds()[0], own_cpu_seconds()
    elapsed = time.perf_counter() - started
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / elapsed if busy1 > 0 else float("nan")
    say()
    say(f"Wall time {elapsed / 60:.1f} min. Other processes kept {others:.1f} of {os.cpu_count()} cores busy on "
        "average during the run" + (" (the benchmark shared the machine with them: one core each)." if others >= 0.5
                                    else "."))
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
