"""The examples: train_digits.py reaches okto-train's accuracy with okto.nn, and gives the same
numbers as build/tools/okto-train for the same seed and settings (same split, batches, model
initialisation and schedule: the losses agree to 1e-5 relative, the accuracies exactly);
char_gpt.py trains a tiny GPT a few steps (its loss falls) and generates text."""

import importlib.util
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OKTO_TRAIN = os.environ.get("OKTO_TRAIN", os.path.join(ROOT, "build", "tools", "okto-train"))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "examples",
                                                                     name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def digits():
    mod = _load("train_digits")
    if not os.path.exists(mod.DIGITS):
        pytest.importorskip("sklearn", reason="no digits data (apt-get install python3-sklearn)")
    return mod


def test_train_digits_mlp_reaches_95_percent(digits, capsys):
    r = digits.train("mlp", verbose=True)  # okto-train's defaults: 60 epochs, batch 32, AdamW
    out = capsys.readouterr().out
    assert "final: holdout accuracy" in out
    assert r["holdout_accuracy"] >= 0.95, out
    assert r["tasks_per_step"] > 10
    print(out.strip().splitlines()[-1])


def test_splitmix_matches_okto_train():
    r = _load("train_digits").Rng(1)
    # splitmix64's published first outputs for seed 1 (as tools/train/rng.c computes them)
    assert [r.next() for _ in range(2)] == [0x910A2DEC89025CC1, 0xBEEB8DA1658EEC67]


@pytest.mark.parametrize("model,epochs", [("mlp", 3), ("cnn", 1)])
def test_train_digits_same_numbers_as_okto_train(digits, model, epochs):
    if not os.access(OKTO_TRAIN, os.X_OK):
        pytest.skip("no %s (ninja -C build)" % OKTO_TRAIN)
    proc = subprocess.run([OKTO_TRAIN, "--model", model, "--epochs", str(epochs), "--seed", "3",
                           "--json", "--progress", "off"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    c = json.loads(proc.stdout)["final"]
    r = digits.train(model, epochs=epochs, seed=3, verbose=False)
    assert r["holdout_accuracy"] == pytest.approx(c["holdout_accuracy"], abs=1e-6)
    assert r["train_loss"] == pytest.approx(c["train_loss"], rel=1e-5)
    assert r["steps"] == c["steps"]
    print("%s %d epochs, seed 3: okto-train accuracy %.4f loss %.6g; Python %.4f loss %.6g"
          % (model, epochs, c["holdout_accuracy"], c["train_loss"], r["holdout_accuracy"],
             r["train_loss"]))


def test_char_gpt_learns_and_generates():
    mod = _load("char_gpt")
    if not os.path.isdir(mod.LICENSES):
        pytest.skip("no %s" % mod.LICENSES)
    r = mod.train(steps=30, batch=8, context=16, width=32, layers=1, heads=2, lr=1e-2,
                  tokens=40, verbose=False)
    assert r["first_loss"] == pytest.approx(r["uniform_loss"], abs=0.3)
    assert r["final_loss"] < r["first_loss"] - 0.5
    assert len(r["text"]) == len("The ") + 40 and r["text"].startswith("The ")
