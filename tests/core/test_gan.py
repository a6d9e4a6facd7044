"""GAN: shapes for every kind and loss (odd sizes included), loss and gradient-penalty maths, TCN
causality, registry round trip, and small GANs trained through the Trainer that must actually learn."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genforge.errors import DataError
from genforge.models.gan import GAN, GANConfig
from genforge.registry import build_model, config_to_dict
from genforge.training import TrainConfig, Trainer

SPANS = ((2, "tanh"), (3, "softmax"), (1, "linear"))
CASES = [
    GANConfig(kind="sequence", channels=3, length=24, hidden=(16,)),
    GANConfig(kind="sequence", channels=2, length=13, hidden=(16,), cond_dim=2, loss="hinge",
              spectral_norm=True),
    GANConfig(kind="sequence", channels=2, length=10, seq_arch="gru", hidden=(16, 16), cond_dim=2, loss="ns"),
    GANConfig(kind="sequence", channels=1, length=9, seq_arch="gru", hidden=(8,)),
    GANConfig(kind="image", channels=1, image_size=(8, 8), hidden=(16, 32), loss="hinge"),
    GANConfig(kind="image", channels=3, image_size=(13, 7), hidden=(8, 16), cond_dim=4, spectral_norm=True),
    GANConfig(kind="image", channels=1, image_size=(28, 28), hidden=(8, 16), loss="ns"),
    GANConfig(kind="tabular", in_features=6, output_spans=SPANS, pac=2, hidden=(32, 32)),
    GANConfig(kind="tabular", in_features=3, cond_dim=2, spectral_norm=True, loss="ns", hidden=(16,)),
]


def data_shape(cfg: GANConfig) -> tuple[int, ...]:
    return {
        "sequence": (cfg.length, cfg.channels),
        "image": (cfg.channels, *cfg.image_size),
        "tabular": (cfg.in_features,),
    }[cfg.kind]


def make_batch(cfg: GANConfig, n: int = 6):
    x = torch.randn(n, *data_shape(cfg))
    return (x, torch.randn(n, cfg.cond_dim)) if cfg.cond_dim else x


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.kind}-{c.seq_arch}-{c.loss}-c{c.cond_dim}")
def test_shapes_and_losses_every_kind(cfg):
    torch.manual_seed(0)
    model = GAN(cfg)
    batch = make_batch(cfg)
    d = model.discriminator_loss(batch)
    assert d["loss"].dim() == 0 and torch.isfinite(d["loss"])
    assert ("gp" in d) == (cfg.loss == "wgan-gp")
    d["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters()), "fake must be detached in D loss"
    model.zero_grad()
    g = model.generator_loss(batch)
    g["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    cond = torch.randn(4, cfg.cond_dim) if cfg.cond_dim else None
    assert model.sample(4, cond).shape == (4, *data_shape(cfg))
    if cfg.kind == "sequence":
        assert model.sample(3, None if cond is None else cond[:3], length=31).shape == (3, 31, cfg.channels)
    if cfg.kind == "image":
        assert model.sample(4, cond).abs().max() <= 1.0
    assert model.generator.training, "sample() restores the generator's mode"


def test_discriminator_has_no_batchnorm():
    for cfg in CASES:
        modules = GAN(cfg).discriminator.modules()
        assert not [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)], cfg


def test_spectral_norm_wraps_discriminator_weights():
    model = GAN(GANConfig(kind="image", channels=1, image_size=(8, 8), hidden=(8, 16), spectral_norm=True))
    wrapped = [m for m in model.discriminator.modules() if hasattr(m, "parametrizations")]
    assert len(wrapped) == 3  # two convs and the linear head
    plain = GAN(GANConfig(kind="image", channels=1, image_size=(8, 8), hidden=(8, 16)))
    assert not any(hasattr(m, "parametrizations") for m in plain.discriminator.modules())


def test_tabular_spans_and_hard_samples():
    torch.manual_seed(0)
    model = GAN(GANConfig(kind="tabular", in_features=6, output_spans=SPANS, hidden=(16,)))
    soft = model.generate(32, None)  # training-time: gumbel-softmax, not one-hot
    assert soft[:, :2].abs().max() <= 1.0
    torch.testing.assert_close(soft[:, 2:5].sum(1), torch.ones(32))
    assert ((soft[:, 2:5] > 0) & (soft[:, 2:5] < 1)).any()
    hard = model.sample(32)
    assert set(hard[:, 2:5].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(hard[:, 2:5].sum(1), torch.ones(32))
    with pytest.raises(ValueError, match="sum to"):
        GANConfig(kind="tabular", in_features=5, output_spans=SPANS)


class LinearCritic(nn.Module):
    """D(x) = <w, packed x>: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor, pac: int):
        super().__init__()
        self.w, self.pac = w, pac

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return x.reshape(x.shape[0] // self.pac, -1) @ self.w


def test_gradient_penalty_of_a_linear_critic_is_exact():
    """For a linear critic GP = (||w|| - 1)^2 exactly (per packed group with pac > 1)."""
    for pac in (1, 3):
        model = GAN(GANConfig(kind="tabular", in_features=4, hidden=(8,), pac=pac))
        w = torch.randn(4 * pac)
        model.discriminator = LinearCritic(w, pac)
        gp = model.gradient_penalty(torch.randn(6, 4), torch.randn(6, 4), None)
        torch.testing.assert_close(gp, (w.norm() - 1) ** 2)


@pytest.mark.parametrize("loss,expected", [("ns", 2 * math.log(2)), ("hinge", 2.0)])
def test_loss_values_for_an_indifferent_critic(loss, expected):
    model = GAN(GANConfig(kind="tabular", in_features=2, hidden=(8,), loss=loss))
    nn.init.zeros_(model.discriminator.net[-1].weight)
    nn.init.zeros_(model.discriminator.net[-1].bias)
    x = torch.randn(8, 2)
    torch.testing.assert_close(model.discriminator_loss(x)["loss"], torch.tensor(expected))
    g_expected = math.log(2) if loss == "ns" else 0.0
    torch.testing.assert_close(model.generator_loss(x)["loss"], torch.tensor(g_expected))


def test_tcn_generator_is_causal_and_covers_the_length():
    torch.manual_seed(0)
    model = GAN(GANConfig(kind="sequence", channels=2, length=40, hidden=(8,))).eval()
    assert model.generator.net.receptive_field >= 40
    z = model.noise(2, 40)
    z2 = z.clone()
    z2[:, 25:] = torch.randn_like(z2[:, 25:])
    a, b = model.generator(z), model.generator(z2)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])
    z3 = z.clone()
    z3[:, 0] += 1.0
    assert not torch.allclose(model.generator(z3)[:, -1], a[:, -1]), "last step must see the first"


