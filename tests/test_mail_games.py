"""Explore-then-clone and BC on PettingZoo's Tic-Tac-Toe and Connect Four (mail.games).

Every number is checked against something the code under test did not compute: known
facts about Tic-Tac-Toe, hand-traced games and best responses (the reasoning is in each
docstring), the scores that bitbully's documentation gives, closed forms, and counts kept
by the test itself.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from mail.cli import main as mail_main
from mail.games import experiment, tictactoe
from mail.games.bc import bc
from mail.games.clone import CloneConfig, ClonedPolicy, fit_clone, mlp
from mail.games.common import GameOracle, QueryLog, get_game, play_game, policy_player
from mail.games.explore_clone import (EllipticalBonus, ExploreConfig, Explorer, explore, explore_then_clone,
                                      masked_greedy, td_targets)

TINY_CLONE = CloneConfig(hidden=(16,), steps=20, batch_size=32)
TINY_EXPLORE = ExploreConfig(hidden=(16,), learning_starts=4, batch_size=8, target_update=5)


# ------------------------------------------------------------------ helpers
class MaskPolicy:
    """A policy defined straight from the legal-move mask (no game tree): ``rule(mask) -> probabilities``."""

    def __init__(self, rule):
        self.rule = rule

    def _rows(self, obs):
        masks = np.atleast_2d(np.asarray(obs["action_mask"], dtype=np.float64))
        return np.array([self.rule(mask) for mask in masks])

    def act(self, obs, deterministic=False, rng=None):
        rows = self._rows(obs)
        rng = rng or np.random.default_rng()
        moves = np.array([row.argmax() if deterministic else rng.choice(len(row), p=row) for row in rows])
        return moves[0] if np.ndim(obs["action_mask"]) == 1 else moves

    def predict(self, obs, deterministic=False):
        return self.act(obs, deterministic), None

    def log_prob(self, obs, actions):
        rows = self._rows(obs)
        with np.errstate(divide="ignore"):
            values = np.log(rows[np.arange(len(rows)), np.broadcast_to(actions, (len(rows),))])
        return values[0] if np.ndim(obs["action_mask"]) == 1 else values


def uniform(mask):
    return mask / mask.sum()


def first_legal(mask):
    row = np.zeros_like(mask)
    row[np.argmax(mask)] = 1.0
    return row


class Counting:
    """Wraps a policy and counts the calls of ``act`` (the oracle's only way to ask it)."""

    def __init__(self, policy):
        self.policy, self.calls = policy, 0

    def act(self, obs, deterministic=False, rng=None):
        self.calls += 1
        return self.policy.act(obs, deterministic, rng)

    def predict(self, obs, deterministic=False):
        return self.policy.predict(obs, deterministic)

    def log_prob(self, obs, actions):
        return self.policy.log_prob(obs, actions)


def scripted(moves):
    """A player that plays the given cells in order."""
    queue = list(moves)
    return lambda observation: queue.pop(0)


# ------------------------------------------------------------------ Tic-Tac-Toe: tree and encoding
def test_the_game_tree_has_the_known_numbers_of_positions():
    """Tic-Tac-Toe has 5478 legal positions reachable from the empty board; 958 are terminal: 626 won by X
    (who moves first), 316 by O, 16 full-board draws (well-known enumeration results)."""
    tree = tictactoe.game_tree()
    assert tree.num_positions == 5478
    assert tree.terminal.sum() == 958
    assert (tree.outcome[tree.terminal] == 1).sum() == 626
    assert (tree.outcome[tree.terminal] == -1).sum() == 316
    assert ((tree.outcome == 0) & tree.terminal).sum() == 16
    assert tictactoe.minimax_values()[0] == 0  # perfect play draws


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tree_observations_are_pettingzoos(seed):
    """Along random games in PettingZoo's tictactoe_v3, the tree's observation dict of the position (followed
    through the tree's own children) equals what env.last() gives the player to move."""
    tree, env, rng = tictactoe.game_tree(), get_game("tictactoe").make_env(), np.random.default_rng(seed)
    env.reset(seed=seed)
    position = 0
    for agent in env.agent_iter():
        observation, _, termination, truncation, _ = env.last()
        if termination or truncation:
            assert tree.terminal[position]
            env.step(None)
            continue
        ours = tree.observations([position])
        np.testing.assert_array_equal(ours["observation"][0], observation["observation"])
        np.testing.assert_array_equal(ours["action_mask"][0], observation["action_mask"])
        move = int(rng.choice(np.flatnonzero(observation["action_mask"])))
        position = tree.children[position, move]
        env.step(move)


@pytest.mark.parametrize("players, expected", [
    # X takes the lowest free cell, so does O: X 0, O 1, X 2, O 3, X 4, O 5, X 6 -> X holds 2, 4, 6 (a diagonal)
    ((lambda o: int(np.argmax(o["action_mask"])), lambda o: int(np.argmax(o["action_mask"]))), 1),
    # X 0, O 4, X 1, O 2, X 5, O 6 -> O holds 2, 4, 6
    ((scripted([0, 1, 5]), scripted([4, 2, 6])), -1),
    # X 4, O 0, X 2, O 6, X 3, O 5, X 1, O 7, X 8: no line for anyone -> draw
    ((scripted([4, 2, 3, 1, 8]), scripted([0, 6, 5, 7])), 0),
])
def test_play_game_reports_the_winner(players, expected):
    assert play_game(get_game("tictactoe").make_env(), players) == expected


def test_play_game_refuses_an_illegal_move():
    with pytest.raises(ValueError, match="illegal move 0"):
        play_game(get_game("tictactoe").make_env(), [scripted([0, 1]), scripted([0])])


# ------------------------------------------------------------------ Tic-Tac-Toe: exploitability
def test_the_minimax_expert_is_unexploitable_and_draws_against_itself():
    expert = tictactoe.minimax_expert()
    result = tictactoe.exploitability(expert)
    assert result.value == 0 and result.best_response == (0, 0)
    assert tictactoe.exploitability(expert, greedy=True).value == 0
    assert tictactoe.match_outcome(expert, expert) == tictactoe.Outcome(0.0, 1.0, 0.0)


def test_always_the_lowest_free_cell_is_exploited_in_both_seats():
    """The policy plays the lowest-numbered free cell (cells 0 1 2 down the first column, then 3 4 5, 6 7 8).

    As X: X 0; the responder (O) takes 4; X 1; O must stop 0-1-2 and takes 2; X 3; O takes 6 and
    holds 2, 4, 6: the responder wins for sure (+1).
    As O: X takes 4; O 0; X 2 (threatening 2-4-6); O plays 1 and does not block; X takes 6 and wins (+1).
    Both best responses win with certainty: exploitability (1 + 1) / 2 = 1.
    """
    result = tictactoe.exploitability(MaskPolicy(first_legal))
    assert result.best_response == (1.0, 1.0) and result.value == 1.0


NEAR_END = [1, 0, 2,  # cells 0-2 (first column, top to bottom): X . O
            2, 2, 1,  # cells 3-5 (middle column): O O X
            1, 0, 0]  # cells 6-8 (last column): X . .


def test_exploitability_of_the_uniform_policy_near_the_end_matches_the_hand_computation():
    """From NEAR_END (X: 0, 5, 6; O: 2, 3, 4; X to move; free cells 1, 7, 8), the uniformly random policy.

    Every line but two is already blocked: 6-7-8 (X holds 6) and 1-4-7 (O holds 4). X moves twice more and
    O once, so O can never complete 1-4-7, and X wins exactly when it gets both 7 and 8, i.e. when X does
    not take 1 and O does not answer on the other of 7, 8:
    - X 1: X can no longer get both 7 and 8: draw whatever O does.
    - X 7: O 8 -> draw; O 1 -> X 8 completes 6-7-8.   - X 8: O 7 -> draw; O 1 -> X 7 wins.
    Policy as X (first seat): the responding O can never win, and answers every X move with a draw: 0.
    Policy as O (second seat): the responding X plays 7 (or 8); the random O then takes 1 with probability
    1/2 and X wins: 1/2 * 1 + 1/2 * 0 = 0.5 (X 1 would only draw).
    Exploitability (0 + 0.5) / 2 = 0.25.
    """
    result = tictactoe.exploitability(MaskPolicy(uniform), start=NEAR_END)
    assert result.best_response == pytest.approx((0.0, 0.5), abs=1e-12)
    assert result.value == pytest.approx(0.25, abs=1e-12)


def test_match_outcome_near_the_end_matches_the_hand_computation():
    """From NEAR_END (see above), the uniform policy against the minimax expert.

    Every X move keeps the draw (O has a drawing answer to each), so the expert as X is uniform over 1, 7, 8.
    Uniform as X: X 1 draws; after X 7 (X 8) the expert O takes 8 (7), the only move that does not lose:
    draw with probability 1.
    Uniform as O: the expert X plays 1 (draw) or 7 or 8 (probability 2/3), after which the random O loses
    with probability 1/2: loss 1/3, draw 2/3.
    Mean of the seats: win 0, draw 5/6, loss 1/6.
    """
    outcome = tictactoe.match_outcome(MaskPolicy(uniform), tictactoe.minimax_expert(), start=NEAR_END)
    assert (outcome.win, outcome.draw, outcome.loss) == pytest.approx((0.0, 5 / 6, 1 / 6), abs=1e-12)


def test_exploitability_refuses_policies_that_put_mass_on_illegal_moves():
    leaky = MaskPolicy(lambda mask: np.full(9, 1 / 9))
    with pytest.raises(ValueError, match="mass on illegal moves"):
        tictactoe.exploitability(leaky)
    with pytest.raises(ValueError, match="not a position reachable"):
        tictactoe.exploitability(MaskPolicy(uniform), start=[1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_exploitability_of_a_neural_policy_takes_one_batched_call():
    calls = []
    policy = fit_clone(_tiny_log(), TINY_CLONE, seed=0)
    original = policy.log_prob
    policy.log_prob = lambda obs, actions: calls.append(len(actions)) or original(obs, actions)
    tictactoe.exploitability(policy)
    assert len(calls) == 1 and calls[0] > 10_000  # every legal (position, move) pair at once


# ------------------------------------------------------------------ Connect Four expert
def test_the_connect_four_expert_is_the_softmax_of_bitbullys_documented_scores():
    """bitbully's documentation gives the empty board's scores {3: 1, 2: 0, 4: 0, 1: -1, 5: -1, 0: -2, 6: -2}."""
    from mail.games.connect_four import SolverExpert

    env = get_game("connect4").make_env()
    env.reset()
    observation = env.last()[0]
    scores = np.array([-2, -1, 0, 1, 0, -1, -2], dtype=float)
    for temperature in (1.0, 0.5):
        expected = np.exp(scores / temperature) / np.exp(scores / temperature).sum()
        np.testing.assert_allclose(SolverExpert(temperature).probabilities(observation), expected, rtol=1e-12)
    np.testing.assert_array_equal(SolverExpert(0.0).probabilities(observation), np.eye(7)[3])


def test_connect_four_boards_match_bitbullys_reading_of_the_moves():
    """After random PettingZoo moves, the board read from the observation is the one bitbully builds
    from the list of moves itself."""
    from bitbully import Board

    from mail.games.connect_four import boards_of

    env, rng, moves = get_game("connect4").make_env(), np.random.default_rng(3), []
    env.reset()
    for agent in env.agent_iter():
        observation, _, termination, truncation, _ = env.last()
        if termination or truncation:
            env.step(None)
            continue
        board, single = boards_of(observation)
        assert single and Board(board[0].tolist()) == Board(moves)
        move = int(rng.choice(np.flatnonzero(observation["action_mask"])))
        moves.append(move)
        env.step(move)


def test_the_connect_four_expert_plays_legal_moves_and_beats_a_random_player():
    """Six games (three in each seat, fixed seeds): the expert (temperature 1) wins at least five.
    play_game raises on an illegal move, so every move the expert made was legal."""
    from mail.games.connect_four import SolverExpert

    env, expert, rng = get_game("connect4").make_env(), SolverExpert(1.0), np.random.default_rng(0)
    random_player = MaskPolicy(uniform)
    wins = 0
    for game in range(6):
        players = [policy_player(expert, rng), policy_player(random_player, rng)]
        result = play_game(env, players if game % 2 == 0 else players[::-1], seed=game)
        wins += (result if game % 2 == 0 else -result) > 0
    assert wins >= 5


# ------------------------------------------------------------------ query counting
@pytest.mark.parametrize("game_name, budget", [("tictactoe", 57), ("tictactoe", 1), ("connect4", 24)])
@pytest.mark.parametrize("algo", ["explore-clone", "bc"])
def test_every_expert_answer_is_one_counted_query(game_name, budget, algo):
    """The wrapped expert counts its own calls: they equal the reported queries, the logged examples and the
    budget (every live expert move and every label is one query, none is free, none is lost)."""
    game = get_game(game_name)
    expert = Counting(tictactoe.minimax_expert() if game_name == "tictactoe" else _connect_four_expert())
    if algo == "bc":
        result = bc(game, expert, budget, seed=1, clone=TINY_CLONE)
    else:
        result = explore_then_clone(game, expert, budget, seed=1, config=TINY_EXPLORE, clone=TINY_CLONE)
    assert expert.calls == result.queries == len(result.log) == budget


def test_bc_logs_exactly_the_moves_of_expert_self_play():
    """Tic-Tac-Toe self-play of the minimax expert always draws, so every game fills the board: 9 moves.
    With 27 queries, BC logs three whole games."""
    result = bc(get_game("tictactoe"), tictactoe.minimax_expert(), 27, seed=0, clone=TINY_CLONE)
    planes, _, _ = result.log.arrays()
    assert result.games == 3
    assert [int(p.sum()) for p in planes] == list(range(9)) * 3  # marks on the board before each move


def test_explore_then_clone_is_reproducible():
    game, expert = get_game("tictactoe"), tictactoe.minimax_expert()
    first, second = (explore_then_clone(game, expert, 80, seed=4, config=TINY_EXPLORE, clone=TINY_CLONE)
                     for _ in range(2))
    for a, b in zip(first.log.arrays(), second.log.arrays()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ masking
@pytest.mark.parametrize("game_name", ["tictactoe", "connect4"])
def test_the_cloned_policy_never_picks_an_illegal_move(game_name):
    """A network whose bias prefers move 0 by 50 nats, at positions where move 0 is illegal."""
    game = get_game(game_name)
    network = mlp(game.observation_size, (8,), game.num_actions)
    with torch.no_grad():
        network[-1].bias.copy_(torch.eye(game.num_actions)[0] * 50.0)
    policy = ClonedPolicy(network, game)
    obs = _positions_without_move_zero(game_name)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert np.all(obs["action_mask"][np.arange(len(obs["action_mask"])), policy.act(obs, rng=rng)] == 1)
    assert np.all(obs["action_mask"][np.arange(len(obs["action_mask"])), policy.act(obs, deterministic=True)] == 1)
    assert np.all(policy.log_prob(obs, np.zeros(len(obs["action_mask"]), int)) == -np.inf)
    probabilities = policy.probabilities(obs)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-6)
    assert np.all(probabilities[obs["action_mask"] == 0] == 0)


@pytest.mark.parametrize("game_name", ["tictactoe", "connect4"])
def test_the_explorer_never_picks_an_illegal_move(game_name):
    """The explorer's head prefers move 0 by 1e4; once move 0 is illegal (tic-tac-toe: cell 0 taken after the
    first move; Connect Four: column 0 full) it must play a legal move, in real PettingZoo games
    (explore raises on an illegal move) and at positions where move 0 is illegal."""
    game = get_game(game_name)
    explorer = Explorer(game, TINY_EXPLORE, capacity=200, seed=0)
    with torch.no_grad():
        explorer.network.head.bias.copy_(torch.eye(game.num_actions)[0] * 1e4)
    obs = _positions_without_move_zero(game_name)
    for k in range(len(obs["action_mask"])):
        single = {name: array[k] for name, array in obs.items()}
        assert single["action_mask"][explorer.act(single)] == 1
    if game_name == "tictactoe":
        oracle = GameOracle(tictactoe.minimax_expert(), seed=0)
        explore(game, oracle, QueryLog(game), explorer, deviator=0, budget=60)


def test_masked_greedy_picks_the_best_legal_move():
    q = torch.tensor([[9.0, 1.0, 2.0], [5.0, 7.0, -1.0]])
    masks = torch.tensor([[False, True, True], [True, False, True]])
    assert masked_greedy(q, masks).tolist() == [2, 0]


def test_terminal_transitions_are_masked_in_dqn_targets():
    """target = r + gamma * max over the legal next moves; a move that ended the game has target r alone,
    however large the (meaningless) values stored for its next position."""
    rewards = torch.tensor([1.0, 2.0, 0.5])
    next_q = torch.tensor([[100.0, 3.0, 4.0], [100.0, 3.0, 4.0], [7.0, 8.0, 9.0]])
    next_masks = torch.tensor([[False, True, True], [False, False, False], [True, True, True]])
    dones = torch.tensor([False, True, True])
    targets = td_targets(rewards, next_q, next_masks, dones, gamma=0.5)
    assert targets.tolist() == [1.0 + 0.5 * 4.0, 2.0, 0.5]


# ------------------------------------------------------------------ the elliptical bonus
@pytest.mark.parametrize("beta, lam", [(10.0, 0.1), (1.0, 2.0)])
def test_the_elliptical_bonus_of_one_hot_features_is_the_count_bonus(beta, lam):
    """With one-hot state features and the inverse recomputed at every update, the bonus of (s, a) is
    beta / sqrt(lambda + N(s, a)), N counted here."""
    num_states, num_actions, rng = 5, 3, np.random.default_rng(0)
    bonus = EllipticalBonus(num_actions, num_states, beta, lam, switch_log_det=0.0)
    counts = np.zeros((num_states, num_actions))
    features = np.eye(num_states)
    for _ in range(4):
        states, actions = rng.integers(num_states, size=7), rng.integers(num_actions, size=7)
        bonus.update(features[states], actions)
        np.add.at(counts, (states, actions), 1)
        for s in range(num_states):
            expected = beta / np.sqrt(lam + counts[s])
            np.testing.assert_allclose(bonus(features[[s] * num_actions], np.arange(num_actions)), expected,
                                       rtol=1e-9)
            np.testing.assert_allclose(bonus(features[[s]])[0], expected, rtol=1e-9)


def test_rare_switching_recomputes_the_inverse_only_when_log_det_doubles_the_determinant():
    """lambda = 0.9, one state and one action (one-hot feature, d = 2 so the block has an untouched
    direction too). After N visits log det = log(0.9) + log(0.9 + N) + const, so the inverse is
    recomputed when 0.9 + N >= 2 (0.9 + N_last): at N = 1 (1.9 >= 1.8), 3 (3.9 >= 3.8), 7 (7.9 >= 7.8) and
    15 (15.9 >= 15.8), never in between; between switches the bonus stays beta / sqrt(0.9 + N_last)."""
    bonus = EllipticalBonus(num_actions=2, dim=2, beta=3.0, lam=0.9)
    phi = np.array([[1.0, 0.0]])
    last = 0
    for n in range(1, 20):
        switched = bonus.update(phi, np.array([0]))
        assert switched == (n in (1, 3, 7, 15)), n
        last = n if switched else last
        assert bonus(phi, np.array([0]))[0] == pytest.approx(3.0 / math.sqrt(0.9 + last), rel=1e-12)
        assert bonus.log_det == pytest.approx(3 * math.log(0.9) + math.log(0.9 + n), rel=1e-9)
    assert bonus.switches == 4
    assert bonus(phi, np.array([1]))[0] == pytest.approx(3.0 / math.sqrt(0.9))  # the other action: unvisited


# ------------------------------------------------------------------ command line and imports
def test_the_games_command_writes_results_and_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "CLONE_CONFIG", TINY_CLONE)
    argv = ["games", "--game", "tictactoe", "--algo", "bc", "--queries", "30", "--seeds", "1", "--no-progress",
            "--out", str(tmp_path)]
    assert mail_main(argv) == 0
    rows = experiment.read_csv(tmp_path / "games_results.csv")
    assert {(r["algo"], r["budget"]) for r in rows} == {("expert", 0), ("random", 0), ("bc", 30)}
    expert = next(r for r in rows if r["algo"] == "expert")
    assert expert["exploitability"] == 0 and expert["draw"] == 1
    assert (tmp_path / "games_tictactoe.png").stat().st_size > 0
    with pytest.raises(SystemExit) as stop:
        mail_main(argv)
    assert "exists; pass --force" in str(stop.value)


@pytest.mark.parametrize("argv, message", [
    (["--game", "tictactoe", "--eval-games", "4"], "--eval-games does not apply"),
    (["--algo", "bc", "--beta", "3"], "--beta does not apply"),
    (["--algo", "bc", "explore-random", "--lambda", "3"], "--lambda does not apply"),
    (["--game", "connect4", "--eval-games", "3"], "must be even"),
    (["--queries", "0"], "integer >= 1"),
])
def test_the_games_command_refuses_bad_options_in_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        mail_main(["games", *argv, "--out", str(tmp_path)])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_the_parser_and_the_game_tree_load_without_torch():
    code = ("import sys\nimport mail.cli, mail.games.cli, mail.games.config, mail.games.tictactoe\n"
            "mail.cli.build_parser()\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'pettingzoo', 'pygame', 'bitbully')]\n"
            "sys.exit(1 if heavy else 0)\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ------------------------------------------------------------------ fixtures
def _connect_four_expert():
    from mail.games.connect_four import SolverExpert

    return SolverExpert(1.0)


def _tiny_log() -> QueryLog:
    game, tree = get_game("tictactoe"), tictactoe.game_tree()
    log = QueryLog(game)
    obs = tree.observations(np.arange(20))
    for k in range(20):
        log.add({name: array[k] for name, array in obs.items()}, int(np.argmax(obs["action_mask"][k])))
    return log


def _positions_without_move_zero(game_name: str) -> dict:
    """A batch of observation dicts of the player to move in which move 0 is illegal."""
    if game_name == "tictactoe":
        tree = tictactoe.game_tree()
        obs = tree.observations(np.flatnonzero(~tree.terminal))
        keep = obs["action_mask"][:, 0] == 0
        return {name: array[keep][:50] for name, array in obs.items()}
    env, batch = get_game("connect4").make_env(), []
    env.reset()
    for move in [0, 0, 0, 0, 0, 0, 1, 2, 3]:  # column 0 full, then a few moves elsewhere (no four in a row)
        env.step(move)
        batch.append(env.last()[0])
    batch = [b for b in batch if b["action_mask"][0] == 0]
    return {name: np.stack([b[name] for b in batch]) for name in ("observation", "action_mask")}


# ------------------------------------------------------------------ the reproduction script
def _load_reproduction_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "reproduce_mail_games.py"
    spec = importlib.util.spec_from_file_location("reproduce_mail_games", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reproduction_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Runs already in the CSV are skipped; a changed setting other than budgets and seeds is refused."""
    script = _load_reproduction_script()
    calls = []

    def fake_run(config, algo, budget, seed):
        calls.append((algo, budget, seed))
        return [dict(game=config.game, algo=algo, seed=seed, budget=budget, queries=budget, positions=0, games=0,
                     switches=0, seconds=0.0, opponent="minimax", eval_games=0, win=0.0, draw=1.0, loss=0.0,
                     exploitability=0.0, exploitability_greedy=0.0, br_first=0.0, br_second=0.0)]

    monkeypatch.setattr(experiment, "run_one", fake_run)
    config = experiment.GamesConfig(game="tictactoe", queries=(10,), seeds=1)
    script.run_game(tmp_path, config)
    assert calls == [("expert", 0, 0), ("random", 0, 0), ("explore-clone", 10, 0), ("bc", 10, 0)]
    calls.clear()
    rows, _ = script.run_game(tmp_path, experiment.GamesConfig(game="tictactoe", queries=(10, 20), seeds=1))
    assert calls == [("explore-clone", 20, 0), ("bc", 20, 0)] and len(rows) == 6
    with pytest.raises(ValueError, match="beta: 10.0 there, 5.0 now"):
        script.run_game(tmp_path, experiment.GamesConfig(game="tictactoe", queries=(10,), seeds=1, beta=5.0))


def test_quick_keeps_the_options_given():
    script = _load_reproduction_script()
    out, configs = script.configs(script.build_parser().parse_args(["--quick", "--seeds", "2", "--games", "connect4"]))
    assert list(configs) == ["connect4"]
    assert (configs["connect4"].seeds, configs["connect4"].queries, configs["connect4"].eval_games) == (2, (200,), 10)
    assert str(out) == "runs/mail_games_quick"


def test_the_shared_game_tree_is_read_only():
    tree = tictactoe.game_tree()
    with pytest.raises(ValueError, match="read-only"):
        tree.boards[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        tree.children[0, 0] = 7


def test_a_full_replay_buffer_says_so():
    from mail.games.explore_clone import ReplayBuffer
    game = get_game("tictactoe")
    buffer = ReplayBuffer(1, game)
    planes, mask = np.zeros(game.observation_size, np.float32), np.ones(game.num_actions, bool)
    buffer.add(planes, mask, 0, planes, mask, False)
    with pytest.raises(ValueError, match="the replay buffer is full"):
        buffer.add(planes, mask, 0, planes, mask, False)


def test_the_solver_expert_refuses_a_full_board():
    from mail.games.connect_four import SolverExpert
    expert = SolverExpert(1.0)
    # a full drawn board: columns alternate 1,2,1,2,1,2 from the bottom, shifted in blocks so no four line up
    column_a, column_b = [1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 2, 1]
    columns = [column_a, column_a, column_b, column_b, column_a, column_a, column_b]
    board = np.array(columns).T[::-1]  # rows top first
    with pytest.raises(ValueError, match="full"):
        expert._score(board)
