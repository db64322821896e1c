"""Deep SOAR imitation learning on MuJoCo: ML-IRL, f-IRL and CSIL on SAC with the optimistic critic ensemble.

Each method is one module that reads top to bottom (:mod:`soar.deep.ml_irl`,
:mod:`soar.deep.f_irl`, :mod:`soar.deep.csil`); the reward network
(:mod:`soar.deep.reward_net`) and the loop (:mod:`soar.deep.loop`) exist once.
"""
