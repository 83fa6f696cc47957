"""Generate -> train -> evaluate -> solve your own LP with a certificate, < 1 min.

The same steps as the command line (``kkt-generate``, ``kkt-train``,
``kkt-evaluate``, ``kkt-solve``), in one process and at a small size: a GNN
learns maximum independent set relaxations of 15-30 node graphs, then warm-
starts PDHG on a 3x larger set-packing LP given as ``linprog`` arrays:

    python packages/kkt-nets/examples/quickstart.py --out kkt_nets_demo_output
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

from kkt_nets import solve
from kkt_nets.data.generate_instances import main as generate
from kkt_nets.evaluate import evaluate, format_summary
from kkt_nets.train import parse_config, train


def set_packing(seed: int, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``max sum w x  s.t.  x_u + x_v <= 1`` on a random graph, as ``min -w^T x``."""
    rng = np.random.default_rng(seed)
    edges = np.array(
        [
            (u, v)
            for u in range(nodes)
            for v in range(u + 1, nodes)
            if rng.random() < 0.1
        ]
    )
    A = np.zeros((len(edges), nodes))
    A[np.arange(len(edges))[:, None], edges] = 1.0
    return -rng.uniform(1, 2, nodes), A, np.ones(len(edges))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("kkt_nets_demo_output"))
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    data = args.out / "independent_set"
    generate(
        [
            *("--family", "independent_set", "--nodes", "15:30", "--affinity", "3"),
            *("--n-train", "200", "--n-val", "20", "--n-test", "20"),
            *("--seed", "0", "--out", str(data), "--quiet"),
        ]
    )
    run = args.out / "run"
    result = train(
        parse_config(
            [
                *("--data-dir", str(data), "--out-dir", str(run), "--overwrite"),
                *("--epochs", str(args.epochs), "--batch-size", "16"),
                *("--embedding-size", "32", "--num-threads", "1", "--quiet"),
            ]
        )
    )
    print(
        f"trained {result.steps} steps in {result.train_seconds:.1f} s; "
        f"best validation loss {result.best_val_loss:.4f}"
    )
    print(format_summary(evaluate(run / "best.pt", data, highs_pdlp=False)))
    c, A_ub, b_ub = set_packing(seed=1, nodes=80)
    solved = solve(c, A_ub, b_ub, bounds=(0, 1), checkpoint=run / "best.pt")
    reference = linprog(c, A_ub, b_ub, bounds=(0, 1), method="highs").fun
    print(
        f"your LP ({A_ub.shape[0]} rows x {A_ub.shape[1]} variables): status "
        f"{solved.status} after {solved.iterations} PDHG iterations (warm start); "
        f"objective {solved.objective:.6f}, certified bound {solved.dual_bound:.6f} "
        f"(gap {solved.gap:.1e}), max violation {solved.max_violation:.1e}; "
        f"HiGHS {reference:.6f}"
    )


if __name__ == "__main__":
    main()
