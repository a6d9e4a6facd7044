"""The Content page: with saved models it streams text and samples an image grid without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "views" / "content.py"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from genforge.content import ImageGenerator, TextGenerator, sklearn_digits

    root = tmp_path_factory.mktemp("content-models")
    TextGenerator(
        n_layer=1, n_head=2, n_embd=16, block_size=16, max_steps=5, progress=False, device="cpu"
    ).fit("To be, or not to be: that is the question.\n" * 20).save(root / "text")
    digits = sklearn_digits()
    ImageGenerator(
        base_channels=8, channel_mults=(1, 2), attention=False, max_steps=2, progress=False, device="cpu"
    ).fit(digits.x[:64], digits.y[:64]).save(root / "image")
    return root


def test_page_generates_text_and_images(models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GENFORGE_CONTENT_MODELS", str(models))
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="text_go").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    at.button(key="image_go").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    kinds = {type(e).__name__ + ":" + getattr(e, "type", "") for e in at.main}
    assert any("image" in k or "imgs" in k for k in kinds), kinds


def test_page_reports_a_foreign_model_folder(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "config.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "text" / "model.safetensors").write_bytes(b"junk")
    monkeypatch.setenv("GENFORGE_CONTENT_MODELS", str(tmp_path))
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception and at.error, "a corrupt model folder must be a message on the page"
