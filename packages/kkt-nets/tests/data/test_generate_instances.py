import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from kkt_nets.data import generate_instances as gi
from kkt_nets.data.generators import generate
from kkt_nets.data.lp import kkt_residuals, scale, standardize

ARGS = ("--family", "set_cover", "--rows", "8", "--cols", "10", "--density", "0.2")


def run(out, *extra, n=(4, 2, 2), seed=0):
    counts = ("--n-train", str(n[0]), "--n-val", str(n[1]), "--n-test", str(n[2]))
    gi.main([*ARGS, *counts, "--seed", str(seed), "--out", str(out), "--quiet", *extra])


@pytest.fixture
def counting_solve(monkeypatch):
    calls = []

    def counted(lp):
        calls.append(lp.name)
        return real(lp)

    real = gi.solve
    monkeypatch.setattr(gi, "solve", counted)
    return calls


def test_cli_writes_meta_and_labelled_instances_that_round_trip(tmp_path):
    run(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["family"] == "set_cover" and meta["seed"] == 0
    assert meta["params"] == {"rows": 8, "cols": 10, "density": 0.2, "max_coef": 100}
    assert meta["counts"] == {"train": 4, "val": 2, "test": 2} and "created" in meta
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        f"lp_{i:05d}.npz" for i in range(4)
    ]
    with np.load(tmp_path / "train" / "lp_00001.npz") as data:
        assert {
            "A",
            "b",
            "c",
            "row_scale",
            "obj_scale",
            "row_kind",
            "x_star",
            "lam_star",
            "z_star",
            "z_star_original",
            "solve_seconds",
        } <= set(data.files)
    for split, count in meta["counts"].items():
        instances = gi.load_split(tmp_path, split)
        assert len(instances) == count
        for index, (lp, sol) in enumerate(instances):
            # the stored LP is the scaled instance of (seed, split, index)
            expected = scale(
                generate(
                    "set_cover", gi.instance_rng(0, split, index), **meta["params"]
                )
            )
            np.testing.assert_array_equal(lp.A, expected.A)
            np.testing.assert_array_equal(lp.c, expected.c)
            np.testing.assert_array_equal(lp.row_scale, expected.row_scale)
            assert lp.obj_scale == expected.obj_scale
            assert lp.row_kind == expected.row_kind
            assert lp.name == f"set_cover/{split}/{index:05d}"
            assert max(kkt_residuals(lp, sol.x, sol.lam).values()) < 1e-6
            assert sol.status == "Optimal" and sol.solve_seconds > 0
    with np.load(gi.instance_path(tmp_path, "test", 1)) as data:
        assert float(data["z_star"]) == pytest.approx(float(data["c"] @ data["x_star"]))
        assert float(data["z_star_original"]) == pytest.approx(
            float(data["z_star"]) / float(data["obj_scale"])
        )
    assert not list(tmp_path.rglob("*.tmp"))


def test_same_seed_same_instances_whatever_the_counts(tmp_path):
    run(tmp_path / "small", n=(2, 1, 1))
    run(tmp_path / "large", n=(5, 3, 1))
    run(tmp_path / "other", n=(2, 1, 1), seed=1)
    for split, index in [("train", 0), ("train", 1), ("val", 0), ("test", 0)]:
        small, _ = gi.load_instance(gi.instance_path(tmp_path / "small", split, index))
        large, _ = gi.load_instance(gi.instance_path(tmp_path / "large", split, index))
        other, _ = gi.load_instance(gi.instance_path(tmp_path / "other", split, index))
        np.testing.assert_array_equal(small.A, large.A)
        np.testing.assert_array_equal(small.c, large.c)
        assert not np.array_equal(small.c, other.c)
    train = gi.load_split(tmp_path / "large", "train")
    assert not np.array_equal(train[0][0].c, train[1][0].c)  # splits/indices differ


def test_rerun_reuses_cached_labels_and_redoes_a_corrupted_file(
    tmp_path, counting_solve
):
    run(tmp_path)
    assert len(counting_solve) == 8
    before = gi.load_split(tmp_path, "val")
    counting_solve.clear()
    run(tmp_path)
    assert counting_solve == []  # every label came from disk
    path = gi.instance_path(tmp_path, "val", 1)
    path.write_bytes(path.read_bytes()[:100])  # a half-written file
    with pytest.raises(ValueError, match=r"lp_00001\.npz"):
        gi.load_instance(path)
    run(tmp_path)
    assert counting_solve == ["set_cover/val/00001"]
    after = gi.load_split(tmp_path, "val")
    np.testing.assert_array_equal(after[1][1].x, before[1][1].x)
    np.testing.assert_array_equal(after[1][0].A, before[1][0].A)


