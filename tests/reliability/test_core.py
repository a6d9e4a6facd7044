"""Reliability corpus, core: output-folder guard, honest resume, writable outputs, numeric options, loader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import TRAIN, refused, snapshot
from safetensors.torch import load_file, save_file

import genforge
from genforge.checkpoints import CheckpointError
from genforge.outputs import MANIFEST

UNWRITABLE = Path("/sys/genforge-reliability/out")
needs_sys = pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys")


def train(cli, table_csv, out, *extra):
    return cli("train", "vae", "--dataset", table_csv, "--out", out, *TRAIN, *extra)


# ------------------------------------------------------------------ output folders of other jobs/users
def test_train_refuses_folder_with_users_config(cli, table_csv, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    before = snapshot(out)
    refused(train(cli, table_csv, out), str(out), "config.json", "--overwrite")
    assert snapshot(out) == before


def test_train_refuses_ecg_model_folder(cli, table_csv, ecg_model, tmp_path):
    import shutil

    out = tmp_path / "ecg"
    shutil.copytree(ecg_model, out)
    before = snapshot(out)
    refused(train(cli, table_csv, out), str(out), "--overwrite")
    assert snapshot(out) == before


def test_train_refuses_other_family_run(cli, table_csv, own_run):
    before = snapshot(own_run)
    r = cli("train", "gan", "--dataset", "digits", "--out", own_run, "--steps", "2", "--no-progress")
    refused(r, "'genforge train vae' job", "genforge train gan")
    assert snapshot(own_run) == before


def test_train_refuses_legacy_recipe_folder(cli, table_csv, tmp_path):
    out = tmp_path / "legacy"
    out.mkdir()
    (out / "recipe.json").write_text(json.dumps({"family": "vae"}))
    before = snapshot(out)
    refused(train(cli, table_csv, out), "recipe.json")
    assert snapshot(out) == before


def test_train_refuses_manifest_of_another_suite(cli, table_csv, tmp_path):
    out = tmp_path / "fin"
    out.mkdir()
    manifest = {"format": "genforge-job", "kind": "genforge ecg train", "settings": {}}
    (out / MANIFEST).write_text(json.dumps(manifest))
    before = snapshot(out)
    refused(train(cli, table_csv, out), "'genforge ecg train' job")
    assert snapshot(out) == before


def test_train_overwrite_replaces_foreign_folder(cli, table_csv, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    assert train(cli, table_csv, out, "--overwrite").rc == 0
    assert genforge.load(out) is not None
    assert json.loads((out / MANIFEST).read_text())["kind"] == "genforge train vae"


def test_train_into_empty_existing_folder_is_fine(cli, table_csv, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert train(cli, table_csv, out).rc == 0


def test_train_same_settings_resumes_own_run(cli, table_csv, own_run):
    r = train(cli, table_csv, own_run)
    assert r.rc == 0, r.err
    assert "resuming from step 4" in r.out


# ------------------------------------------------------------------ resume with other settings
@pytest.mark.parametrize(
    ("option", "value", "key"),
    [("--seed", "1", "seed"), ("--lr", "0.01", "lr"), ("--batch-size", "16", "batch_size"),
     ("--val-every", "2", "val_every")],
)
def test_resume_with_other_settings_lists_keys(cli, table_csv, own_run, option, value, key):
    before = snapshot(own_run)
    args = [a for a in TRAIN]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    r = cli("train", "vae", "--dataset", table_csv, "--out", own_run, *args)
    refused(r, MANIFEST, f"{key}:", "--overwrite")
    assert snapshot(own_run) == before


def test_resume_with_other_dataset_lists_dataset(cli, table_csv, own_run, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text(table_csv.read_text())
    before = snapshot(own_run)
    refused(train(cli, other, own_run), "dataset:")
    assert snapshot(own_run) == before


def test_resume_with_other_settings_and_overwrite_starts_afresh(cli, table_csv, own_run):
    r = cli("train", "vae", "--dataset", table_csv, "--out", own_run, *TRAIN, "--seed", "3", "--overwrite")
    assert r.rc == 0 and "resuming" not in r.out
    assert json.loads((own_run / MANIFEST).read_text())["settings"]["seed"] == 3


# ------------------------------------------------------------------ --out that cannot be written
@pytest.mark.parametrize("command", ["train", "sample"])
def test_out_is_a_file(cli, table_csv, core_run, tmp_path, command):
    target = tmp_path / "file.txt"
    target.write_text("keep")
    if command == "train":
        r = train(cli, table_csv, target)
    else:
        r = cli("sample", "--model", core_run, "--out", target / "x")
    refused(r, str(target))
    assert target.read_text() == "keep"


@pytest.mark.parametrize("command", ["train", "sample"])
def test_out_parent_is_a_file(cli, table_csv, core_run, tmp_path, command):
    parent = tmp_path / "afile"
    parent.write_text("keep")
    target = parent / "sub" / ("run" if command == "train" else "s.csv")
    if command == "train":
        r = train(cli, table_csv, target)
    else:
        r = cli("sample", "--model", core_run, "--out", target)
    refused(r, "afile", "expected a folder")
    assert parent.read_text() == "keep"


@needs_sys
@pytest.mark.parametrize("command", ["train", "sample"])
def test_out_not_writable(cli, table_csv, core_run, command):
    if command == "train":
        r = train(cli, table_csv, UNWRITABLE)
    else:
        r = cli("sample", "--model", core_run, "--out", UNWRITABLE / "s.csv")
    refused(r, "cannot write in /sys", "expected a writable place")


def test_sample_wrong_suffix(cli, core_run, tmp_path):
    refused(cli("sample", "--model", core_run, "--out", tmp_path / "s.png"), "--out", "expected a .csv file")
    assert not (tmp_path / "s.png").exists()


# ------------------------------------------------------------------ numeric options
@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [("--lr", "nan", "--lr"), ("--lr", "inf", "--lr"), ("--lr", "-1", "--lr"), ("--lr", "0", "--lr"),
     ("--steps", "0", "--steps"), ("--steps", "-5", "--steps"), ("--batch-size", "0", "--batch-size"),
     ("--checkpoint-seconds", "nan", "--checkpoint-seconds"),
     ("--checkpoint-seconds", "0", "--checkpoint-seconds"),
     ("--checkpoint-every", "0", "--checkpoint-every"), ("--val-every", "-1", "--val-every")],
)
def test_train_bad_numeric_option(cli, table_csv, tmp_path, option, value, needle):
    out = tmp_path / "run"
    args = [a for a in TRAIN]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    refused(cli("train", "vae", "--dataset", table_csv, "--out", out, *args), needle)
    assert not out.exists()


def test_train_oversized_batch_leaves_nothing(cli, table_csv, tmp_path):
    out = tmp_path / "run"
    refused(train(cli, table_csv, out, "--batch-size", "100000"), "--batch-size 100000", "expected at most")
    assert not out.exists()


def test_train_oversized_batch_in_empty_folder_leaves_no_recipe(cli, table_csv, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    refused(train(cli, table_csv, out, "--batch-size", "100000"), "--batch-size")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("--guidance", "nan"), ("--guidance", "inf"), ("--temperature", "nan"), ("--top-p", "nan"),
     ("--top-p", "-inf"), ("-n", "0")],
)
def test_sample_bad_numeric_option(cli, core_run, tmp_path, option, value):
    refused(cli("sample", "--model", core_run, "--out", tmp_path / "s.csv", option, value), option)
    assert not (tmp_path / "s.csv").exists()


def test_train_missing_dataset_leaves_nothing(cli, tmp_path):
    out = tmp_path / "run"
    refused(cli("train", "vae", "--dataset", tmp_path / "nope.csv", "--out", out, *TRAIN), "nope.csv")
    assert not out.exists()


def test_train_default_recipe_checkpoints_on_time(cli, own_run):
    recipe = json.loads((own_run / "recipe.json").read_text())
    assert recipe["train"]["checkpoint_seconds"] == 60.0


def test_engine_checkpoints_on_time(tmp_path, monkeypatch):
    from genforge.models.vae import VAE, VAEConfig
    from genforge.training import engine
    from genforge.training.engine import TrainConfig, Trainer

    saves = []
    original = engine._Run._save_state

    def counting(self):
        saves.append(self.step)
        original(self)

    monkeypatch.setattr(engine._Run, "_save_state", counting)
    model = VAE(VAEConfig(kind="mlp", in_features=3, latent_dim=2, hidden=(8,)))
    cfg = TrainConfig(max_steps=6, batch_size=16, out_dir=str(tmp_path), checkpoint_seconds=1e-9,
                      progress=False, device="cpu", val_every=None)
    Trainer(cfg).fit(model, torch.randn(64, 3))
    assert saves == [1, 2, 3, 4, 5, 6]  # every step (the time is always due), then the end


# ------------------------------------------------------------------ checkpoint loader
def _write_config(folder: Path, **changes) -> None:
    meta = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        meta[key] = value
    (folder / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("module", ["genforge.dashboards.app", "genforge.dashboards.views.ecg", "os"])
def test_loader_never_imports_module_named_in_config(own_run, module):
    sys.modules.pop(module, None) if module != "os" else None
    _write_config(own_run, model="not_a_model", module=module)
    with pytest.raises(CheckpointError, match="unknown model type 'not_a_model'") as info:
        genforge.load(own_run)
    assert "\n" not in str(info.value)
    if module != "os":
        assert module not in sys.modules


def test_loader_config_module_via_cli(cli, own_run, tmp_path):
    _write_config(own_run, model="not_a_model", module="genforge.dashboards.app")
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "config.json", "'model'")
    assert "genforge.dashboards.app" not in sys.modules


@pytest.mark.parametrize("size", [10**9, -10])
def test_loader_checks_layer_sizes_before_building(own_run, size):
    meta = json.loads((own_run / "config.json").read_text())
    key = next(k for k in ("hidden", "latent_dim", "hidden_dim") if k in meta["config"])
    meta["config"][key] = [size] * len(meta["config"][key]) if isinstance(meta["config"][key], list) else size
    (own_run / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config") as info:
        genforge.load(own_run)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_loader_refuses_non_finite_weights(cli, own_run, tmp_path, bad):
    weights = load_file(str(own_run / "model.safetensors"))
    key = sorted(weights)[0]
    weights[key] = weights[key].clone()
    weights[key].view(-1)[0] = bad
    save_file(weights, str(own_run / "model.safetensors"))
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "model.safetensors", key,
            "expected finite weights")
    assert not (tmp_path / "s.csv").exists()


def test_loader_unknown_config_field(cli, own_run, tmp_path):
    meta = json.loads((own_run / "config.json").read_text())
    meta["config"]["surprise"] = 1
    (own_run / "config.json").write_text(json.dumps(meta))
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "config.json", "surprise")


def test_loader_invalid_json(cli, own_run, tmp_path):
    (own_run / "config.json").write_text("{not json")
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "config.json", "invalid JSON")


def test_loader_missing_weights(cli, own_run, tmp_path):
    (own_run / "model.safetensors").unlink()
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "model.safetensors", "missing")


def test_loader_wrong_format_field(cli, own_run, tmp_path):
    _write_config(own_run, format="other")
    refused(cli("sample", "--model", own_run, "--out", tmp_path / "s.csv"), "config.json", "'format'")


def test_loader_extra_tensor_in_weights(own_run):
    weights = load_file(str(own_run / "model.safetensors"))
    weights["intruder"] = torch.zeros(3)
    save_file(weights, str(own_run / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected 1 key"):
        genforge.load(own_run)
