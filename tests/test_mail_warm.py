"""MAIL-WARM and the grid race: the game against the spec's published numbers, query counting,
coverage of the states a deviator reaches, the planner's closed forms and the Nash gap."""

import math

import numpy as np
import pytest

from agents import tabular
from envs import games
from mail import ExpertOracle, bc, cli, expert_dataset, mail_warm
from mail.mail_warm import default_horizon, exploration_q, queries_per_episode_round

GRID = games.grid_race()
GRID_EXPERT = tabular.zero_sum_equilibrium(GRID).policies


def grid_state(p1: tuple[int, int], p2: tuple[int, int]) -> int:
    """The documented index of the state with player 1 on ``p1`` and player 2 on ``p2`` (3 x 3 grid)."""
    a, b = 3 * p1[0] + p1[1], 3 * p2[0] + p2[1]
    return a * 8 + (b if b < a else b - 1)


UP, DOWN, LEFT, RIGHT = range(4)


def next_state(state: int, a: int, b: int) -> int:
    row = GRID.transitions[state, a, b]
    assert row.max() == 1.0  # deterministic moves
    return int(row.argmax())


# ------------------------------------------------------------------ the grid race
def test_grid_race_moves_walls_and_collisions_by_hand():
    start = grid_state((1, 0), (2, 1))
    assert GRID.num_states == 72 and GRID.initial[start] == 1.0
    # player 1 right to (1, 1) while player 2 moves left to (2, 0)
    assert next_state(start, RIGHT, LEFT) == grid_state((1, 1), (2, 0))
    # walls: player 1 left from column 0, player 2 down from row 2: nobody moves
    assert next_state(start, LEFT, DOWN) == start
    # both into (1, 1): both stay
    assert next_state(start, RIGHT, UP) == start
    # a swap: (1, 0) <-> (1, 1) is refused for both
    side_by_side = grid_state((1, 0), (1, 1))
    assert next_state(side_by_side, RIGHT, LEFT) == side_by_side
    # into the cell the other is leaving: allowed
    assert next_state(side_by_side, RIGHT, RIGHT) == grid_state((1, 1), (1, 2))
    # the goal (0, 2) absorbs and pays +1 / -1 per step to player 1
    won, lost = grid_state((0, 2), (2, 2)), grid_state((1, 1), (0, 2))
    for state, reward in ((won, 1.0), (lost, -1.0)):
        assert np.all(GRID.transitions[state, :, :, state] == 1.0)
        assert np.all(GRID.rewards[0, state] == reward) and np.all(GRID.rewards[1, state] == -reward)


def test_grid_race_matches_the_spec_numbers():
    """shared/spec/mail-warm.md: value 0 at the start, the equilibrium visits 3 of the 72 states,
    BC with unlimited self-play data has Nash gap 13.85 ("first" default) and 9.15 ("uniform")."""
    equilibrium = tabular.zero_sum_equilibrium(GRID)
    assert abs(GRID.initial @ equilibrium.values) < 1e-9
    visited = tabular.occupancy(GRID, equilibrium.policies) > 0
    assert visited.sum() == 3
    for default, published in (("first", 13.85), ("uniform", 9.15)):
        fallback = np.eye(4)[0] if default == "first" else np.full(4, 0.25)
        clone = [np.where(visited[:, None], policy, fallback) for policy in equilibrium.policies]
        assert round(tabular.nash_gap(GRID, clone).total, 2) == published
        data = expert_dataset(GRID, equilibrium.policies, 20_000, seed=0)
        assert round(bc(GRID, data, default=default).history.gap_last[-1], 2) == published


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=1), "size must be at least 2"),
    (dict(goal=(3, 0)), r"goal must be a \(row, column\) cell of the 3 x 3 grid"),
    (dict(starts=((1, 0), (1, 0))), "starts must be two distinct cells off the goal"),
    (dict(starts=((0, 2), (1, 0))), "starts must be two distinct cells off the goal"),
    (dict(gamma=1.0), "gamma"),
])
def test_grid_race_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        games.grid_race(**kwargs)