def test_changed_settings_redo_the_files(tmp_path, counting_solve):
    run(tmp_path, n=(2, 0, 0))
    run(tmp_path, n=(2, 0, 0), seed=5)
    assert len(counting_solve) == 4
    assert json.loads((tmp_path / "meta.json").read_text())["seed"] == 5


def test_inconsistent_labels_are_rejected_by_name(tmp_path):
    run(tmp_path, n=(1, 0, 0))
    path = gi.instance_path(tmp_path, "train", 0)
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(path, **{**arrays, "x_star": arrays["x_star"][:-1]})
    with pytest.raises(ValueError, match=r"lp_00000\.npz.*x_star"):
        gi.load_instance(path)
    np.savez(path, **{**arrays, "z_star": arrays["z_star"] + 1.0})
    with pytest.raises(ValueError, match=r"lp_00000\.npz.*z_star"):
        gi.load_instance(path)
    path.write_text("not an npz")
    with pytest.raises(ValueError, match=r"lp_00000\.npz: not a readable"):
        gi.load_instance(path)


def test_unsolvable_instances_are_rejected_with_a_message(
    tmp_path, monkeypatch, capsys
):
    infeasible = standardize(np.ones(2), A_ub=[[1.0, 1.0]], b_ub=[-1.0])
    draws = []

    def flaky(family, rng, **params):
        draws.append(family)
        return infeasible if len(draws) == 2 else generate(family, rng, **params)

    monkeypatch.setattr(gi, "generate", flaky)  # draw 1 is the CLI's parameter check
    run(tmp_path, n=(2, 0, 0))
    err = capsys.readouterr().err
    assert "rejected set_cover/train/00000 (attempt 0)" in err and "Infeasible" in err
    lp, sol = gi.load_split(tmp_path, "train")[0]
    expected = scale(
        generate(
            "set_cover",
            gi.instance_rng(0, "train", 0, attempt=1),
            rows=8,
            cols=10,
            density=0.2,
        )
    )
    np.testing.assert_array_equal(lp.A, expected.A)
    assert max(kkt_residuals(lp, sol.x, sol.lam).values()) < 1e-6

    monkeypatch.setattr(
        gi, "generate", lambda family, rng, **params: replace(infeasible)
    )
    with pytest.raises(SystemExit, match="no solvable instance in 10 attempts"):
        gi.main([*ARGS, "--n-train", "1", "--out", str(tmp_path / "bad"), "--quiet"])
    assert not (tmp_path / "bad" / "meta.json").exists()
    assert not list((tmp_path / "bad").rglob("*.npz"))


def test_progress_bar_and_summary_unless_quiet(tmp_path, capsys):
    run(tmp_path / "quiet")
    assert capsys.readouterr() == ("", "")
    counts = ("--n-train", "3", "--n-val", "0", "--n-test", "0")
    gi.main([*ARGS, *counts, "--out", str(tmp_path / "loud")])
    captured = capsys.readouterr()
    assert "set_cover: 100%" in captured.err and "3/3" in captured.err
    assert captured.out.strip().endswith("3 solved, 0 cached, 0 rejected")


