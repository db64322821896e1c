"""A clear error for every bad numeric argument, and a refusal for work that cannot finish.

Every case calls a public function with one bad argument and expects a ``ValueError`` whose
message *starts* with the argument's name (``"gamma must lie in [0, 1), got 1.0"``), which
is the shared format of :mod:`envs.validation`: a message that merely mentions the name
somewhere (a list of every requirement, a numpy error) does not count.
"""

import math

import gymnasium as gym
import numpy as np
import pytest

from agents import tabular, tabular_numpy
from agents.config import at_least, discount, non_negative_or_inf, positive_int
from agents.experts import ExpertConfig
from agents.sac import SAC
from agents.sampling import cumulative_table, sample_categorical, sample_occupancy
from envs import games, mdps, validation
from envs.gym_env import TabularMDPEnv
from mail import bc, expert_dataset, mail_bro, murmail
from mail.experiment import GridConfig, query_budgets
from mail.murmail import queries_per_iteration
from mail.oracle import ExpertOracle
from soar import tabular as soar
from soar.deep.config import TrainConfig
from soar.experiment import SweepConfig, run_sweep, threshold_table

NAN, INF = math.nan, math.inf


def lower_bound():
    return games.lower_bound_game(), games.lower_bound_expert(0.5)


def two_state_data():
    mdp = mdps.two_state_mdp()
    return mdp, soar.sample_expert_data(mdp, soar.optimal_policy(mdp), 10, seed=0)


def occupancy_call(game, gamma=None, count=3):
    policies = tabular.uniform_policies(game)
    return sample_occupancy(
        game.joint_transitions, tabular.pack_policies(game, policies), np.asarray(game.num_actions), game.initial,
        game.gamma if gamma is None else gamma, count, np.random.default_rng(0),
    )


def mdp_arrays():
    mdp = mdps.river_swim()
    return mdp.transitions, mdp.rewards[0]


def pendulum_sac(**kwargs):
    return SAC(gym.make("Pendulum-v1"), hidden=(8,), batch_size=4, buffer_size=100, **kwargs)