# ------------------------------------------------------------------ the explorer's planner
@pytest.mark.parametrize("gamma, horizon", [(0.9, 10), (0.99, 100), (0.8, 5), (0.5, 2)])
def test_default_horizon_is_the_exact_ceiling_of_the_effective_horizon(gamma, horizon):
    assert default_horizon(gamma) == horizon


def test_untried_pairs_are_worth_the_horizon():
    q = exploration_q(np.zeros((3, 2, 3)), 10.0, 0.9, 10)
    assert np.all(q == 10.0)


@pytest.mark.parametrize("visits", [1, 4, 25, 400])
def test_planner_closed_forms_on_one_state(visits):
    """One state looping on itself. With action 1 untried, V = H and
    Q(s, 0) = u / H + gamma H; with both tried N times, Q is the bonus summed over H sweeps,
    u / H (1 - gamma^H) / (1 - gamma)."""
    beta, gamma, horizon = 10.0, 0.9, 10
    bonus = min(beta / math.sqrt(visits), horizon) / horizon
    counts = np.zeros((1, 2, 1))
    counts[0, 0, 0] = visits
    q = exploration_q(counts, beta, gamma, horizon)
    assert q[0, 1] == horizon
    assert q[0, 0] == pytest.approx(bonus + gamma * horizon, rel=1e-12)
    counts[0, 1, 0] = visits
    q = exploration_q(counts, beta, gamma, horizon)
    assert q[0] == pytest.approx([bonus * (1 - gamma**horizon) / (1 - gamma)] * 2, rel=1e-12)


# ------------------------------------------------------------------ queries and coverage
class RecordingOracle(ExpertOracle):
    """An expert oracle that also remembers where it was asked."""

    def __init__(self, policies, seed=None):
        super().__init__(policies, seed)
        self.asked: list[tuple[int, int]] = []

    def query_many(self, player, states):
        states = np.asarray(states).ravel()
        self.asked += [(int(player), int(s)) for s in states]
        return super().query_many(player, states)

    def query_all(self, state):
        self.asked += [(player, int(state)) for player in range(self.num_players)]
        return super().query_all(state)


@pytest.mark.parametrize("episodes", [0, 1, 3])
def test_every_visited_state_costs_one_query_per_player(episodes):
    oracle = RecordingOracle(GRID_EXPERT, seed=0)
    result = mail_warm(GRID, oracle, episodes, seed=0)
    horizon = default_horizon(GRID.gamma)
    steps = 2 * episodes * horizon  # one episode per deviator per round
    assert result.history.simulator_steps[-1] == steps
    assert oracle.total_queries == result.history.expert_queries[-1] == 2 * steps
    assert oracle.total_queries == episodes * queries_per_episode_round(GRID)
    # the visited states, each asked of both players
    players = np.array([p for p, _ in oracle.asked]).reshape(-1, 2)
    states = np.array([s for _, s in oracle.asked]).reshape(-1, 2)
    assert np.all(players == [0, 1]) and np.all(states[:, 0] == states[:, 1])


def reachable_by_one_deviator(game, expert):
    """Brute force: states some single player's deviation can reach while the other follows the expert."""
    reached = set(np.flatnonzero(game.initial > 0))
    frontier = list(reached)
    while frontier:
        s = frontier.pop()
        for deviator in range(2):
            follower = 1 - deviator
            for a_dev in range(game.num_actions[deviator]):
                for a_fol in np.flatnonzero(expert[follower][s] > 0):
                    joint = (a_dev, a_fol) if deviator == 0 else (a_fol, a_dev)
                    for t in np.flatnonzero(game.transitions[(s, *joint)] > 0):
                        if int(t) not in reached:
                            reached.add(int(t))
                            frontier.append(int(t))
    return reached


