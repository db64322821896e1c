"""Explore-then-clone and BC on real turn-based games: PettingZoo's ``tictactoe_v3`` and ``connect_four_v3``.

Modules (import them directly; this package imports nothing, so ``mail`` and ``mail.cli``
stay free of torch, pygame and the Connect Four solver until a game is actually played):

* :mod:`mail.games.tictactoe`: the whole Tic-Tac-Toe game tree (5478 positions), the exact
  minimax expert and the exact exploitability of any policy (numpy only).
* :mod:`mail.games.connect_four`: the Connect Four expert, a softmax over the ``bitbully``
  solver's move scores.
* :mod:`mail.games.common`: the two games behind one description, the counting expert
  oracle, and playing games between policies through PettingZoo's AEC API.
* :mod:`mail.games.clone`: the masked classifier (the cloned policy) and its training.
* :mod:`mail.games.explore_clone`: the reward-free DQN explorer with the elliptical bonus,
  and explore-then-clone.
* :mod:`mail.games.bc`: the baseline, BC on expert self-play games.
* :mod:`mail.games.experiment` and :mod:`mail.games.cli`: ``python -m mail games``.
"""
