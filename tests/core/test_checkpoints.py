"""genforge.save / genforge.load: round trips, tied weights, clear errors, and no unpickling ever."""

from __future__ import annotations

import json
import os
import pickle
import pickletools
from pathlib import Path

import pytest
import torch
from engine_helpers import TiedConfig, TinyMLP, TinyMLPConfig, TinyTied

import genforge
from genforge.checkpoints import CheckpointError, load_extra
from genforge.errors import GenforgeError
from genforge.training.state import read_trainer_state, write_trainer_state


def _mlp(seed: int = 0, hidden: int = 16) -> TinyMLP:
    torch.manual_seed(seed)
    return TinyMLP(TinyMLPConfig(hidden=hidden))


def test_round_trip_rebuilds_model_from_config(tmp_path: Path) -> None:
    model = _mlp()
    out = genforge.save(model, tmp_path / "ckpt", extra={"threshold": 0.25, "columns": ["a", "b"]})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]  # no temp files left
    meta = json.loads((out / "config.json").read_text())
    assert meta["format"] == "genforge" and meta["model"] == "test-mlp"
    assert meta["config"] == {"in_features": 4, "hidden": 16}

    loaded = genforge.load(out)
    assert isinstance(loaded, TinyMLP) and not loaded.training
    x = torch.randn(5, 4)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert load_extra(out) == {"threshold": 0.25, "columns": ["a", "b"]}
    assert genforge.load(out / "model.safetensors").config == model.config  # a file inside works too


def test_tied_weights_survive_save_and_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = TinyTied(TiedConfig())
    genforge.save(model, tmp_path)
    loaded = genforge.load(tmp_path)
    assert loaded.head.weight.data_ptr() == loaded.embed.weight.data_ptr()
    torch.testing.assert_close(loaded.embed.weight, model.embed.weight, rtol=0, atol=0)


def test_gpt_with_tied_head_round_trips(tmp_path: Path) -> None:
    transformer = pytest.importorskip("genforge.models.transformer")
    torch.manual_seed(0)
    gpt = transformer.GPT(transformer.GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16))
    genforge.save(gpt, tmp_path)
    loaded = genforge.load(tmp_path)
    idx = torch.randint(0, 17, (2, 8))
    torch.testing.assert_close(
        loaded.training_loss((idx, idx))["loss"], gpt.eval().training_loss((idx, idx))["loss"]
    )


def _devices(model: torch.nn.Module) -> set[str]:
    return {t.device.type for t in [*model.parameters(), *model.buffers()]}


def test_load_defaults_to_cpu_and_honours_a_requested_device(tmp_path: Path) -> None:
    """No device: every tensor on the CPU (whatever the machine has); a device asked for is used."""
    from genforge.models.gan import GAN, GANConfig

    torch.manual_seed(0)
    model = GAN(GANConfig(kind="tabular", in_features=3, hidden=(8,), spectral_norm=True))  # has buffers
    assert list(model.buffers())
    genforge.save(model, tmp_path)
    saved = model.state_dict()

    default = genforge.load(tmp_path)
    assert _devices(default) == {"cpu"}
    for name, value in default.state_dict().items():
        assert torch.equal(value, saved[name]), name

    on_meta = genforge.load(tmp_path, device=torch.device("meta"))  # a device other than the default
    assert _devices(on_meta) == {"meta"}

    if torch.cuda.is_available():
        on_gpu = genforge.load(tmp_path, device="cuda")
        assert _devices(on_gpu) == {"cuda"}
        for name, value in on_gpu.state_dict().items():
            assert torch.equal(value.cpu(), saved[name]), name


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="folder not found"):
        genforge.load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json: missing"):
        genforge.load(tmp_path)
    genforge.save(_mlp(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        genforge.load(tmp_path)


def test_truncated_and_corrupt_weights(tmp_path: Path) -> None:
    genforge.save(_mlp(), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        genforge.load(tmp_path)
    weights.write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        genforge.load(tmp_path)
    weights.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        genforge.load(tmp_path)


def test_invalid_json_and_unknown_model(tmp_path: Path) -> None:
    genforge.save(_mlp(), tmp_path)
    config = tmp_path / "config.json"
    good = json.loads(config.read_text())
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        genforge.load(tmp_path)
    config.write_text(json.dumps({**good, "model": "no-such-model"}))
    with pytest.raises(CheckpointError, match="unknown model type 'no-such-model'"):
        genforge.load(tmp_path)
    config.write_text(json.dumps({**good, "format": "other"}))
    with pytest.raises(CheckpointError, match="not a genforge checkpoint"):
        genforge.load(tmp_path)
    config.write_text(json.dumps({**good, "config": {"in_features": 4, "bogus": 1}}))
    with pytest.raises(CheckpointError, match="bogus"):
        genforge.load(tmp_path)


def test_shape_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    genforge.save(_mlp(hidden=16), tmp_path / "a")
    genforge.save(_mlp(hidden=8), tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").replace(tmp_path / "b" / "model.safetensors")
    with pytest.raises(CheckpointError, match="shape mismatch") as info:
        genforge.load(tmp_path / "b")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, GenforgeError)


def test_missing_keys_are_an_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    genforge.save(_mlp(), tmp_path)
    save_file({"net.0.weight": torch.zeros(16, 4)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing 3 key"):
        genforge.load(tmp_path)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(marker))
    # sanity, without running it: the payload calls Path.touch(marker) when unpickled
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(payload)]
    assert ("STACK_GLOBAL", None) in ops and any(op == "REDUCE" for op, _ in ops)
    assert {"pathlib", "Path.touch", marker.name} <= {arg for _, arg in ops}

    genforge.save(_mlp(), tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        genforge.load(tmp_path / "ckpt")
    # torch.save's zip format carrying the same payload, as a weights file and as trainer state
    torch.save({"x": _Payload(marker)}, tmp_path / "ckpt" / "model.safetensors")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        genforge.load(tmp_path / "ckpt")
    (tmp_path / "state.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="trainer state"):
        read_trainer_state(tmp_path / "state.safetensors")
    assert not marker.exists()


def test_trainer_state_round_trip(tmp_path: Path) -> None:
    import random

    import numpy as np

    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), betas=(0.5, 0.9))
    model.training_loss((torch.randn(8, 4), torch.randn(8)))["loss"].backward()
    opt.step()
    state = {
        "opt": opt.state_dict(),
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
        "history": [{"step": 1, "loss": float("nan")}],
        "best": None,
    }
    write_trainer_state(tmp_path / "s.safetensors", state)
    back = read_trainer_state(tmp_path / "s.safetensors")
    assert back["opt"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert set(back["opt"]["state"]) == set(opt.state_dict()["state"])  # int keys kept
    torch.testing.assert_close(back["opt"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert back["rng"]["python"] == random.getstate()
    random.setstate(back["rng"]["python"])
    np.random.set_state(back["rng"]["numpy"])
    torch.set_rng_state(back["rng"]["torch"])
    opt2 = torch.optim.Adam(model.parameters())
    opt2.load_state_dict(back["opt"])
    assert back["best"] is None and np.isnan(back["history"][0]["loss"])