# (call, name of the bad argument); each call passes exactly one bad value.
CASES = {
    # exact solvers
    "solve_mdp gamma=1": (lambda: tabular.solve_mdp(*mdp_arrays(), 1.0), "gamma"),
    "solve_mdp gamma=nan": (lambda: tabular.solve_mdp(*mdp_arrays(), NAN), "gamma"),
    "solve_mdp gamma=-0.5": (lambda: tabular.solve_mdp(*mdp_arrays(), -0.5), "gamma"),
    "solve_mdp max_iterations=0": (lambda: tabular.solve_mdp(*mdp_arrays(), 0.9, max_iterations=0), "max_iterations"),
    "solve_mdp rewards=inf": (
        lambda: tabular.solve_mdp(mdp_arrays()[0], np.full((6, 2), INF), 0.9), "rewards[0, 0]"),
    "numpy solve_mdp gamma=1.5": (lambda: tabular_numpy.solve_mdp(*mdp_arrays(), 1.5), "gamma"),
    "numpy induced_mdp player=2": (
        lambda: tabular_numpy.induced_mdp(lower_bound()[0], lower_bound()[1], 2), "player"),
    "concentrability max_iterations=0": (
        lambda: tabular.concentrability(*lower_bound(), max_iterations=0), "max_iterations"),
    "zero_sum_equilibrium tol=0": (
        lambda: tabular.zero_sum_equilibrium(games.matching_pennies(), tol=0.0), "tol"),
    "zero_sum_equilibrium tol=nan": (
        lambda: tabular.zero_sum_equilibrium(games.matching_pennies(), tol=NAN), "tol"),
    "zero_sum_equilibrium max_iterations=0": (
        lambda: tabular.zero_sum_equilibrium(games.matching_pennies(), max_iterations=0), "max_iterations"),
    "solve_matrix_game payoff=nan": (lambda: tabular.solve_matrix_game(np.array([[0.0, NAN]])), "payoff[0, 1]"),
    # games and MDPs
    "random_game num_states=2.5": (lambda: games.random_game(2.5, 2), "num_states"),
    "random_game num_actions=0": (lambda: games.random_game(3, 0), "num_actions"),
    "random_game seed=-1": (lambda: games.random_game(3, 2, seed=-1), "seed"),
    "lower_bound_game c=nan": (lambda: games.lower_bound_game(c=NAN), "c"),
    "lower_bound_game x1_reward=inf": (lambda: games.lower_bound_game(x1_reward=INF), "x1_reward"),
    "matrix_game payoff=inf": (lambda: games.matrix_game(np.array([[1.0, INF]])), "payoff[0, 1]"),
    "two_state_mdp num_actions=2.5": (lambda: mdps.two_state_mdp(num_actions=2.5), "num_actions"),
    "river_swim num_states=3.5": (lambda: mdps.river_swim(num_states=3.5), "num_states"),
    "random_gridworld slip=nan": (lambda: mdps.random_gridworld(slip=NAN), "slip"),
    "random_gridworld size=2.5": (lambda: mdps.random_gridworld(size=2.5), "size"),
    "MarkovGame.reset seed=-1": (lambda: games.matching_pennies().reset(seed=-1), "seed"),
    # sampling
    "sample_occupancy gamma=1": (lambda: occupancy_call(games.matching_pennies(), gamma=1.0), "gamma"),
    "sample_occupancy count=2.5": (lambda: occupancy_call(games.matching_pennies(), count=2.5), "count"),
    "sample_categorical negative": (
        lambda: sample_categorical(np.array([[1.5, -0.5]]), np.random.default_rng(0)), "probabilities[0, 1]"),
    "cumulative_table nan": (lambda: cumulative_table(np.array([NAN, 1.0])), "probabilities[0]"),
    # tabular SOAR
    "soar_il cost_step=inf": (lambda: soar.soar_il(*two_state_data(), cost_step=INF), "cost_step"),
    "soar_il policy_step=nan": (lambda: soar.soar_il(*two_state_data(), policy_step=NAN), "policy_step"),
    "soar_il log_every=0": (lambda: soar.soar_il(*two_state_data(), log_every=0), "log_every"),
    "soar_il seed=-1": (lambda: soar.soar_il(*two_state_data(), seed=-1), "seed"),
    "sample_expert_data seed=1.5": (
        lambda: soar.sample_expert_data(mdps.two_state_mdp(), np.full((2, 20), 0.05), 5, seed=1.5), "seed"),
    "optimistic_q gamma=1": (lambda: soar.optimistic_q(np.zeros((2, 2)), np.zeros((3, 2, 2)), 1.0, 0.1), "gamma"),
    "ucb_q optimism=-1": (
        lambda: soar.ucb_q(np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2)), 0.9, -1.0), "optimism"),
    "mirror_descent_step step=nan": (
        lambda: soar.mirror_descent_step(np.full((2, 2), 0.5), np.zeros((2, 2)), NAN), "step"),
    "SweepConfig iterations=0": (lambda: SweepConfig(iterations=0), "iterations"),
    "SweepConfig cost_step=inf": (lambda: SweepConfig(cost_step=INF), "cost_step"),
    "run_sweep num_critics=[0]": (lambda: run_sweep(SweepConfig(), [0], [0], progress=False), "num_critics"),
    "run_sweep seeds=[]": (lambda: run_sweep(SweepConfig(), [1], [], progress=False), "seeds"),
    "threshold_table fraction=0": (lambda: threshold_table([], fraction=0.0), "fraction"),
    # MAIL
    "mail_bro step_size=inf": (
        lambda: mail_bro(lower_bound()[0], ExpertOracle(lower_bound()[1]), 5, step_size=INF), "step_size"),
    "mail_bro num_log_points=0": (
        lambda: mail_bro(lower_bound()[0], ExpertOracle(lower_bound()[1]), 5, num_log_points=0), "num_log_points"),
    "murmail bonus_scale=nan": (
        lambda: murmail(lower_bound()[0], ExpertOracle(lower_bound()[1]), 5, bonus_scale=NAN), "bonus_scale"),
    "murmail delta=nan": (lambda: murmail(lower_bound()[0], ExpertOracle(lower_bound()[1]), 5, delta=NAN), "delta"),
    "murmail seed=-2": (lambda: murmail(lower_bound()[0], ExpertOracle(lower_bound()[1]), 1, seed=-2), "seed"),
    "bc seed=-1": (lambda: bc(lower_bound()[0], ExpertOracle(lower_bound()[1]), 5, seed=-1), "seed"),
    "expert_dataset seed=0.5": (lambda: expert_dataset(*lower_bound(), 5, seed=0.5), "seed"),
    "ExpertOracle seed=-3": (lambda: ExpertOracle(lower_bound()[1], seed=-3), "seed"),
    "ExpertOracle.query state=1.5": (lambda: ExpertOracle(lower_bound()[1]).query(0, 1.5), "states"),
    "queries_per_iteration inner_episodes=0": (
        lambda: queries_per_iteration(lower_bound()[0], inner_episodes=0), "inner_episodes"),
    "query_budgets num_points=1": (lambda: query_budgets(100, 1), "num_points"),
    "GridConfig seeds=0": (lambda: GridConfig(seeds=0), "seeds"),
    "GridConfig queries=5": (lambda: GridConfig(queries=5), "queries"),
    "GridConfig points=1": (lambda: GridConfig(points=1), "points"),
    # deep settings and SAC
    "TrainConfig tau=0": (lambda: TrainConfig(env_id="x", tau=0.0), "tau"),
    "TrainConfig alpha=inf": (lambda: TrainConfig(env_id="x", alpha=INF), "alpha"),
    "TrainConfig reward_weight_decay=inf": (lambda: TrainConfig(env_id="x", reward_weight_decay=INF),
                                            "reward_weight_decay"),
    "ExpertConfig batch_size=0": (lambda: ExpertConfig(env_id="x", steps=10, batch_size=0), "batch_size"),
    "SAC learning_rate=nan": (lambda: pendulum_sac(learning_rate=NAN), "learning_rate"),
    "SAC learning_rate=-1": (lambda: pendulum_sac(learning_rate=-1.0), "learning_rate"),
    "SAC gamma=1": (lambda: pendulum_sac(gamma=1.0), "gamma"),
    "SAC tau=0": (lambda: pendulum_sac(tau=0.0), "tau"),
    "SAC batch_size=2.5": (lambda: SAC(gym.make("Pendulum-v1"), hidden=(8,), batch_size=2.5), "batch_size"),
    "SAC hidden=(0,)": (lambda: SAC(gym.make("Pendulum-v1"), hidden=(0,)), "hidden"),
    "SAC hidden=()": (lambda: SAC(gym.make("Pendulum-v1"), hidden=()), "hidden"),
    "SAC target_entropy=nan": (lambda: pendulum_sac(target_entropy=NAN), "target_entropy"),
    "SAC learning_starts=-1": (lambda: pendulum_sac(learning_starts=-1), "learning_starts"),
    "SAC seed=-1": (lambda: pendulum_sac(seed=-1), "seed"),
    "SAC alpha=nan": (lambda: pendulum_sac(alpha=NAN), "alpha"),
    "SAC.learn total_timesteps=-5": (lambda: pendulum_sac().learn(-5), "total_timesteps"),
    "TabularMDPEnv max_steps=0.5": (lambda: TabularMDPEnv(mdps.river_swim(), max_steps=0.5), "max_steps"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_numeric_argument_is_named_in_the_error(case):
    call, name = CASES[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value).startswith(f"{name} "), str(error.value)


@pytest.mark.parametrize("value, name, message", [
    (True, "count", "count must be an integer >= 0, got True"),  # a bool is not a count
    (np.int64(3), "count", None),
    (1e5, "count", None),  # an integral float is a count
    (np.array(4), "count", None),
])
def test_integers_accept_integral_numbers_and_refuse_bools(value, name, message):
    if message is None:
        assert validation.check_non_negative_int(value, name) == int(value)
        assert type(validation.check_non_negative_int(value, name)) is int
    else:
        with pytest.raises(ValueError, match=message):
            validation.check_non_negative_int(value, name)


def test_command_line_parsers_are_the_same_checks():
    # The same requirement on the command line (argparse names the option) and in the API.
    import argparse

    for parse, text, api_value in ((positive_int, "0", 0), (discount, "1", 1.0), (non_negative_or_inf, "-1", -1.0),
                                   (at_least(10), "5", 5)):
        with pytest.raises(argparse.ArgumentTypeError) as cli_error:
            parse(text)
        with pytest.raises(ValueError) as api_error:
            parse.check(api_value, "x")
        assert str(api_error.value).startswith("x " + str(cli_error.value).rsplit(", got ", 1)[0])
        assert str(cli_error.value).endswith(f", got {text}")
    assert positive_int("200k") == 200_000 and discount("0.9") == 0.9 and non_negative_or_inf("inf") == INF


# ------------------------------------------------------------ work that cannot finish
NEAR_ONE = 1.0 - 1e-7  # rollouts of 1e7 steps on average


@pytest.mark.parametrize("case", [
    "sample_occupancy", "soar_il", "mail_bro", "murmail", "bc from an oracle", "expert_dataset",
])
def test_sampled_rollouts_refuse_a_discount_within_1e_6_of_one(case):
    game = games.random_game(2, 2, seed=0, gamma=NEAR_ONE)
    expert = tabular.uniform_policies(game)
    mdp = mdps.river_swim(gamma=NEAR_ONE)
    calls = {
        "sample_occupancy": lambda: occupancy_call(game, count=1),
        "soar_il": lambda: soar.soar_il(mdp, soar.sample_expert_data(mdp, soar.optimal_policy(mdp), 5), 1, 1),
        "mail_bro": lambda: mail_bro(game, ExpertOracle(expert), 1),
        "murmail": lambda: murmail(game, ExpertOracle(expert), 1, inner="exact"),
        "bc from an oracle": lambda: bc(game, ExpertOracle(expert), 1),
        "expert_dataset": lambda: expert_dataset(game, expert, 1),
    }
    with pytest.raises(ValueError, match=r"within 1e-06 of 1: a sampled rollout lasts 1 / \(1 - gamma\) = 1e\+07 "
                                         r"steps on average, which does not finish in reasonable time"):
        calls[case]()


def test_the_exact_solvers_still_take_a_discount_near_one():
    game = games.random_game(3, 2, seed=0, gamma=NEAR_ONE)
    gap = tabular.nash_gap(game, tabular.uniform_policies(game)).total
    assert math.isfinite(gap) and gap >= 0


@pytest.mark.parametrize("call", [
    lambda game, oracle: murmail(game, oracle, 0, horizon=3_000_000_000),
    lambda game, oracle: queries_per_iteration(game, horizon=3_000_000_000),
])
def test_horizons_in_the_billions_are_refused(call):
    game, expert = lower_bound()
    with pytest.raises(ValueError, match=r"horizon = 3000000000 exceeds 1e\+07 steps: .* would not finish"):
        call(game, ExpertOracle(expert))


def test_a_gridworld_that_cannot_be_drawn_is_refused_instead_of_looping():
    # Four cells, each a wall with probability 0.9999: two connected free cells almost never occur.
    with pytest.raises(ValueError, match="wall_fraction = 0.9999 connected a start and a goal in 10000 draws"):
        mdps.random_gridworld(size=2, wall_fraction=0.9999)
