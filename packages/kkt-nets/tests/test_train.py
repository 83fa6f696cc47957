"""The spec's acceptance checklist, end to end on a tiny generated dataset."""

import json
import math

import pytest
import torch

from kkt_nets import train as train_module
from kkt_nets.data.generate_instances import main as generate_main
from kkt_nets.train import build_parser, load_checkpoint, train

MODES = [
    (),
    ("--use_jepa", "--jepa_mode", "ema"),
    ("--use_jepa", "--jepa_mode", "simsiam"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lp")
    generate_main(
        [
            *("--family", "set_cover", "--rows", "8", "--cols", "10"),
            *("--n-train", "12", "--n-val", "4", "--n-test", "4"),
            *("--seed", "0", "--out", str(out), "--quiet"),
        ]
    )
    return out


def parse(data_dir, out_dir, *extra):
    return build_parser().parse_args(
        [
            *("--data_dir", str(data_dir), "--out_dir", str(out_dir)),
            *("--epochs", "2", "--batch_size", "4", "--hidden", "32"),
            *("--embedding_size", "16", "--log_every", "1", "--quiet"),
            *extra,
        ]
    )


def read_metrics(out_dir):
    return [
        json.loads(line)
        for line in (out_dir / "metrics.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize("graphs", [False, True], ids=["mlp", "gnn"])
@pytest.mark.parametrize("mode", MODES, ids=["kkt", "ema", "simsiam"])
def test_every_model_and_jepa_mode_trains(data_dir, tmp_path, graphs, mode):
    extra = (*mode, *(("--use_bipartite_graphs",) if graphs else ()))
    result = train(parse(data_dir, tmp_path, *extra))
    assert math.isfinite(result["best_val_loss"]) and result["steps"] == 6
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1
    # the EMA target is saved exactly in ema mode
    assert ("target_model" in ckpt) == ("ema" in mode)
    records = [r for r in read_metrics(tmp_path) if "train/loss" in r]
    assert len(records) == 6  # log_every = 1
    assert all(("train/loss_jepa" in r) == bool(mode) for r in records)
    if not mode:  # loss = KKT only
        assert all(r["train/loss"] == r["train/loss_kkt"] for r in records)


def test_simsiam_creates_no_target_and_ema_updates_it_every_step(
    data_dir, tmp_path, monkeypatch
):
    calls = []
    real_update = train_module.ema_update

    def counting(target, online, m):
        calls.append(m)
        real_update(target, online, m)

    monkeypatch.setattr(train_module, "ema_update", counting)
    created = []
    real_deepcopy = train_module.deepcopy
    monkeypatch.setattr(
        train_module, "deepcopy", lambda obj: created.append(obj) or real_deepcopy(obj)
    )
    train(parse(data_dir, tmp_path / "s", "--use_jepa", "--jepa_mode", "simsiam"))
    assert not created and not calls
    train(parse(data_dir, tmp_path / "e", "--use_jepa", "--ema_momentum", "0.9"))
    assert len(created) == 1 and calls == [0.9] * 6


def test_jepa_only_warm_up(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--use_jepa", "--jepa_pretrain_epochs", "1"))
    records = [r for r in read_metrics(tmp_path) if "train/loss" in r]
    warm, joint = records[:3], records[3:]
    assert all(r["train/loss"] == pytest.approx(r["train/loss_jepa"]) for r in warm)
    for r in joint:
        assert r["train/loss"] == pytest.approx(
            r["train/loss_kkt"] + 0.2 * r["train/loss_jepa"], rel=1e-5
        )


def test_without_jepa_same_seed_same_losses(data_dir, tmp_path):
    a = train(parse(data_dir, tmp_path / "a"))
    b = train(parse(data_dir, tmp_path / "b"))
    assert a["best_val_loss"] == b["best_val_loss"]
    la = [r["train/loss"] for r in read_metrics(tmp_path / "a") if "train/loss" in r]
    lb = [r["train/loss"] for r in read_metrics(tmp_path / "b") if "train/loss" in r]
    assert la == lb


def test_resume_restores_model_optimizer_epoch_and_target(data_dir, tmp_path):
    full = tmp_path / "full"
    train(parse(data_dir, full, "--use_jepa", "--epochs", "3"))
    part = tmp_path / "part"
    train(parse(data_dir, part, "--use_jepa", "--epochs", "2"))
    resumed = train(
        parse(
            data_dir,
            part,
            "--use_jepa",
            "--epochs",
            "3",
            "--resume",
            str(part / "last.pt"),
        )
    )
    assert resumed["epochs_run"] == 1 and resumed["steps"] == 9
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for key in ("model", "target_model"):
        for name, tensor in a[key].items():
            torch.testing.assert_close(tensor, b[key][name], rtol=1e-5, atol=1e-6)


def test_wandb_receives_loss_jepa_at_the_cadence(data_dir, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    logged = []

    class FakeRun:
        def log(self, values, step):
            logged.append((step, dict(values)))

        def finish(self):
            pass

    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun())
    train(
        parse(
            data_dir,
            tmp_path,
            "--use_jepa",
            "--wandb_mode",
            "offline",
            "--log_every",
            "2",
        )
    )
    steps = [s for s, v in logged if "train/loss_jepa" in v]
    assert steps == [0, 2, 4]


def test_bad_input(data_dir, tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pt"):
        train(parse(data_dir, tmp_path, "--resume", str(tmp_path / "bad.pt")))
    with pytest.raises(ValueError, match="--lr"):
        train(parse(data_dir, tmp_path, "--lr", "-1"))
    with pytest.raises(FloatingPointError, match="step 0"):
        train(parse(data_dir, tmp_path, "--lr", "1e30", "--stationarity_weight", "nan"))


def test_cli_reports_a_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_module.main(["--data_dir", str(tmp_path / "none"), "--quiet"])
    assert exit_info.value.code == 2
    assert "meta.json" in capsys.readouterr().err
