"""Reliability corpus, content suite: bad material gives exit code 2, one ``error:`` line naming the file,
the field and what was expected, no traceback, and nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.reliability.conftest import refused, snapshot


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    from genforge.content import TextGenerator

    out = tmp_path_factory.mktemp("content") / "text-model"
    TextGenerator(
        n_layer=1, n_head=2, n_embd=16, block_size=16, max_steps=2, progress=False, device="cpu"
    ).fit("abcdefgh ijklmnop\n" * 40).save(out)
    return out


def _text_train(cli, data, out):
    return cli(
        "content",
        "text",
        "train",
        "--data",
        data,
        "--out",
        out,
        "--max-steps",
        "2",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--block-size",
        "16",
        "--device",
        "cpu",
    )


def test_text_empty_folder(cli, tmp_path):
    (tmp_path / "docs").mkdir()
    refused(_text_train(cli, tmp_path / "docs", tmp_path / "m"), "docs", "no .txt or .md files")
    assert not (tmp_path / "m").exists()


def test_text_binary_file(cli, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.txt").write_bytes(b"PK\x03\x04\x00\x00binary zip" * 50)
    refused(
        _text_train(cli, tmp_path / "docs", tmp_path / "m"), "report.txt", "binary file", "expected UTF-8"
    )
    assert not (tmp_path / "m").exists()


def test_text_not_utf8(cli, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 100)
    refused(_text_train(cli, tmp_path / "latin1.txt", tmp_path / "m"), "latin1.txt", "not UTF-8")
    assert not (tmp_path / "m").exists()


def test_text_too_short(cli, tmp_path):
    (tmp_path / "short.md").write_text("tiny", encoding="utf-8")
    refused(_text_train(cli, tmp_path / "short.md", tmp_path / "m"), "short.md", "expected at least 200")
    assert not (tmp_path / "m").exists()


def test_text_empty_prompts_file(cli, tmp_path, text_model):
    (tmp_path / "prompts.txt").write_text("\n\n", encoding="utf-8")
    result = cli(
        "content",
        "text",
        "batch",
        "--model",
        text_model,
        "--prompts",
        tmp_path / "prompts.txt",
        "--out",
        tmp_path / "out.jsonl",
    )
    refused(result, "prompts.txt", "no prompts")
    assert not (tmp_path / "out.jsonl").exists()


def test_text_prompt_with_unknown_character(cli, text_model):
    refused(
        cli("content", "text", "generate", "--model", text_model, "--prompt", "Z€"), "character", "vocabulary"
    )


def test_text_model_folder_missing(cli, tmp_path):
    result = cli("content", "text", "generate", "--model", tmp_path / "nothing")
    assert result.rc == 2 and "Traceback" not in result.err and "nothing" in result.err


def _images(root, n=4):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / f"{i}.png")


def _image_train(cli, data, out):
    return cli(
        "content",
        "image",
        "train",
        "--data",
        data,
        "--out",
        out,
        "--max-steps",
        "2",
        "--base-channels",
        "8",
        "--device",
        "cpu",
    )


@pytest.mark.parametrize(
    ("odd", "needles"),
    [
        (lambda p: Image.new("L", (12, 8)).save(p), ("field 'size' is 12x8", "expected 8x8")),
        (lambda p: Image.new("RGB", (8, 8)).save(p), ("field 'mode' is RGB", "expected L")),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\nbroken"), ("not a readable PNG/JPEG",)),
    ],
    ids=["size", "mode", "corrupt"],
)
def test_image_of_another_size_mode_or_corrupt(cli, tmp_path, odd, needles):
    _images(tmp_path / "imgs")
    odd(tmp_path / "imgs" / "z_odd.png")
    before = snapshot(tmp_path / "imgs")
    refused(_image_train(cli, tmp_path / "imgs", tmp_path / "m"), "z_odd.png", *needles)
    assert not (tmp_path / "m").exists() and snapshot(tmp_path / "imgs") == before


def test_image_empty_folder(cli, tmp_path):
    (tmp_path / "imgs").mkdir()
    refused(_image_train(cli, tmp_path / "imgs", tmp_path / "m"), "imgs", "no .png/.jpg/.jpeg images")
    assert not (tmp_path / "m").exists()


def test_image_sample_needs_png(cli, tmp_path):
    refused(
        cli("content", "image", "sample", "--model", tmp_path, "--out", tmp_path / "g.jpg"),
        "g.jpg",
        "expected a .png",
    )


def test_music_corrupt_midi(cli, tmp_path):
    (tmp_path / "midi").mkdir()
    (tmp_path / "midi" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    result = cli(
        "content", "music", "train", "--data", tmp_path / "midi", "--out", tmp_path / "m", "--max-steps", "2"
    )
    refused(result, "broken.mid", "not a readable MIDI file")
    assert not (tmp_path / "m").exists()


def test_music_empty_folder(cli, tmp_path):
    (tmp_path / "midi").mkdir()
    refused(
        cli("content", "music", "train", "--data", tmp_path / "midi", "--out", tmp_path / "m"),
        "midi",
        "no .mid",
    )
    assert not (tmp_path / "m").exists()


def test_music_generate_wrong_suffix(cli, tmp_path):
    result = cli(
        "content",
        "music",
        "generate",
        "--model",
        tmp_path,
        "--out",
        tmp_path / "p.mid",
        "--wav",
        tmp_path / "p.mp3",
    )
    refused(result, "p.mp3", "expected a .wav or .flac")
    assert not (tmp_path / "p.mid").exists()
