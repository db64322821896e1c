"""The one categorical sampler and the one occupancy sampler (agents.sampling), against exact quantities."""

import numpy as np
import pytest
from scipy import stats

from agents import tabular
from agents.sampling import (
    categorical, cumulative_table, draw, sample_categorical, sample_occupancy, sample_trajectories,
)
from envs import games, mdps


def occupancy_sample(game, policies, count, seed=0, **kwargs):
    return sample_occupancy(
        game.joint_transitions, tabular.pack_policies(game, policies), np.asarray(game.num_actions), game.initial,
        game.gamma, count, np.random.default_rng(seed), **kwargs,
    )


def within_binomial_band(counts, probabilities, width=4.5):
    n = counts.sum()
    frequencies = counts / n
    return np.all(np.abs(frequencies - probabilities) <= width * np.sqrt(probabilities * (1 - probabilities) / n) + 1e-12)


def test_batched_and_scalar_draws_agree_and_follow_the_probabilities():
    probabilities = np.array([0.2, 0.0, 0.5, 0.3, 0.0])
    u = np.random.default_rng(0).random(40_000)
    batched = draw(cumulative_table(probabilities), u)
    scalar = np.array([categorical(probabilities, x) for x in u])
    np.testing.assert_array_equal(batched, scalar)
    counts = np.bincount(batched, minlength=5)
    assert counts[1] == counts[4] == 0
    assert stats.chisquare(counts[[0, 2, 3]], 40_000 * probabilities[[0, 2, 3]]).pvalue > 1e-3


def test_rounding_never_yields_a_zero_probability_entry():
    # The row sums to 1 - 2e-16: a uniform just below 1 lies beyond the cumulative sum.
    probabilities = np.array([0.1, 0.9 - 2e-16, 0.0])
    u = np.array([1.0 - 1e-16])
    assert draw(cumulative_table(probabilities), u)[0] == 1
    assert categorical(probabilities, u[0]) == 1


def test_sample_categorical_draws_one_index_per_row():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    drawn = sample_categorical(np.repeat(rows, 10_000, axis=0), np.random.default_rng(1)).reshape(3, 10_000)
    assert np.all(drawn[0] == 0) and np.all(drawn[1] == 1)
    assert abs(drawn[2].mean() - 0.5) < 4.5 * 0.5 / 100


@pytest.mark.parametrize("with_next", [False, True])
def test_independent_samples_follow_the_occupancy_and_count_steps(with_next):
    mdp = mdps.river_swim(gamma=0.8)
    policy = np.tile([0.3, 0.7], (mdp.num_states, 1))
    sample = occupancy_sample(mdp, [policy], 20_000, with_next=with_next)
    exact = tabular.occupancy(mdp, [policy])
    assert within_binomial_band(np.bincount(sample.states, minlength=mdp.num_states), exact)
    # T ~ Geometric(1 - gamma) - 1 steps reach s_T: mean gamma / (1 - gamma) = 4; s' adds one step.
    expected_steps = 4.0 + (1.0 if with_next else 0.0)
    assert sample.steps / 20_000 == pytest.approx(expected_steps, rel=0.04)
    # One joint action is drawn per step taken, and with s' also one at each kept state.
    assert sample.draws == sample.steps
    if with_next:
        pairs = np.zeros((mdp.num_states, 2))
        np.add.at(pairs, (sample.states, sample.joint_actions), 1.0)
        assert within_binomial_band(pairs.ravel(), (exact[:, None] * policy).ravel())
        # s' given (s, a) follows the transition row; the most visited pair has enough samples.
        s, a = np.unravel_index(np.argmax(pairs), pairs.shape)
        chosen = (sample.states == s) & (sample.joint_actions == a)
        counts = np.bincount(sample.next_states[chosen], minlength=mdp.num_states)
        assert within_binomial_band(counts, mdp.transitions[s, a])
    else:
        assert np.all(sample.joint_actions == -1) and np.all(sample.next_states == -1)


def test_actions_without_next_state_cost_no_extra_step():
    mdp = mdps.river_swim(gamma=0.8)
    policy = np.tile([0.3, 0.7], (mdp.num_states, 1))
    sample = occupancy_sample(mdp, [policy], 20_000, with_actions=True)
    assert sample.draws == sample.steps + 20_000  # one extra draw at every kept state, no extra step
    assert sample.steps / 20_000 == pytest.approx(4.0, rel=0.04)
    assert np.all(sample.next_states == -1)


