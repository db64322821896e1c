"""What a benchmark sweep runs: environments x methods x critics x clips x seeds, in two stages.

A sweep that compares several clip values ``sigma_clip`` chooses one per (environment,
method, L > 1) on *selection* seeds and reports only runs on separate *evaluation* seeds
(the public research code chose on the seeds it reported, which flatters the best clip):

    stage "selection":  every clip, selection seeds        (only when more than one clip is swept)
    stage "evaluation": the chosen clip (L = 1: none), evaluation seeds

Evaluation seeds are ``0 .. seeds - 1``; selection seeds start at :data:`SELECTION_SEED_BASE`,
so the two never share a seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from soar.deep.config import SAC_METHODS, build_config

#: Environment steps of the SOAR paper's runs (the research code's iterations x 5000 steps);
#: ``short`` is 10% of them, ``smoke`` a few thousand steps for tests.
PAPER_STEPS = {
    "Hopper-v5": 1_000_000,
    "Walker2d-v5": 1_000_000,
    "HalfCheetah-v5": 3_000_000,
    "Ant-v5": 1_300_000,
    "Humanoid-v5": 3_000_000,
    "InvertedPendulum-v5": 100_000,
    "InvertedDoublePendulum-v5": 100_000,
}
BUDGETS = ("smoke", "short", "paper")
SMOKE_STEPS = 2000
#: Settings a smoke run overrides so that a few thousand steps still evaluate and update the cost.
SMOKE_SETTINGS = {"learning_starts": 500, "cost_every": 500, "eval_every": 1000, "eval_episodes": 2,
                  "checkpoint_every": 1000, "log_every": 500, "bc_steps": 200, "discriminator_steps": 10}
SELECTION_SEED_BASE = 1000


def checkpoint_interval(steps: int, configured: int) -> int:
    """Steps between the checkpoints of a bench run of ``steps``: 5% of it, at least 5000, and at most
    ``configured`` (what ``soar train`` would use: its default, 25k, or the environment's YAML).

    A sweep runs for hours to days and may be interrupted, which costs each running run the
    steps since its last checkpoint; a checkpoint costs a write of the replay buffer and ends
    the current training episode (the next one's reset seed follows from the step), so a run
    of millions of steps keeps the configured interval.
    """
    return min(int(configured), max(5000, int(steps) // 20))


def clip_text(clip: float) -> str:
    """A clip value as run names and command lines write it: short, exact (``repr``) and ``inf``."""
    return "inf" if clip == float("inf") else f"{clip:g}" if float(f"{clip:g}") == clip else repr(float(clip))


def budget_steps(env_id: str, budget: str) -> int:
    """Environment steps of one run of ``env_id`` at ``budget`` (``smoke``, ``short`` or ``paper``)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    if budget == "smoke":
        return SMOKE_STEPS
    if env_id not in PAPER_STEPS:
        raise ValueError(f"no {budget} budget for {env_id}; environments with one: {', '.join(PAPER_STEPS)} "
                         f"(or give its steps, e.g. --steps {env_id}=100000, or use --budget smoke)")
    return PAPER_STEPS[env_id] // (10 if budget == "short" else 1)


@dataclass(frozen=True)
class Sweep:
    """A benchmark sweep, validated; stored in ``OUT/bench.json`` so a resumed sweep is the same one."""

    envs: tuple[str, ...]
    methods: tuple[str, ...]
    critics: tuple[int, ...] = (1, 4)
    std_clips: tuple[float, ...] = (10.0,)
    seeds: int = 5
    selection_seeds: int = 2
    budget: str = "short"
    trajectories: int = 1
    demos: tuple[tuple[str, str], ...] = field(default=())  # (env, source) pairs; the rest use "bundled"
    env_steps: tuple[tuple[str, int], ...] = field(default=())  # (env, steps) pairs replacing the budget's

    def __post_init__(self) -> None:
        for name in ("envs", "methods", "critics", "std_clips"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name}: give at least one")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: {list(values)} repeats a value")
        unknown = [m for m in self.methods if m not in SAC_METHODS]
        if unknown:
            raise ValueError(f"methods {unknown} cannot be swept over critics; methods: {', '.join(SAC_METHODS)}")
        if any(int(c) != c or c < 1 for c in self.critics):
            raise ValueError(f"critics must be integers >= 1, got {list(self.critics)}")
        if any(not c >= 0 for c in self.std_clips):
            raise ValueError(f"std clips must be >= 0 (inf: no clip), got {list(self.std_clips)}")
        if len(self.std_clips) > 1 and max(self.critics) == 1:
            raise ValueError("several std clips but no critics > 1: a clip only applies to SOAR's ensemble")
        if int(self.seeds) != self.seeds or self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        if int(self.selection_seeds) != self.selection_seeds or self.selection_seeds < 1:
            raise ValueError(f"selection seeds must be an integer >= 1, got {self.selection_seeds!r}")
        if self.seeds > SELECTION_SEED_BASE:
            raise ValueError(f"at most {SELECTION_SEED_BASE} evaluation seeds")
        if int(self.trajectories) != self.trajectories or self.trajectories < 1:
            raise ValueError(f"trajectories must be an integer >= 1, got {self.trajectories!r}")
        for option, pairs in (("--demos", self.demos), ("--steps", self.env_steps)):
            named = [env_id for env_id, _ in pairs]
            stray = sorted(set(named) - set(self.envs))
            if stray:
                raise ValueError(f"{option} names environments the sweep does not run: {stray}")
            if len(set(named)) != len(named):
                raise ValueError(f"{option} names an environment twice: {named}")
        for env_id, steps in self.env_steps:
            if isinstance(steps, bool) or int(steps) != steps or steps < 1:
                raise ValueError(f"--steps {env_id}: steps must be an integer >= 1, got {steps!r}")
        # Pairs sorted by environment id: the same options given in another order are the same sweep (resume).
        object.__setattr__(self, "demos", tuple(sorted((str(e), str(s)) for e, s in self.demos)))
        object.__setattr__(self, "env_steps", tuple(sorted((str(e), int(s)) for e, s in self.env_steps)))
        self.steps  # every environment has a budget (or stops here naming the one without)

    @property
    def steps(self) -> dict[str, int]:
        """Environment steps of one run per environment: ``env_steps`` where given, else the budget's."""
        given = dict(self.env_steps)
        return {env_id: int(given[env_id]) if env_id in given else budget_steps(env_id, self.budget)
                for env_id in self.envs}

    def demos_for(self, env_id: str) -> str:
        return dict(self.demos).get(env_id, "bundled")

    @property
    def selects(self) -> bool:
        """Whether clips are chosen on selection seeds (more than one clip, some L > 1)."""
        return len(self.std_clips) > 1 and any(c > 1 for c in self.critics)

    def to_json(self) -> dict:
        return {"envs": list(self.envs), "methods": list(self.methods), "critics": list(self.critics),
                "std_clips": list(self.std_clips), "seeds": self.seeds, "selection_seeds": self.selection_seeds,
                "budget": self.budget, "trajectories": self.trajectories, "demos": [list(p) for p in self.demos],
                "env_steps": [list(p) for p in self.env_steps]}

    @classmethod
    def from_json(cls, data: dict) -> "Sweep":
        try:
            return cls(tuple(data["envs"]), tuple(data["methods"]), tuple(int(c) for c in data["critics"]),
                       tuple(float(c) for c in data["std_clips"]), int(data["seeds"]), int(data["selection_seeds"]),
                       str(data["budget"]), int(data["trajectories"]), tuple(tuple(p) for p in data["demos"]),
                       tuple((str(env_id), int(steps)) for env_id, steps in data.get("env_steps", [])))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a benchmark sweep: {error}") from None


@dataclass(frozen=True)
class RunSpec:
    """One ``soar train`` run of a sweep."""

    env_id: str
    method: str
    critics: int
    std_clip: float | None  # None for L = 1 (no clip applies)
    seed: int
    stage: str  # "selection" or "evaluation"
    steps: int
    demos: str
    trajectories: int

    @property
    def name(self) -> str:
        clip = "" if self.std_clip is None else f"-clip{clip_text(self.std_clip)}"
        return f"{self.env_id}/{self.method}-L{self.critics}{clip}-s{self.seed}"

    @property
    def group(self) -> tuple[str, str, int]:
        return self.env_id, self.method, self.critics


def selection_runs(sweep: Sweep) -> list[RunSpec]:
    """Stage 1: every clip of every (env, method, L > 1) on the selection seeds (none without a choice)."""
    if not sweep.selects:
        return []
    return [RunSpec(env_id, method, critics, clip, SELECTION_SEED_BASE + i, "selection", sweep.steps[env_id],
                    sweep.demos_for(env_id), sweep.trajectories)
            for env_id in sweep.envs for method in sweep.methods for critics in sweep.critics if critics > 1
            for clip in sweep.std_clips for i in range(sweep.selection_seeds)]


def evaluation_runs(sweep: Sweep, chosen: dict[tuple[str, str, int], float]) -> list[RunSpec]:
    """Stage 2: every (env, method, L) on the evaluation seeds, L > 1 with its clip from ``chosen``
    (the only clip when one was given); a group whose clip is not chosen yet is left out."""
    runs = []
    for env_id in sweep.envs:
        for method in sweep.methods:
            for critics in sweep.critics:
                if critics == 1:
                    clip = None
                elif sweep.selects:
                    if (env_id, method, critics) not in chosen:
                        continue  # its selection has not finished (see unchosen_groups)
                    clip = chosen[(env_id, method, critics)]
                else:
                    clip = sweep.std_clips[0]
                runs += [RunSpec(env_id, method, critics, clip, seed, "evaluation", sweep.steps[env_id],
                                 sweep.demos_for(env_id), sweep.trajectories) for seed in range(sweep.seeds)]
    return runs


def unchosen_groups(sweep: Sweep, chosen: dict[tuple[str, str, int], float]) -> list[tuple[str, str, int]]:
    """The (env, method, L > 1) groups of a selecting sweep that have no clip in ``chosen``."""
    if not sweep.selects:
        return []
    return [(e, m, c) for e in sweep.envs for m in sweep.methods for c in sweep.critics
            if c > 1 and (e, m, c) not in chosen]


def train_command(run: RunSpec, folder: str, budget: str) -> list[str]:
    """``soar train`` arguments (after ``python -m soar``) for ``run`` in ``folder``; a resume if it holds one."""
    if os.path.exists(os.path.join(folder, "config.json")):
        return ["train", "--resume", folder, "--steps", str(run.steps), "--no-progress", "--threads", "1"]
    argv = ["train", "--env", run.env_id, "--method", run.method, "--critics", str(run.critics), "--demos", run.demos,
            "--trajectories", str(run.trajectories), "--steps", str(run.steps), "--seed", str(run.seed),
            "--threads", "1", "--no-progress", "--out", folder]
    if run.std_clip is not None:
        argv += ["--std-clip", clip_text(run.std_clip)]
    if budget != "smoke":
        configured = build_config(run.env_id, run.method).checkpoint_every
        interval = checkpoint_interval(run.steps, configured)
        if interval != configured:
            argv += ["--set", f"checkpoint_every={interval}"]
    else:
        for name, value in SMOKE_SETTINGS.items():
            if name == "bc_steps" and run.method != "csil" or name == "discriminator_steps" and run.method not in (
                    "f-irl", "gail", "airl"):
                continue  # soar train refuses settings its method does not use
            argv += ["--set", f"{name}={value}"]
    return argv