def test_module_runs_as_a_script(tmp_path):
    result = subprocess.run(
        [
            *(sys.executable, "-m", "kkt_nets.data.generate_instances", *ARGS),
            *("--n-train", "1", "--n-val", "1", "--n-test", "1"),
            *("--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 solved" in result.stdout
    assert [len(gi.load_split(tmp_path, s)) for s in gi.SPLITS] == [1, 1, 1]


def test_an_interrupted_run_leaves_no_meta(tmp_path, monkeypatch):
    run(tmp_path, n=(2, 0, 0))

    def interrupted(lp):
        raise KeyboardInterrupt

    monkeypatch.setattr(gi, "solve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, n=(3, 0, 0))
    assert not (tmp_path / "meta.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert len(list((tmp_path / "train").glob("*.npz"))) == 2


def test_load_split_needs_a_complete_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        gi.load_split(tmp_path, "train")
    run(tmp_path, n=(2, 0, 0))
    with pytest.raises(ValueError, match="split must be one of"):
        gi.load_split(tmp_path, "holdout")
    gi.instance_path(tmp_path, "train", 1).unlink()
    with pytest.raises(FileNotFoundError, match=r"lp_00001\.npz is missing"):
        gi.load_split(tmp_path, "train")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--family", "knapsack"], "invalid choice: 'knapsack'"),
        ([*ARGS, "--n-train", "-1"], "must be a non-negative integer"),
        ([*ARGS, "--nodes", "5"], "--nodes does not apply to set_cover"),
        ([*ARGS, "--density", "2"], "density must be in (0, 1], got 2.0"),
        ([*ARGS, "--rows", "ten"], "must be an integer or a range LO:HI"),
        ([*ARGS, "--rows", "9:3"], "a range must be LO:HI with 0 < LO <= HI"),
        ([*ARGS, "--n-train", "1000000000000"], "reduce --n-train"),
        ([*ARGS, "--seed", "x"], "must be a non-negative integer, got x"),
        ([*ARGS, "--out", "{out}", "--affinity", "2"], "--affinity does not apply"),
    ],
)
def test_bad_arguments_exit_with_an_argparse_error(tmp_path, capsys, argv, message):
    argv = [a.format(out=tmp_path) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        gi.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "meta.json").exists()


def test_out_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gi.main(["--family", "set_cover"])
    assert exit_info.value.code == 2
    assert "required: --out" in capsys.readouterr().err


def test_size_ranges_draw_each_instance_its_own_size(tmp_path):
    gi.main(
        [
            *("--family", "independent_set", "--nodes", "10:30", "--affinity", "2"),
            *("--n-train", "12", "--n-val", "1", "--n-test", "1"),
            *("--seed", "3", "--out", str(tmp_path), "--quiet"),
        ]
    )
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["params"]["nodes"] == [10, 30]
    sizes = [lp.n for lp, _ in gi.load_split(tmp_path, "train")]
    assert all(10 <= n <= 30 for n in sizes) and len(set(sizes)) > 3
    # the same instance as drawing its size first from its own generator
    rng = gi.instance_rng(3, "train", 0)
    nodes = int(rng.integers(10, 31))
    expected = scale(generate("independent_set", rng, nodes=nodes, affinity=2))
    np.testing.assert_array_equal(gi.load_split(tmp_path, "train")[0][0].A, expected.A)


def test_out_that_is_a_file_or_below_one_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(SystemExit):
        run(target)
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(target / "below")
    assert "cannot be written" in capsys.readouterr().err


def test_bounds_are_stored_on_the_columns_and_old_files_load_as_free(tmp_path):
    run(tmp_path)
    lp, _ = gi.load_instance(gi.instance_path(tmp_path, "train", 0))
    np.testing.assert_array_equal(lp.lb, 0.0)
    np.testing.assert_array_equal(lp.ub, 1.0)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["format"] == gi.FORMAT == 2
    with np.load(gi.instance_path(tmp_path, "train", 0)) as data:
        old = {key: data[key] for key in data.files if key not in ("lb", "ub")}
    np.savez(tmp_path / "old.npz", **old)
    old_lp, _ = gi.load_instance(tmp_path / "old.npz")
    assert np.isinf(old_lp.lb).all() and np.isinf(old_lp.ub).all()


def test_a_truncated_meta_json_is_named(tmp_path):
    run(tmp_path)
    meta = tmp_path / "meta.json"
    meta.write_text(meta.read_text()[:20])
    with pytest.raises(ValueError, match=r"meta\.json: not a valid dataset"):
        gi.load_split(tmp_path, "train")


def test_an_instance_that_cannot_fit_in_memory_is_refused(
    tmp_path, capsys, monkeypatch
):
    from kkt_nets import resources

    monkeypatch.setattr(resources, "available_memory", lambda: 10**9)
    with pytest.raises(SystemExit):
        gi.main([*ARGS[:2], "--rows", "5000", "--cols", "5000", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "one 5000 x 5000 set_cover instance would need about 1.2 GB" in err
    assert "reduce --rows / --cols" in err
    assert not list(tmp_path.iterdir())