@pytest.mark.parametrize("cfg", [CASES[1], CASES[5], CASES[7]], ids=["sequence", "image", "tabular"])
def test_registry_round_trip(cfg):
    torch.manual_seed(0)
    model = GAN(cfg)
    rebuilt = build_model("gan", config_to_dict(cfg))
    assert type(rebuilt) is GAN and rebuilt.config == cfg
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    x = make_batch(cfg)
    x, cond = (x if isinstance(x, tuple) else (x, None))
    torch.testing.assert_close(rebuilt.discriminator(x, cond), model.discriminator(x, cond))
    z = model.noise(4, None)
    c4 = None if cond is None else cond[:4]
    torch.manual_seed(1)  # softmax spans draw Gumbel noise
    expected = model.generator(z, c4)
    torch.manual_seed(1)
    torch.testing.assert_close(rebuilt.generator(z, c4), expected)


def test_bad_inputs_raise_data_errors():
    model = GAN(GANConfig(kind="image", channels=1, image_size=(8, 8), hidden=(8,)))
    with pytest.raises(DataError, match="expected shape"):
        model.discriminator_loss(torch.randn(4, 1, 8, 9))
    with pytest.raises(DataError, match="cond_dim=0"):
        model.sample(2, torch.randn(2, 3))
    cmodel = GAN(GANConfig(kind="tabular", in_features=2, cond_dim=2, pac=4, hidden=(8,)))
    with pytest.raises(DataError, match="needs a condition"):
        cmodel.sample(2)
    with pytest.raises(DataError, match="smaller than pac"):
        cmodel.discriminator_loss((torch.randn(3, 2), torch.randn(3, 2)))


def fit_gan(model: GAN, data, steps: int, lr: float) -> None:
    """Train through the engine's adversarial loop (n_critic critic updates per generator update,
    a fresh batch of 64 for each), as users and suites do; no gradient clipping."""
    config = TrainConfig(max_steps=steps, batch_size=64, lr=lr, betas=(0.5, 0.9), grad_clip=None,
                         val_every=None, device="cpu", progress=False, seed=0)
    result = Trainer(config).fit(model, data)
    assert result.steps == steps and "d_loss" in result.history[-1] and "g_loss" in result.history[-1]


def test_wgan_gp_moves_samples_to_a_2d_gaussian():
    torch.manual_seed(0)
    mean, std = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.3])
    model = GAN(GANConfig(kind="tabular", in_features=2, hidden=(32, 32), latent_dim=4, n_critic=5))
    before = model.sample(1000)
    fit_gan(model, mean + std * torch.randn(8192, 2), steps=200, lr=1e-3)
    after = model.sample(1000)
    dist_before, dist_after = (before.mean(0) - mean).norm(), (after.mean(0) - mean).norm()
    assert dist_after < 0.5 * dist_before, (dist_before, dist_after)
    # the untrained generator is nearly a point (std ~0.07); trained, it spreads like the data
    assert before.std(0).max() < 0.15 and (after.std(0) > 0.15).all() and (after.std(0) < 1.2).all(), (
        before.std(0),
        after.std(0),
    )


