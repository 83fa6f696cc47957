"""The spec's acceptance checklist, end to end on a tiny generated dataset."""

import dataclasses
import math

import pytest
import torch

from kkt_nets import train as train_module
from kkt_nets.config import TrainConfig
from kkt_nets.data.generate_instances import main as generate_main
from kkt_nets.metrics import read_curve, read_metrics
from kkt_nets.train import load_checkpoint, parse_config, train

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
    return parse_config(
        [
            *("--data-dir", str(data_dir), "--out-dir", str(out_dir)),
            *("--epochs", "2", "--batch-size", "4", "--hidden", "32"),
            *("--embedding-size", "16", "--log-every", "1", "--quiet"),
            *extra,
        ]
    )


@pytest.mark.parametrize("graphs", [False, True], ids=["mlp", "gnn"])
@pytest.mark.parametrize("mode", MODES, ids=["kkt", "ema", "simsiam"])
def test_every_model_and_jepa_mode_trains(data_dir, tmp_path, graphs, mode):
    extra = (*mode, *(("--use_bipartite_graphs",) if graphs else ("--model", "mlp")))
    result = train(parse(data_dir, tmp_path, *extra))
    assert math.isfinite(result.best_val_loss) and result.steps == 6
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
    train(parse(data_dir, tmp_path, "--use-jepa", "--jepa-pretrain-epochs", "1"))
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
    assert a.best_val_loss == b.best_val_loss
    la = [r["train/loss"] for r in read_metrics(tmp_path / "a") if "train/loss" in r]
    lb = [r["train/loss"] for r in read_metrics(tmp_path / "b") if "train/loss" in r]
    assert la == lb


def test_resume_restores_model_optimizer_epoch_and_target(data_dir, tmp_path):
    # a constant rate: the cosine schedule depends on --epochs, which differs
    constant = ("--lr-schedule", "constant")
    full = tmp_path / "full"
    train(parse(data_dir, full, "--use_jepa", "--epochs", "3", *constant))
    part = tmp_path / "part"
    train(parse(data_dir, part, "--use_jepa", "--epochs", "2", *constant))
    resumed = train(
        parse(
            data_dir,
            part,
            "--use_jepa",
            "--epochs",
            "3",
            "--resume",
            str(part / "last.pt"),
            *constant,
        )
    )
    assert resumed.epochs_run == 1 and resumed.steps == 9
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
            "--wandb-mode",
            "offline",
            "--log-every",
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
        parse(data_dir, tmp_path, "--lr", "-1")
    for flag in ("--stationarity-weight", "--penalty", "--gap-weight"):
        for value in ("-1", "nan"):
            with pytest.raises(SystemExit):
                parse(data_dir, tmp_path, flag, value)
    config = parse(data_dir, tmp_path)
    # also refused when built without the parser
    with pytest.raises(ValueError, match="--primal-weight must be a finite number"):
        dataclasses.replace(config, primal_weight=-6.0)
    with pytest.raises(ValueError, match="--epochs must be int"):
        dataclasses.replace(config, epochs=2.5)
    with pytest.raises(ValueError, match="needs --loss certificate"):
        parse(data_dir, tmp_path, "--loss", "kkt", "--supervised-weight", "1")
    with pytest.raises(ValueError, match="drop --model mlp"):
        parse(data_dir, tmp_path, "--model", "mlp", "--use-bipartite-graphs")


def test_cli_reports_a_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_module.main(["--data-dir", str(tmp_path / "none"), "--quiet"])
    assert exit_info.value.code == 2
    assert "meta.json" in capsys.readouterr().err


