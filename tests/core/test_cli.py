"""The `genforge` command through its real entry points: `python -m genforge` and `cli.main(argv)`.

Trains tiny models end to end (the VAE and GPT must beat an untrained model / the unigram entropy),
samples them, and checks that user mistakes end as one `error:` line, exit code 2, no traceback and
no partial output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import genforge
from genforge.cli import main
from genforge.datasets import load_dataset, prepare, unigram_entropy
from genforge.demo import text_val_loss
from genforge.recipes import build_model

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genforge", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr. A suite that fails to import fails the test: its warning
    line is an error of the install, not noise to filter."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("warning: suite")], stderr
    return lines


def assert_one_error(rc: int, stderr: str, *needles: str) -> None:
    lines = error_lines(stderr)
    assert rc == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_help_lists_commands_and_teaches():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert error_lines(proc.stderr) == []  # every installed suite imports: no warning line
    for command in ("train", "sample", "demo", "dashboard", "info"):
        assert command in proc.stdout
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    assert "genforge train vae --dataset digits" in proc.stdout  # an example to copy


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert "cpu" in facts["devices"]
    from importlib.metadata import entry_points

    assert set(facts["suites"]) == {ep.name for ep in entry_points(group="genforge.suites")}
    assert {name: status for name, status in facts["suites"].items() if status != "loaded"} == {}


def test_train_and_sample_vae_end_to_end(tmp_path):
    out = tmp_path / "vae"
    proc = run_cli("train", "vae", "--dataset", "digits", "--out", str(out), "--steps", "150",
                   "--no-progress", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "trained vae on digits: 150 steps" in proc.stdout

    # learning happened: the trained model's loss on held-out digits beats the untrained model's
    data = prepare("vae", load_dataset("digits"), seed=0)
    trained = genforge.load(out)
    torch.manual_seed(0)
    untrained = build_model("vae", data.meta).eval()
    with torch.no_grad():
        loss_trained = float(trained.training_loss(data.val)["loss"])
        loss_untrained = float(untrained.training_loss(data.val)["loss"])
    assert loss_trained < 0.85 * loss_untrained, (loss_trained, loss_untrained)

    png = tmp_path / "grid.png"
    proc = run_cli("sample", "--model", str(out), "-n", "20", "--out", str(png))
    assert proc.returncode == 0, proc.stderr
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > img.height > 0  # 10 columns x 2 rows of digits


def test_train_and_sample_gpt_end_to_end(tmp_path, capsys):
    out = tmp_path / "gpt"
    rc = main(["train", "transformer", "--dataset", "shakespeare", "--out", str(out), "--steps", "120",
               "--batch-size", "16", "--no-progress", "--device", "cpu"])
    assert rc == 0
    text = load_dataset("shakespeare")
    data = prepare("transformer", text)
    model = genforge.load(out)
    loss = text_val_loss(model, tuple(t[:64] for t in data.val))
    assert loss < unigram_entropy(text.x) - 0.2, loss  # context helps: below the unigram entropy

    target = tmp_path / "text.txt"
    rc = main(["sample", "--model", str(out), "-n", "2", "--prompt", "HAMLET:", "--max-new-tokens", "40",
               "--temperature", "0", "--out", str(target)])
    assert rc == 0
    samples = target.read_text()[:-1].split("\n\n" + "-" * 40 + "\n\n")
    assert len(samples) == 2 and samples[0] == samples[1]  # greedy: identical
    assert samples[0].startswith("HAMLET:") and len(samples[0]) == len("HAMLET:") + 40
    assert "wrote 2 samples" in capsys.readouterr().out


def test_missing_dataset_file_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "vae", "--dataset", str(tmp_path / "nope.csv"), "--out", str(out))
    assert_one_error(proc.returncode, proc.stderr, "nope.csv", "not found")
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "vae", "--dataset", "digits", "--steps", "abc"], "--steps"),
        (["train", "vae", "--dataset", "digits", "--steps", "0"], "--steps"),
        (["train", "vae", "--dataset", "digits", "--lr", "-1"], "--lr"),
        (["train", "vea", "--dataset", "digits"], "vea"),
        (["train", "vae"], "--dataset"),
        (["train", "vae", "--dataset", "shakespeare"], "vae family needs"),
        (["train", "diffusion", "--dataset", "table.csv"], "diffusion family needs"),
        (["sample", "--model", "missing-dir"], "missing-dir"),
        (["demo", "--suite", "no-such-suite"], "no-such-suite"),
    ],
)
def test_bad_inputs_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "table.csv").write_text("a,b\n" + "\n".join(f"{i},{i * 2}" for i in range(20)))
    out = tmp_path / "out"
    if argv[0] == "train":
        argv = [*argv, "--out", str(out)]
    rc = main(argv)
    assert_one_error(rc, capsys.readouterr().err, needle)
    assert not out.exists()
    assert not list(tmp_path.glob("genforge-results*"))


def test_corrupt_checkpoint_is_one_line_and_no_samples(tmp_path, capsys):
    model_dir = tmp_path / "broken"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"format": "genforge", "model": "vae", "config": {')
    (model_dir / "model.safetensors").write_bytes(b"\x00" * 10)
    rc = main(["sample", "--model", str(model_dir), "--out", str(tmp_path / "s.png")])
    assert_one_error(rc, capsys.readouterr().err, "config.json")
    assert not (tmp_path / "s.png").exists()


def test_truncated_weights_and_trainer_state(tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["train", "vae", "--dataset", "digits", "--out", str(out), "--steps", "5",
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    rc = main(["sample", "--model", str(out), "--out", str(tmp_path / "s.png")])
    assert_one_error(rc, capsys.readouterr().err, "model.safetensors")
    assert not (tmp_path / "s.png").exists()

    state = out / "trainer_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    rc = main(["train", "vae", "--dataset", "digits", "--out", str(out), "--steps", "10", "--no-progress"])
    assert_one_error(rc, capsys.readouterr().err, "trainer_state")


def test_out_dir_of_another_model_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "recipe.json").write_text(json.dumps({"family": "gan", "meta": {"data": {"name": "digits"}}}))
    rc = main(["train", "vae", "--dataset", "digits", "--out", str(out), "--steps", "5"])
    assert_one_error(rc, capsys.readouterr().err, "files it did not write (recipe.json)")
    assert sorted(p.name for p in out.iterdir()) == ["recipe.json"]


def test_dashboard_app_is_installed():
    from genforge.cli import dashboard_app_path

    path = dashboard_app_path()
    assert path.is_file() and path.name == "app.py"
    assert Path(path).parent.name == "dashboards"


def test_table_csv_vae_keeps_columns_and_scale(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 1.0, 600)
    frame = pd.DataFrame({"income": a, "spend": 2 * a + rng.normal(0, 0.3, 600)})
    frame.to_csv(tmp_path / "table.csv", index=False)
    out = tmp_path / "vae"
    assert main(["train", "vae", "--dataset", str(tmp_path / "table.csv"), "--out", str(out),
                 "--steps", "300", "--no-progress", "--device", "cpu"]) == 0
    assert main(["sample", "--model", str(out), "-n", "400", "--out", str(tmp_path / "synth.csv")]) == 0
    synth = pd.read_csv(tmp_path / "synth.csv")
    assert list(synth.columns) == ["income", "spend"]
    assert abs(synth["income"].mean() - 5.0) < 0.5 and abs(synth["spend"].mean() - 10.0) < 1.0
    assert synth["income"].corr(synth["spend"]) > 0.5  # the dependence between columns was learned
