"""Built-in game constructors."""

import numpy as np
import pytest

from envs import games
from envs.games import CP, S0, S1, S2, S3, X1, X2


def test_random_game_shapes_and_zero_sum():
    game = games.random_game(6, (2, 4), seed=3)
    assert game.transitions.shape == (6, 2, 4, 6)
    assert game.is_zero_sum()
    np.testing.assert_allclose(game.initial, np.full(6, 1 / 6))
    assert np.all(np.abs(game.rewards) <= 1)
    general = games.random_game(4, 2, num_players=3, zero_sum=False, seed=0)
    assert general.rewards.shape == (3, 4, 2, 2, 2)
    assert not general.is_zero_sum()


def test_random_game_is_reproducible():
    a = games.random_game(5, 3, seed=11)
    b = games.random_game(5, 3, seed=11)
    np.testing.assert_array_equal(a.transitions, b.transitions)
    assert not np.array_equal(a.rewards, games.random_game(5, 3, seed=12).rewards)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_states=3, num_actions=2, num_players=3, zero_sum=True), "exactly 2 players"),
        (dict(num_states=3, num_actions=(2, 2, 2), num_players=2), "3 entries for 2 players"),
        (dict(num_states=0, num_actions=2), "num_states must be an integer >= 1"),
    ],
)
def test_random_game_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        games.random_game(**kwargs)


def test_lower_bound_game_dynamics():
    game = games.lower_bound_game(c=0.25)
    P = game.transitions
    assert P[S0, 2, 2, S2] == 1 and P[S0, 0, 2, S1] == 1 and P[S0, 2, 1, S1] == 1
    for a, b, target in [(0, 0, X1), (1, 1, X1), (1, 0, X2), (0, 1, X2), (2, 0, CP), (0, 2, CP), (2, 2, CP)]:
        assert P[S1, a, b, target] == 1
    assert np.all(P[S2, :, :, S3] == 1)
    for state in (S3, X1, X2, CP):
        assert np.all(P[state, :, :, state] == 1)
    assert np.all(game.rewards[0, X1] == 1) and np.all(game.rewards[0, X2] == -0.25)
    assert game.is_zero_sum() and game.initial[S0] == 1


def test_lower_bound_expert_family():
    mu, nu = games.lower_bound_expert(0.3)
    np.testing.assert_allclose(mu[S0], [0.7, 0, 0.3])
    np.testing.assert_allclose(nu[S1], [0, 0, 1])
    with pytest.raises(ValueError, match="weight_black"):
        games.lower_bound_expert(1.5)