def test_read_curve_gives_one_point_per_epoch(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--epochs", "3", "--penalty-schedule", "adaptive"))
    curve = read_curve(tmp_path / "metrics.jsonl")
    assert read_curve(tmp_path) == curve  # the run folder or its file
    assert curve["epoch"] == [0, 1, 2]
    assert curve["seconds"] == sorted(curve["seconds"]) and curve["seconds"][0] > 0
    records = [r for r in read_metrics(tmp_path) if "val/loss" in r]
    assert curve["val_loss"] == [r["val/loss"] for r in records]
    # the adaptive schedule only ever raises the penalty, from --penalty (3)
    assert curve["penalty"][0] == 3.0
    assert curve["penalty"] == sorted(curve["penalty"])
    (tmp_path / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl:1 is not JSON"):
        read_curve(tmp_path / "metrics.jsonl")


def test_cosine_schedule_decays_the_learning_rate_per_epoch(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--epochs", "4", "--lr-schedule", "cosine"))
    lrs = [r["lr"] for r in read_metrics(tmp_path) if "lr" in r]
    expected = [0.5e-3 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert lrs == pytest.approx(expected)


def test_an_existing_run_needs_resume_or_overwrite(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--epochs", "1"))
    lines = len(read_metrics(tmp_path))
    with pytest.raises(ValueError, match="already holds a run: pass --resume"):
        train(parse(data_dir, tmp_path, "--epochs", "1"))
    train(parse(data_dir, tmp_path, "--epochs", "1", "--overwrite"))
    assert len(read_metrics(tmp_path)) == lines  # started afresh, not appended
    (tmp_path / ".last.pt.abc123.partial").write_bytes(b"left by a killed run")
    train(parse(data_dir, tmp_path, "--epochs", "1", "--overwrite"))
    assert not list(tmp_path.glob(".*.partial*"))


def test_out_dir_is_checked_before_any_work(data_dir, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        train(parse(data_dir, a_file))
    with pytest.raises(ValueError, match="not writable"):
        train(parse(data_dir, a_file / "below"))


def test_resume_takes_the_new_learning_rate(data_dir, tmp_path):
    constant = ("--lr-schedule", "constant")
    train(parse(data_dir, tmp_path, "--epochs", "1", "--lr", "1e-3", *constant))
    last = str(tmp_path / "last.pt")
    train(
        parse(
            data_dir,
            tmp_path,
            "--epochs",
            "2",
            "--lr",
            "5e-4",
            "--resume",
            last,
            *constant,
        )
    )
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["config"]["lr"] == 5e-4
    assert TrainConfig.from_dict(ckpt["config"]).max_m == 8
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == [5e-4]


def test_resume_refuses_another_architecture_or_data_shape(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--epochs", "1"))
    last = str(tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"--embedding-size 16.*asks for 32"):
        train(parse(data_dir, tmp_path, "--embedding-size", "32", "--resume", last))
    with pytest.raises(ValueError, match="--use-bipartite-graphs True"):
        train(parse(data_dir, tmp_path, "--model", "mlp", "--resume", last))
    with pytest.raises(ValueError, match="--bounds-as-rows False"):
        train(parse(data_dir, tmp_path, "--bounds-as-rows", "--resume", last))
    mlp = tmp_path / "mlp"
    train(parse(data_dir, mlp, "--epochs", "1", "--model", "mlp"))
    bigger = tmp_path / "bigger"
    generate_main(
        [
            *("--family", "set_cover", "--rows", "9", "--cols", "10"),
            *("--n-train", "4", "--n-val", "2", "--n-test", "2"),
            *("--seed", "0", "--out", str(bigger), "--quiet"),
        ]
    )
    with pytest.raises(ValueError, match=r"at most 8 x 10.*has 9 x 10"):
        train(parse(bigger, mlp, "--model", "mlp", "--resume", str(mlp / "last.pt")))


def test_non_finite_weights_in_a_checkpoint_are_named(data_dir, tmp_path):
    train(parse(data_dir, tmp_path, "--epochs", "1"))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    name = next(iter(k for k in ckpt["model"] if k.endswith("weight")))
    ckpt["model"][name].fill_(float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=rf"nan\.pt.*{name}"):
        train(
            parse(
                data_dir,
                tmp_path,
                "--epochs",
                "2",
                "--resume",
                str(tmp_path / "nan.pt"),
            )
        )


def test_sizes_that_cannot_fit_are_refused_before_allocating(
    data_dir, tmp_path, capsys
):
    with pytest.raises(SystemExit):
        train_module.main(
            [
                "--data-dir",
                str(data_dir),
                "--out-dir",
                str(tmp_path),
                "--quiet",
                "--embedding-size",
                "30000",
            ]
        )
    err = capsys.readouterr().err
    assert "--embedding-size" in err and "GB" in err
    with pytest.raises(SystemExit):
        train_module.main(
            [
                "--data-dir",
                str(data_dir),
                "--out-dir",
                str(tmp_path),
                "--quiet",
                "--model",
                "mlp",
                "--hidden",
                "250000",
            ]
        )
    assert "--hidden" in capsys.readouterr().err


def test_sigterm_during_a_checkpoint_save_leaves_no_partial_file(data_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    code = f"""
import os, signal, time, torch
from kkt_nets import train as t
def slow(obj, tmp_path):
    open(tmp_path, "wb").write(b"x" * 1000)
    open({str(tmp_path / "saving")!r}, "w").close()
    time.sleep(30)
t.torch.save = slow
t.main(["--data-dir", {str(data_dir)!r}, "--out-dir", {str(tmp_path / "run")!r},
        "--epochs", "1", "--quiet", "--embedding-size", "8"])
"""
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not (tmp_path / "saving").exists() and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert list((tmp_path / "run").glob(".*.partial*")) == []
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_devices_flag_warns_loudly_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.warns(RuntimeWarning, match="no CUDA device"):
        assert train_module.resolve_device("0") == "cpu"
    assert "WARNING" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--devices"):
        train_module.resolve_device("gpu")


SPEC_FLAGS = [
    *("--use_jepa", "--jepa_mode", "simsiam", "--jepa_weight", "0.3"),
    *("--jepa_pretrain_epochs", "1", "--ema_momentum", "0.99"),
    *("--use_bipartite_graphs", "--jepa_mask_ratio_nodes", "0.2"),
    *("--jepa_mask_ratio_entries", "0.4", "--epochs", "3", "--devices", "cpu"),
    *("--batch_size", "8", "--data_dir", "d", "--out_dir", "o"),
]


def test_snake_and_kebab_spellings_parse_to_the_same_config():
    kebab = [
        arg.replace("_", "-") if arg.startswith("--") else arg for arg in SPEC_FLAGS
    ]
    assert kebab != SPEC_FLAGS
    config = parse_config(SPEC_FLAGS)
    assert parse_config(kebab) == config
    assert config.jepa_mode == "simsiam" and config.batch_size == 8
    assert config.jepa_pretrain_epochs == 1 and config.use_bipartite_graphs
    help_text = train_module.build_parser().format_help()
    assert "--jepa-mask-ratio-nodes" in help_text
    # the required --data-dir has no default to show
    assert "_MISSING_TYPE" not in help_text


def test_config_round_trips_through_a_plain_dict():
    config = parse_config(["--data-dir", "d", "--resume", "r/last.pt"])
    plain = config.to_dict()
    assert plain["data_dir"] == "d" and plain["resume"] == "r/last.pt"
    assert TrainConfig.from_dict(plain) == config
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({**plain, "colour": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0


def test_a_checkpoint_with_its_settings_under_args_still_loads(data_dir, tmp_path):
    from kkt_nets.inference import load_trained

    train(parse(data_dir, tmp_path, "--epochs", "1"))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    ckpt["args"] = ckpt.pop("config")  # the earlier name of the entry
    torch.save(ckpt, tmp_path / "old.pt")
    _, config = load_trained(tmp_path / "old.pt")
    assert config.to_dict() == ckpt["args"] and config.max_m == 8
    resumed = train(
        parse(data_dir, tmp_path, "--epochs", "2", "--resume", str(tmp_path / "old.pt"))
    )
    assert resumed.epochs_run == 1
    ckpt["args"]["epochs"] = "many"
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad\.pt holds bad settings: --epochs"):
        load_checkpoint(tmp_path / "bad.pt")
