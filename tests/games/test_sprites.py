"""Sprites: Kenney data, the conditional sprite VAE, palette/alpha output, sheets, the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.games import SpriteDiffusion, SpriteVAE, kenney_sprites, read_sprite_folder, sprite_sheet


@pytest.fixture(scope="module")
def small():
    return kenney_sprites(16, ["enemies", "items"])


def test_kenney_sprites_load(small):
    images, labels, names = small
    assert images.shape[1:] == (4, 16, 16) and names == ["enemies", "items"]
    assert 0.0 <= images.min() and images.max() <= 1.0 and set(labels) == {0, 1}


def test_samples_use_the_palette_and_hard_alpha(small):
    images, labels, names = small
    vae = SpriteVAE(size=16, hidden=(8, 16), latent_dim=4, palette_size=8, max_steps=40)
    vae.fit(images, labels, names)
    out = vae.sample(6, "items", seed=1)
    assert set(np.unique(out[:, 3])) <= {0.0, 1.0}
    rgb = out[:, :3].transpose(0, 2, 3, 1)[out[:, 3] > 0]
    assert all(np.isclose(np.abs(vae.palette_ - px).sum(1), 0, atol=1e-5).any() for px in rgb[:50])
    sheet = sprite_sheet(out, columns=3, scale=2)
    assert sheet.size == (3 * 32, 2 * 32)
    with pytest.raises(DataError, match="expected one of enemies, items"):
        vae.sample(1, "bosses")


def test_training_lowers_the_loss(small):
    images, labels, names = small
    vae = SpriteVAE(size=16, hidden=(8, 16), latent_dim=4, max_steps=80).fit(images, labels, names)
    hist = vae.train_result_.history
    assert hist[-1]["loss"] < 0.9 * hist[0]["loss"]


def test_user_folder_needs_alpha(tmp_path):
    from PIL import Image

    (tmp_path / "heroes").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "heroes" / "a.png")
    with pytest.raises(DataError, match="a.png: mode RGB has no alpha channel"):
        read_sprite_folder(tmp_path)
    Image.new("RGBA", (8, 8)).save(tmp_path / "heroes" / "a.png")
    images, labels, names = read_sprite_folder(tmp_path, size=8)
    assert images.shape == (1, 4, 8, 8) and names == ["heroes"]


def test_sprite_metrics_see_copies_and_classes(small):
    from genforge.games.sprite_eval import sprite_metrics, train_classifier

    images, labels, _ = small
    clf = train_classifier(images, labels, steps=150)
    copies = sprite_metrics(clf, images, images, labels)
    assert copies["copies"] == len(images) and copies["fd"] < 1e-3 and copies["class_accuracy"] > 0.8
    noise = np.random.default_rng(0).random(images.shape, dtype=np.float32)
    scored = sprite_metrics(clf, images, noise, labels)
    assert scored["copies"] == 0 and scored["fd"] > 1.0


def test_balanced_indices_repeat_rare_classes():
    from genforge.games.sprites import balanced_indices

    labels = np.array([0] * 3 + [1] * 10 + [2] * 1)
    idx = balanced_indices(labels, seed=0)
    assert np.bincount(labels[idx]).tolist() == [10, 10, 10]
    assert set(idx[labels[idx] == 0]) == {0, 1, 2}


def test_sprite_diffusion_learns_and_outputs_pixel_art(small, tmp_path):
    from genforge.games.sprites import load_sprite_model

    images, labels, names = small
    model = SpriteDiffusion(
        size=16,
        base_channels=8,
        channel_mults=(1, 2),
        max_steps=60,
        batch_size=16,
        sample_steps=4,
        palette_size=8,
        ema_decay=None,
        lr=2e-3,
    )
    model.fit(images, labels, names)
    hist = model.train_result_.history
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"], (hist[0], hist[-1])
    out = model.sample(3, "enemies", seed=2, guidance_scale=2.0)
    assert out.shape == (3, 4, 16, 16) and set(np.unique(out[:, 3])) <= {0.0, 1.0}
    rgb = out[:, :3].transpose(0, 2, 3, 1)[out[:, 3] > 0]
    assert all(np.isclose(np.abs(model.palette_ - px).sum(1), 0, atol=1e-5).any() for px in rgb[:50])
    assert np.array_equal(out, model.sample(3, "enemies", seed=2, guidance_scale=2.0))
    with pytest.raises(DataError, match="expected one of enemies, items"):
        model.sample(1, "bosses")
    model.save(tmp_path / "diffusion")
    again = load_sprite_model(tmp_path / "diffusion")
    assert isinstance(again, SpriteDiffusion)
    assert np.array_equal(again.sample(3, "enemies", seed=2, guidance_scale=2.0), out)
    model.guidance_scale = (1.0, 3.0)  # one scale per class
    assert model.guidance_for("items") == 3.0
    assert np.array_equal(
        model.sample(2, "items", seed=4), model.sample(2, "items", seed=4, guidance_scale=3.0)
    )
    model.save(tmp_path / "per_class")
    assert load_sprite_model(tmp_path / "per_class").guidance_for("enemies") == 1.0
    model.guidance_scale = (1.0, 2.0, 3.0)
    with pytest.raises(DataError, match="3 values for 2 classes"):
        model.sample(1, "items")
    vae = SpriteVAE(size=16, hidden=(8, 16), latent_dim=4, max_steps=2).fit(images, labels, names)
    vae.save(tmp_path / "vae")
    assert isinstance(load_sprite_model(tmp_path / "vae"), SpriteVAE)


def test_guidance_is_the_smallest_scale_near_the_best_validation_accuracy(small):
    from genforge.games.sprite_eval import choose_guidance, train_classifier

    images, labels, _ = small
    clf = train_classifier(images, labels, steps=150)

    class Stub:  # right class from w = 2 on, the other class below
        def sample(self, n, c, seed=0, guidance_scale=1.0):
            want = c if guidance_scale >= 2 else 1 - c
            pool = images[labels == want]
            return pool[np.random.default_rng(seed).integers(0, len(pool), n)]

    w, acc = choose_guidance(Stub(), clf, 2, (1.0, 2.0, 4.0), n_per_class=8)
    assert w == 2.0 and acc["1.0"] < 0.5 < acc["2.0"]


def test_guidance_by_class_lets_a_harder_class_take_a_larger_scale(small):
    from genforge.games.sprite_eval import choose_guidance_by_class, train_classifier

    images, labels, _ = small
    clf = train_classifier(images, labels, steps=150)

    class Stub:  # class 0 right from w = 2 on, class 1 only from w = 4
        def sample(self, n, c, seed=0, guidance_scale=1.0):
            want = c if guidance_scale >= (2 if c == 0 else 4) else 1 - c
            pool = images[labels == want]
            return pool[np.random.default_rng(seed).integers(0, len(pool), n)]

    w, acc, by_class, per_class = choose_guidance_by_class(Stub(), clf, 2, (1.0, 2.0, 4.0), n_per_class=8)
    assert per_class == (2.0, 4.0) and w == 4.0
    assert by_class["2.0"][0] > 0.5 > by_class["2.0"][1]


def _halves(n: int = 24, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two easy classes: opaque top half vs opaque bottom half, random colours."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 4, size, size), np.float32)
    labels = np.arange(n) % 2
    for i, c in enumerate(labels):
        rows = slice(0, size // 2) if c == 0 else slice(size // 2, size)
        images[i, 3, rows] = 1.0
        images[i, :3, rows] = rng.random((3, 1, 1))
    return images, labels


def test_folds_are_stratified():
    from genforge.games.sprite_eval import folds_of

    labels = np.array([0] * 19 + [1] * 150 + [2] * 5)
    fold = folds_of(labels, 4, seed=3)
    for c in range(3):
        counts = np.bincount(fold[labels == c], minlength=4)
        assert counts.max() - counts.min() <= 1, (c, counts)


def test_augment_keeps_alpha_hard_and_values_in_range():
    import torch

    from genforge.games.sprite_eval import augment

    images, _ = _halves(8)
    x = torch.from_numpy(images)
    out = augment(x)
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert set(torch.unique(out[:, 3]).tolist()) <= {0.0, 1.0}
    # a shift of up to 2 pixels each way moves at most 2 rows (2 x 16) and 2 columns (2 x 8) of the
    # opaque half (8 x 16) out of the frame
    assert (out[:, 3].sum((1, 2)) >= x[:, 3].sum((1, 2)) - 2 * 16 - 2 * 8).all()
    assert not torch.equal(augment(x), augment(x))  # random


def test_cross_fitted_judge_reports_held_out_accuracy_by_class():
    from genforge.games.sprite_eval import predict, sprite_metrics, train_judge

    images, labels = _halves(24)
    judge = train_judge(images, labels, ["top", "bottom"], folds=2, seeds=1, steps=60, seed=0)
    assert len(judge.members) == 2 and judge.held_out["members"] == 2
    assert set(judge.held_out["by_class"]) == {"top", "bottom"}
    assert judge.held_out["accuracy"] > 0.9, judge.held_out  # easy classes, each judged out of fold
    assert (predict(judge, images) == labels).mean() > 0.9
    scored = sprite_metrics(judge, images, images[::-1].copy(), labels[::-1].copy(), ["top", "bottom"])
    assert scored["class_accuracy_by_class"]["top"] > 0.9 and scored["copies"] == len(images)
    swapped = sprite_metrics(judge, images, images, 1 - labels, ["top", "bottom"])
    assert swapped["class_accuracy"] < 0.1


def test_evaluate_sprites_command_leaves_diffusion_steps_to_the_model(monkeypatch):
    import inspect

    import genforge.games.sprite_eval as sprite_eval
    from genforge.cli import main

    assert inspect.signature(sprite_eval.evaluate_sprites).parameters["diffusion_steps"].default is None
    seen = {}
    monkeypatch.setattr(sprite_eval, "evaluate_sprites", lambda **kw: seen.update(kw) or {"ok": 1})
    assert main(["games", "evaluate-sprites", "--seed", "3"]) == 0
    assert seen["diffusion_steps"] is None and seen["seed"] == 3
