"""The scenario and loan commands through the real ``genforge`` entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genforge.cli import main


@pytest.fixture(scope="module")
def loans_csv(tmp_path_factory):
    from genforge.finance.loans.data import load_german_credit

    path = tmp_path_factory.mktemp("loans") / "loans.csv"
    load_german_credit().sample(200, random_state=0).to_csv(path, index=False)
    return path


def test_price_loans_writes_rates(loans_csv, tmp_path, capsys):
    out = tmp_path / "priced.csv"
    rc = main(
        ["finance", "loans", "price", str(loans_csv), "--out", str(out), "--lgd", "0.5", "--margin", "0.01"]
    )
    assert rc == 0, capsys.readouterr().err
    priced = pd.read_csv(out)
    assert len(priced) == 200 and "creditability" not in priced
    np.testing.assert_allclose(priced["rate"], priced["pd"] * 0.5 + 0.03 + 0.01)


@pytest.mark.parametrize(
    "args, message",
    [
        (["MISSING.csv", "--out", "{tmp}/p.csv"], "not found"),
        (["{loans}", "--out", "{tmp}/p.txt"], "expected .csv or .parquet"),
        (["{loans}", "--out", "{tmp}/p.csv", "--lgd", "2"], "lgd"),
        (["{loans}", "--out", "{tmp}/p.csv", "--train", "{tmp}/none.csv"], "not found"),
    ],
)
def test_price_loans_errors_leave_no_file(loans_csv, tmp_path, capsys, args, message):
    argv = [a.format(tmp=tmp_path, loans=loans_csv) for a in args]
    assert main(["finance", "loans", "price", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("p.*"))


def test_synthesize_loans_with_condition(loans_csv, tmp_path, capsys):
    out, model = tmp_path / "synth.parquet", tmp_path / "model"
    argv = [
        "finance",
        "loans",
        "synthesize",
        "--n",
        "40",
        "--data",
        str(loans_csv),
        "--out",
        str(out),
        "--steps",
        "3",
        "--condition",
        "housing=rent",
        "--save-model",
        str(model),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    synth = pd.read_parquet(out)
    assert len(synth) == 40 and (synth["housing"] == "rent").all()
    assert (model / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--condition", "housing"], "COLUMN=VALUE"),
        (["--condition", "nope=1"], "not in the loan table"),
        (["--condition", "housing=castle"], "unknown value"),
        (["--n", "0"], "positive"),
    ],
)
def test_synthesize_loans_errors_leave_no_file(loans_csv, tmp_path, capsys, extra, message):
    out = tmp_path / "synth.parquet"
    argv = [
        "finance",
        "loans",
        "synthesize",
        "--n",
        "10",
        "--data",
        str(loans_csv),
        "--out",
        str(out),
        "--steps",
        "2",
        *extra,
    ]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_train_gen_and_simulate(tmp_path, capsys):
    model, paths = tmp_path / "gen", tmp_path / "paths.parquet"
    argv = [
        "finance",
        "scenarios",
        "train",
        "--out",
        str(model),
        "--steps",
        "2",
        "--window",
        "16",
        "--hidden",
        "8",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    argv = [
        "finance",
        "scenarios",
        "simulate",
        "--model",
        str(model),
        "--paths",
        "3",
        "--length",
        "40",
        "--out",
        str(paths),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    frame = pd.read_parquet(paths)
    assert list(frame.columns) == ["path", "t", "return"] and len(frame) == 120
    assert np.isfinite(frame["return"]).all()


def test_simulate_errors_leave_no_file(tmp_path, capsys):
    out = tmp_path / "paths.parquet"
    assert (
        main(["finance", "scenarios", "simulate", "--model", str(tmp_path / "none"), "--out", str(out)]) == 2
    )
    assert "scenarios train" in capsys.readouterr().err
    (tmp_path / "not_a_model").mkdir()
    assert (
        main(
            ["finance", "scenarios", "simulate", "--model", str(tmp_path / "not_a_model"), "--out", str(out)]
        )
        == 2
    )
    assert "error" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_gen_stylized_facts_only(tmp_path, capsys):
    out = tmp_path / "gen.json"
    argv = [
        "finance",
        "scenarios",
        "evaluate",
        "--skip-timegan",
        "--sf-steps",
        "1",
        "--sf-paths",
        "2",
        "--sf-window",
        "16",
        "--hidden",
        "8",
        "--json",
        str(out),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    for key in ("emd_lag1", "emd_lag5", "emd_lag20", "emd_lag100", "acf_abs", "leverage"):
        assert np.isfinite(result[key])
    sf = result["stylized_facts"]
    assert "garch" in sf and "garch_vs_garch" in sf
    # --sf-window reaches the model (it used to be dropped, leaving Quant GAN's 127)
    assert sf["window"] == 16 and result["settings"]["sf_window"] == 16
    assert result["settings"]["ema_decay"] == 0.95


def test_evaluate_loans_small(tmp_path, capsys):
    out = tmp_path / "loans.json"
    assert main(["finance", "loans", "evaluate", "--seeds", "1", "--steps", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert 0.0 < result["quality"] <= 1.0 and result["tstr_over_trtr"] > 0
    assert "skipped" in result["sdv_ctgan"] or "quality" in result["sdv_ctgan"]


def test_evaluate_errors(tmp_path, capsys):
    assert main(["finance", "scenarios", "evaluate", "--json", str(tmp_path / "x.txt")]) == 2
    assert main(["finance", "scenarios", "evaluate", "--stocks", str(tmp_path / "none.csv")]) == 2
    assert main(["finance", "scenarios", "evaluate", "--ema-decay", "1.5"]) == 2
    assert main(["finance", "scenarios", "evaluate", "--sf-window", "1"]) == 2
    assert main(["finance", "scenarios", "evaluate", "--model", "diffusion", "--critic-increments"]) == 2
    assert main(["finance", "loans", "evaluate", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error") >= 6
    assert "--ema-decay" in err and "--sf-window" in err and "--critic-increments: a GAN option" in err


def test_the_installed_entry_point_has_every_product_group():
    """Through the installed ``genforge`` script: a finance suite that fails to import would be missing
    here (or warned about on stderr), and this test fails."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("genforge") or str(Path(sys.executable).parent / "genforge")
    done = subprocess.run([script, "finance", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for group in ("vol", "scenarios", "loans", "demo"):
        assert group in done.stdout
    assert "train-vol" not in done.stdout  # the old names are hidden aliases


def test_old_command_names_still_work_with_one_deprecation_line(loans_csv, tmp_path, capsys):
    out = tmp_path / "priced.csv"
    assert main(["finance", "price-loans", str(loans_csv), "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and "genforge finance loans price" in err[0]
    assert out.is_file()
