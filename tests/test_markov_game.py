"""The tabular game model: validation, immutability, simulator and PettingZoo view."""

import numpy as np
import pytest

from envs import MarkovGame, games


def valid_fields():
    transitions = np.full((2, 2, 3, 2), 0.5)
    rewards = np.zeros((2, 2, 2, 3))
    initial = np.array([1.0, 0.0])
    return transitions, rewards, initial, 0.9


def test_shapes_and_views():
    game = MarkovGame(*valid_fields())
    assert game.num_states == 2
    assert game.num_players == 2
    assert game.num_actions == (2, 3)
    assert game.joint_transitions.shape == (2, 6, 2)
    assert game.joint_rewards.shape == (2, 2, 6)
    # Joint index is C order: player 2's action varies fastest.
    assert game.joint_action_index([1, 2]) == 5


@pytest.mark.parametrize(
    "field, mutate, message",
    [
        ("transitions", lambda t: t.__setitem__((1, 0, 2, 0), 0.7), r"transitions\[1, 0, 2, :\] sums to 1.2"),
        ("transitions", lambda t: t.__setitem__((0, 1, 1, 0), -0.5), r"transitions\[0, 1, 1, 0\] = -0.5 is negative"),
        ("transitions", lambda t: t.__setitem__((0, 0, 0, 1), np.nan), r"transitions\[0, 0, 0, 1\] is not finite"),
        ("rewards", lambda r: r.__setitem__((1, 0, 1, 2), np.inf), r"rewards\[1, 0, 1, 2\] is not finite"),
        ("initial", lambda i: i.__setitem__(1, 0.5), r"initial\[:\] sums to 1.5"),
    ],
)
def test_bad_values_name_field_and_index(field, mutate, message):
    transitions, rewards, initial, gamma = valid_fields()
    fields = {"transitions": transitions, "rewards": rewards, "initial": initial}
    mutate(fields[field])
    with pytest.raises(ValueError, match=message):
        MarkovGame(transitions, rewards, initial, gamma)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(transitions=np.full((2, 2, 3, 3), 1 / 3)), "last axis has 3"),
        (dict(transitions=np.ones((2, 2))), r"shape \(S, A_1, ..., A_n, S\)"),
        (dict(rewards=np.zeros((1, 2, 2, 3))), "rewards must have shape"),
        (dict(initial=np.ones(3) / 3), r"initial must have shape \(2,\)"),
        (dict(gamma=1.0), r"gamma must lie in \[0, 1\)"),
        (dict(gamma=-0.1), r"gamma must lie in \[0, 1\)"),
    ],
)
def test_bad_shapes_and_gamma(change, message):
    transitions, rewards, initial, gamma = valid_fields()
    fields = dict(transitions=transitions, rewards=rewards, initial=initial, gamma=gamma)
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        MarkovGame(**fields)


def test_immutable_after_construction():
    transitions, rewards, initial, gamma = valid_fields()
    game = MarkovGame(transitions, rewards, initial, gamma)
    transitions[0, 0, 0] = [1.0, 0.0]  # the caller's array is copied, not shared
    assert game.transitions[0, 0, 0, 0] == 0.5
    with pytest.raises(ValueError, match="read-only"):
        game.transitions[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        game.joint_rewards[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        game.gamma = 0.5


def test_simulator_matches_model_frequencies():
    game = games.random_game(3, 2, seed=4)
    game.reset(seed=0)
    counts = np.zeros(3)
    num_steps = 20_000
    for _ in range(num_steps):
        game._state = 1  # measure the next-state law from a fixed state and joint action
        next_state, rewards = game.step([1, 0])
        counts[next_state] += 1
    np.testing.assert_allclose(rewards, game.rewards[:, 1, 1, 0])
    expected = game.transitions[1, 1, 0]
    # Four binomial standard errors.
    tolerance = 4 * np.sqrt(expected * (1 - expected) / num_steps)
    assert np.all(np.abs(counts / num_steps - expected) <= tolerance)


def test_simulator_is_seeded_and_checks_actions():
    game = games.random_game(5, 3, seed=0)
    runs = []
    for _ in range(2):
        states = [game.reset(seed=7)]
        for _ in range(20):
            states.append(game.step([0, 2])[0])
        runs.append(states)
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="out of range"):
        game.step([0, 3])
    with pytest.raises(ValueError, match="needs 2 actions"):
        game.step([0])
    with pytest.raises(RuntimeError, match="reset"):
        games.random_game(2, 2, seed=0).step([0, 0])


def test_parallel_env_passes_pettingzoo_api_test():
    from pettingzoo.test import parallel_api_test

    env = games.random_game(4, (2, 3), seed=0).parallel_env(max_steps=25)
    parallel_api_test(env, num_cycles=60)


def test_parallel_env_rewards_and_truncation():
    game = games.rock_paper_scissors()
    env = game.parallel_env(max_steps=3)
    observations, infos = env.reset(seed=1)
    assert observations == {"player_0": 0, "player_1": 0}
    for step in range(3):
        _, rewards, terminations, truncations, _ = env.step({"player_0": 1, "player_1": 0})
        assert rewards == {"player_0": 1.0, "player_1": -1.0}  # paper beats rock
        assert not any(terminations.values())
    assert all(truncations.values())
    assert env.agents == []