def test_exploration_reaches_every_state_a_deviator_can_where_self_play_cannot():
    """The lower-bound game at C = inf: the expert only plays s0 -> s2 -> s3; a deviator also
    reaches s1 and Cp (never X1, X2, which need both to deviate)."""
    game, expert = games.lower_bound_game(), games.lower_bound_expert(1.0)
    reachable = reachable_by_one_deviator(game, expert)
    assert reachable == {games.S0, games.S1, games.S2, games.S3, games.CP}
    oracle = RecordingOracle(expert, seed=1)
    result = mail_warm(game, oracle, 3, seed=1)
    assert {s for _, s in oracle.asked} == reachable
    self_play = expert_dataset(game, expert, 10_000, seed=1)
    assert set(self_play.states.tolist()) == {games.S0, games.S2, games.S3}
    # knowing the expert wherever a deviator goes is knowing enough: the gap is the expert's, 0
    assert result.history.gap_last[-1] < 1e-9
    assert bc(game, self_play).history.gap_last[-1] > 1.0


def test_grid_race_gap_falls_to_the_experts_where_bc_stays_flat():
    """Once every state a deviator can reach is queried, the clone equals the (deterministic
    there) expert on them and its Nash gap is the expert's (about 0); BC stays at 9.15."""
    reachable = sorted(reachable_by_one_deviator(GRID, GRID_EXPERT))
    assert all(np.isin(policy[reachable], (0.0, 1.0)).all() for policy in GRID_EXPERT)
    for seed in range(3):
        result = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=seed), 40, seed=seed, num_log_points=4)
        gaps = result.history.gap_last
        assert gaps[0] > 9.0 and gaps[-1] < 1e-6 and result.history.expert_queries[-1] == 1600
    data = expert_dataset(GRID, GRID_EXPERT, 1600, seed=0)
    assert bc(GRID, data).history.gap_last[-1] > 9.0


def test_runs_are_reproducible_and_profiles_valid():
    first = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=3), 4, seed=3)
    second = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=3), 4, seed=3)
    assert first.history.gap_last == second.history.gap_last
    for a, b in zip(first.policies, second.policies):
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.allclose(np.asarray(a).sum(axis=1), 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_episodes=-1), "num_episodes"),
    (dict(num_episodes=2.5), "num_episodes"),
    (dict(bonus_scale=0.0), "bonus_scale"),
    (dict(horizon=0), "horizon"),
    (dict(default="last"), "default"),
])
def test_bad_arguments_are_named(kwargs, message):
    arguments = dict(num_episodes=1) | kwargs
    with pytest.raises(ValueError, match=message):
        mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=0), **arguments)


def test_an_oracle_for_another_game_is_refused():
    with pytest.raises(ValueError, match="the oracle's expert is for a game with 7 states"):
        mail_warm(GRID, ExpertOracle(games.lower_bound_expert(1.0)), 1)


def test_three_players_take_turns_deviating():
    game = games.random_game(4, 2, num_players=3, zero_sum=False, seed=0)
    expert = tabular.uniform_policies(game)
    oracle = ExpertOracle(expert, seed=0)
    result = mail_warm(game, oracle, 2, horizon=5, seed=0)
    assert oracle.total_queries == 3 * 3 * 2 * 5 == result.history.expert_queries[-1]
    assert oracle.queries.tolist() == [30, 30, 30]


def test_command_line_runs_mail_warm_on_the_grid_race(tmp_path, capsys):
    cli.main(["run", "--game", "grid-race", "--algo", "mail-warm", "--bonus-scale", "5", "--seeds", "1",
              "--queries", "400", "--points", "2", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "| mail-warm |" in out and (tmp_path / "mail_nash_gap.png").exists()


def test_query_all_answers_every_player_from_its_expert_and_counts():
    first, second = np.array([[0.3, 0.7], [1.0, 0.0]]), np.array([[0.0, 0.0, 1.0], [0.5, 0.25, 0.25]])
    oracle = ExpertOracle([first, second], seed=0)
    answers = np.array([oracle.query_all(1) for _ in range(20_000)])
    assert oracle.queries.tolist() == [20_000, 20_000]
    assert np.all(answers[:, 0] == 0)  # player 1's expert always plays action 0 at state 1
    frequencies = np.bincount(answers[:, 1], minlength=3) / len(answers)
    assert np.all(np.abs(frequencies - [0.5, 0.25, 0.25]) < 4 * np.sqrt(0.25 / len(answers)))
    with pytest.raises(ValueError, match=r"states must lie in \[0, 2\)"):
        oracle.query_all(2)
