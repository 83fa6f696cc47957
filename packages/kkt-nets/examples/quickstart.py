"""Generate -> train -> evaluate: a small set-cover run with JEPA (EMA), < 1 min.

The same three steps as the command line (``kkt-generate``, ``kkt-train``,
``kkt-evaluate``), in one process and at a small size:

    python packages/kkt-nets/examples/quickstart.py --out kkt_nets_demo_output
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kkt_nets.data.generate_instances import main as generate
from kkt_nets.evaluate import evaluate
from kkt_nets.train import build_parser, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("kkt_nets_demo_output"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    data = args.out / "set_cover_15x20"
    generate(
        [
            *("--family", "set_cover", "--rows", "15", "--cols", "20"),
            *("--n-train", "256", "--n-val", "32", "--n-test", "32"),
            *("--seed", "0", "--out", str(data), "--quiet"),
        ]
    )
    run = args.out / "run"
    result = train(
        build_parser().parse_args(
            [
                *("--data_dir", str(data), "--out_dir", str(run)),
                *("--epochs", str(args.epochs), "--batch_size", "32"),
                *("--hidden", "128"),
                *("--use_jepa", "--jepa_mode", "ema", "--quiet"),
            ]
        )
    )
    print(
        f"trained {result['steps']} steps in {result['train_seconds']:.1f} s; "
        f"best validation KKT loss {result['best_val_loss']:.4f}"
    )
    summary = evaluate(run / "best.pt", data)
    gap, violation = summary["objective_gap"], summary["max_violation"]
    print(
        f"test: objective gap mean {gap['mean']:.2%} (median {gap['median']:.2%}), "
        f"max violation median {violation['median']:.3f}; "
        f"{summary['inference_ms_per_instance']:.3f} ms/instance batched vs HiGHS "
        f"{summary['highs_ms_per_instance']:.3f} ms"
    )


if __name__ == "__main__":
    main()