@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_conditional_gan_learns_each_condition(loss):
    torch.manual_seed(0)
    centers = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])

    model = GAN(GANConfig(kind="tabular", in_features=2, cond_dim=2, hidden=(32, 32), latent_dim=4,
                          n_critic=1, loss=loss))
    c = torch.randint(0, 2, (8192,))
    data = (centers[c] + 0.3 * torch.randn(8192, 2), F.one_hot(c, 2).float())
    fit_gan(model, data, steps=300, lr=1e-3)
    for k in range(2):
        got = model.sample(500, torch.eye(2)[k].expand(500, -1)).mean(0)
        assert (got - centers[k]).norm() < 0.6, (k, got)


def test_pac_critic_learns_category_frequencies():
    """Mixed columns (one numeric, one 3-way categorical via a softmax span), PacGAN critic with pac=4."""
    torch.manual_seed(0)
    probs = torch.tensor([0.6, 0.3, 0.1])

    model = GAN(GANConfig(kind="tabular", in_features=4, output_spans=((1, "linear"), (3, "softmax")),
                          hidden=(32, 32), latent_dim=8, n_critic=2, pac=4))
    k = torch.multinomial(probs, 8192, replacement=True)
    value = torch.tensor([-1.0, 0.0, 2.0])[k] + 0.2 * torch.randn(8192)
    data = torch.cat([value[:, None], F.one_hot(k, 3).float()], 1)
    tv_before = 0.5 * (model.sample(2000)[:, 1:].mean(0) - probs).abs().sum()
    fit_gan(model, data, steps=300, lr=1e-3)
    tv_after = 0.5 * (model.sample(2000)[:, 1:].mean(0) - probs).abs().sum()
    assert tv_after < 0.1 and tv_after < tv_before, (tv_before, tv_after)


def test_checkpoint_round_trip_with_spectral_norm(tmp_path):
    """genforge.save / load (safetensors + JSON) keeps the spectral-norm parametrisation's state."""
    import genforge

    torch.manual_seed(0)
    model = GAN(CASES[5])
    model.discriminator_loss(make_batch(CASES[5]))  # one power iteration updates the u/v buffers
    genforge.save(model, tmp_path)
    loaded = genforge.load(tmp_path)
    assert loaded.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_tcn_sequence_gan_learns_per_sequence_levels():
    """Each real sequence sits at level -1 or +1 with small noise: the generator must place whole
    sequences at a level (sequence-level noise) and keep them flat (not independent steps)."""
    torch.manual_seed(0)

    model = GAN(GANConfig(kind="sequence", channels=1, length=16, hidden=(16,), latent_dim=4, n_critic=1,
                          loss="ns"))  # init from seed 0 (some inits collapse)
    level = torch.randint(0, 2, (4096, 1, 1)).float() * 2 - 1
    data = level + 0.1 * torch.randn(4096, 16, 1)
    fit_gan(model, data, steps=200, lr=1e-3)
    s = model.sample(500)
    levels, wiggle = s.mean(1), s.std(1).mean()
    assert (levels.abs() > 0.5).float().mean() > 0.85, levels.abs().mean()
    assert wiggle < 0.25, wiggle
    assert 0.6 < levels.std() < 1.4, levels.std()


def _critic_weights(module: nn.Module) -> list[nn.Module]:
    targets = (nn.Linear, nn.Conv1d, nn.Conv2d)
    return [m for m in module.modules() if isinstance(m, targets)]


def test_every_critic_asked_for_spectral_norm_has_it():
    """Core critics of every kind and the finance GANs' own critics (built through build_critic):
    with spectral_norm=True every Linear/Conv weight of the critic is spectrally normalised."""
    from torch.nn.utils import parametrize

    from genforge.finance.loans.models import LoanGAN, LoanGANConfig
    from genforge.finance.scenarios.models import ScenarioNet, ScenarioNetConfig

    models = [
        GAN(GANConfig(kind="sequence", channels=2, length=12, hidden=(8,), spectral_norm=True)),
        GAN(GANConfig(kind="image", channels=1, image_size=(8, 8), hidden=(8, 16), spectral_norm=True)),
        GAN(GANConfig(kind="tabular", in_features=3, hidden=(8,), pac=2, spectral_norm=True)),
        ScenarioNet(ScenarioNetConfig(kind="sequence", channels=2, length=12, hidden=(8,),
                                      increment_scale=(3.0, 4.0), spectral_norm=True)),
        LoanGAN(LoanGANConfig(kind="tabular", in_features=5, cond_dim=2, hidden=(8,), hidden_d=(16, 4),
                              dropout_d=0.5, pac=2, spectral_norm=True)),
    ]
    for model in models:
        layers = _critic_weights(model.discriminator)
        assert layers, type(model).__name__
        unnormed = [m for m in layers if not parametrize.is_parametrized(m, "weight")]
        assert not unnormed, (type(model).__name__, unnormed)
    # the finance critics are their own (wider input, own widths), not the core default
    assert models[3].discriminator.net.inp.in_channels == 4
    assert [m.out_features for m in _critic_weights(models[4].discriminator)] == [16, 4, 1]