def test_trajectory_samples_keep_every_state_of_consecutive_rollouts():
    # A deterministic chain that always moves right: each rollout reads 0, 1, 2, ...
    S = 400  # long enough that no rollout reaches the absorbing end (0.9^399)
    transitions = np.zeros((S, 1, S))
    transitions[np.arange(S), 0, np.minimum(np.arange(S) + 1, S - 1)] = 1.0
    chain = mdps.mdp(transitions, np.zeros((S, 1)), np.eye(S)[0], 0.9)
    sample = occupancy_sample(chain, [np.ones((S, 1))], 5_000, every_state=True)
    restarts = sample.states == 0
    continues = np.diff(sample.states) == 1
    assert np.all(continues | restarts[1:])
    # Every kept state but a rollout's first was reached by one step.
    assert sample.steps == int((~restarts).sum())
    # Rollouts have Geometric(0.1) states: mean length 10.
    assert 5_000 / restarts.sum() == pytest.approx(10.0, rel=0.1)


def test_whole_trajectories_are_consecutive_and_their_states_follow_the_occupancy():
    mdp = mdps.river_swim(gamma=0.8)
    policy = np.tile([0.3, 0.7], (mdp.num_states, 1))
    count = 5_000
    sample = sample_trajectories(mdp.joint_transitions, tabular.pack_policies(mdp, [policy]),
                                 np.asarray(mdp.num_actions), mdp.initial, mdp.gamma, count, np.random.default_rng(3))
    owner = sample.trajectory
    assert np.all(np.diff(owner) >= 0) and set(np.unique(owner)) == set(range(count))  # none is empty
    same = owner[1:] == owner[:-1]
    # Within a rollout each transition starts where the previous one ended.
    assert np.array_equal(sample.next_states[:-1][same], sample.states[1:][same])
    # Geometric(1 - gamma) transitions each: mean 1 / (1 - gamma) = 5, so 5 count steps in all.
    lengths = np.bincount(owner)
    assert sample.steps == len(sample.states) and lengths.mean() == pytest.approx(5.0, rel=0.03)
    histogram = np.bincount(np.minimum(lengths, 12), minlength=13)[1:]  # lengths 1..11, then 12 or more
    geometric = stats.geom(0.2)
    expected = np.r_[geometric.pmf(np.arange(1, 12)), geometric.sf(11)]
    assert within_binomial_band(histogram, expected)
    # The states a rollout leaves, pooled, are distributed as the normalised discounted occupancy.
    exact = tabular.occupancy(mdp, [policy])
    assert within_binomial_band(np.bincount(sample.states, minlength=mdp.num_states), exact, width=6)
    # Each rollout starts from the initial distribution; actions follow the policy; s' the transition row.
    starts = sample.states[np.r_[True, ~same]]
    assert within_binomial_band(np.bincount(starts, minlength=mdp.num_states), mdp.initial)
    pairs = np.zeros((mdp.num_states, 2))
    np.add.at(pairs, (sample.states, sample.joint_actions), 1.0)
    assert within_binomial_band(pairs.ravel(), (exact[:, None] * policy).ravel(), width=6)
    s, a = np.unravel_index(np.argmax(pairs), pairs.shape)
    chosen = (sample.states == s) & (sample.joint_actions == a)
    assert within_binomial_band(np.bincount(sample.next_states[chosen], minlength=mdp.num_states),
                                mdp.transitions[s, a])


def test_joint_actions_of_a_two_player_profile():
    game = games.random_game(4, (2, 3), seed=0)
    rng = np.random.default_rng(3)
    profile = [rng.dirichlet(np.ones(a), size=4) for a in game.num_actions]
    sample = occupancy_sample(game, profile, 30_000, with_actions=True)
    table = tabular.joint_action_table(game)
    exact = tabular.occupancy(game, profile)
    joint = np.einsum("s,sa,sb->sab", exact, *profile).reshape(4, 6)
    counts = np.zeros((4, 6))
    np.add.at(counts, (sample.states, sample.joint_actions), 1.0)
    assert within_binomial_band(counts.ravel(), joint.ravel())
    assert table[sample.joint_actions].shape == (30_000, 2)
