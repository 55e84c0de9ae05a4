"""The training example reaches its accuracy (a full run: about a second)."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "train_digits.py")


def _load():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_digits_reaches_95_percent(capsys):
    mod = _load()
    if not os.path.exists(mod.DIGITS):
        pytest.importorskip("sklearn", reason="no digits data (apt-get install python3-sklearn)")
    r = mod.train(verbose=True)
    out = capsys.readouterr().out
    assert "final: holdout accuracy" in out
    assert r["holdout_accuracy"] >= 0.95, out
    assert r["tasks_per_step"] > 10
    print(out.strip().splitlines()[-1])
