"""Networks that learn to solve linear programs from KKT residuals (with JEPA).

``kkt_nets.solve(c, A_ub, b_ub, A_eq, b_eq, bounds, checkpoint=...)`` solves a
user's LP: a trained network's prediction refined by batched PDHG into a
solution with a dual bound (:mod:`kkt_nets.solver`).
"""

from kkt_nets.solver import SolveResult, solve, solve_mps, solve_problems

__all__ = ["SolveResult", "solve", "solve_mps", "solve_problems"]
