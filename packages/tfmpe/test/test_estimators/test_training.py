"""fit(): static data and generators, early stopping, checkpoints and resume."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tfmpe import TokenGenerator, generate_static_dataset
from tfmpe.estimators import FlowMatchingEstimator
from tfmpe.estimators import checkpoint as checkpoint_module

SPEC = {"local": ["obs"]}
TINY = {"embed_dim": 8, "n_heads": 1, "n_layers": 1}


def prior(rng_key):
    return {"theta": jax.random.normal(rng_key, (1, 1))}


def simulate(rng_key, params):
    return {"obs": params["theta"] + 0.5 * jax.random.normal(rng_key, (3, 1))}


@pytest.fixture(scope="module")
def data():
    train = generate_static_dataset(0, prior, simulate, None, SPEC, 256)
    val = generate_static_dataset(1, prior, simulate, None, SPEC, 64)
    return train, val


def same(a, b):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a, b)))


def test_resume_continues_exactly_where_training_stopped(data, tmp_path, monkeypatch):
    train, val = data
    kwargs = {
        "val": val,
        "epochs": 3,
        "batch_size": 64,
        "progress": False,
        "patience": None,
    }
    full = FlowMatchingEstimator(train, ["theta"], config=TINY)
    full_history = full.fit(train, checkpoint=tmp_path / "full.npz", **kwargs)

    saves = []
    original = checkpoint_module.save_training_state

    def interrupted(*args, **kw):
        original(*args, **kw)
        saves.append(1)
        if len(saves) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "save_training_state", interrupted)
    first = FlowMatchingEstimator(train, ["theta"], config=TINY)
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, checkpoint=tmp_path / "run.npz", **kwargs)
    monkeypatch.setattr(checkpoint_module, "save_training_state", original)
    resumed = FlowMatchingEstimator(train, ["theta"], config=TINY)
    history = resumed.fit(train, checkpoint=tmp_path / "run.npz", resume=True, **kwargs)
    assert same(resumed.params, full.params)
    np.testing.assert_array_equal(history.val_loss, full_history.val_loss)
    assert history.best_epoch == full_history.best_epoch


def test_validation_picks_the_best_epoch_and_patience_stops(data):
    train, val = data
    est = FlowMatchingEstimator(train, ["theta"], config=TINY)
    history = est.fit(
        train,
        val=val,
        epochs=30,
        batch_size=64,
        patience=2,
        learning_rate=0.3,
        progress=False,
    )
    assert history.best_epoch == int(np.argmin(history.val_loss))
    # stopped exactly `patience` epochs after the best one, or ran to the end
    expected = history.best_epoch + 3 if history.stopped_early else 30
    assert len(history.val_loss) == expected
    assert history.stopped_early == (history.best_epoch + 3 < 30)


def test_generator_training_sees_new_data_every_epoch(data):
    train, _ = data
    generator = TokenGenerator(
        prior, simulate, None, SPEC, 128, 64, seed=0, drop_last=True
    )
    est = FlowMatchingEstimator(train, ["theta"], config=TINY)
    history = est.fit(generator, epochs=3, progress=False)
    assert generator.epoch == 3
    assert np.all(np.isfinite(history.train_loss))


def test_a_diverging_loss_is_an_error_not_a_nan(data):
    train, _ = data
    est = FlowMatchingEstimator(train, ["theta"], config=TINY)
    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        est.fit(
            train, epochs=5, batch_size=64, optimizer=optax.sgd(1e30), progress=False
        )


def test_checkpoint_of_another_model_is_refused(data, tmp_path):
    train, _ = data
    small = FlowMatchingEstimator(train, ["theta"], config=TINY)
    small.fit(
        train, epochs=1, batch_size=64, checkpoint=tmp_path / "c.npz", progress=False
    )
    wider = FlowMatchingEstimator(train, ["theta"], config={**TINY, "embed_dim": 16})
    with pytest.raises(ValueError, match="written for another model: config"):
        wider.fit(
            train,
            epochs=2,
            batch_size=64,
            checkpoint=tmp_path / "c.npz",
            resume=True,
            progress=False,
        )
    small.save(tmp_path / "small.npz")
    header, arrays = checkpoint_module._read(tmp_path / "small.npz")
    header["config"]["embed_dim"] = 16
    checkpoint_module._write(tmp_path / "edited.npz", header, arrays)
    with pytest.raises(ValueError, match="model of another shape"):
        FlowMatchingEstimator.load(tmp_path / "edited.npz")


def test_corrupted_foreign_and_future_files_are_refused(data, tmp_path):
    train, _ = data
    est = FlowMatchingEstimator(train, ["theta"], config=TINY)
    path = est.save(tmp_path / "est.npz")
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.npz is not a readable"):
        FlowMatchingEstimator.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"foreign\.npz is not a readable"):
        FlowMatchingEstimator.load(tmp_path / "foreign.npz")
    header, arrays = checkpoint_module._read(path)
    checkpoint_module._write(tmp_path / "v9.npz", {**header, "version": 9}, arrays)
    with pytest.raises(ValueError, match="format version 9"):
        FlowMatchingEstimator.load(tmp_path / "v9.npz")
    with pytest.raises(FileNotFoundError):
        FlowMatchingEstimator.load(tmp_path / "missing.npz")


def test_fit_arguments_are_validated(data, tmp_path):
    train, _ = data
    est = FlowMatchingEstimator(train, ["theta"], config=TINY)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        est.fit(train, epochs=0)
    with pytest.raises(ValueError, match=r"batch_size .* exceeds the 256"):
        est.fit(train, batch_size=1000)
    with pytest.raises(TypeError, match="train must be a Tokens dataset"):
        est.fit({"theta": np.zeros(3)})
    with pytest.raises(FileNotFoundError, match="resume=True but checkpoint"):
        est.fit(train, checkpoint=tmp_path / "none.npz", resume=True)
    with pytest.raises(ValueError, match="is a directory"):
        est.fit(train, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="learning_rate must be a positive"):
        est.fit(train, learning_rate=-1.0)
