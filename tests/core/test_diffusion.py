"""Diffusion model and UNets: shapes (1-D, 2-D, odd sizes), conditioning, classifier-free guidance,
samplers, the registry, equivalence with diffusers' UNet2DModel, and a small learning test on real
digits (scikit-learn's 8x8 digits)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genforge.models.diffusion import Diffusion, DiffusionConfig
from genforge.models.schedulers import DDPMScheduler
from genforge.models.unet import Attention, Conv2d, UNet, UNetConfig, Upsample, conv2d_onednn
from genforge.registry import build_model, config_to_dict


def tiny(**kw) -> Diffusion:
    base = dict(
        dims=2,
        channels=1,
        image_size=(8, 8),
        base_channels=16,
        channel_mults=(1, 2),
        layers_per_block=1,
        attention_levels=(1,),
        attention_head_dim=8,
        norm_groups=8,
    )
    base.update(kw)
    torch.manual_seed(0)
    return Diffusion(DiffusionConfig(**base))


@pytest.mark.parametrize(
    "dims,shape,mults,attn",
    [
        (2, (3, 28, 28), (1, 2, 2), (1,)),
        (2, (1, 7, 10), (1, 2, 2), (0, 2)),
        (1, (2, 24), (1, 2), (1,)),
        (1, (1, 15), (1, 1, 2), ()),
    ],
)
def test_unet_keeps_the_input_shape(dims: int, shape: tuple, mults: tuple, attn: tuple) -> None:
    cfg = UNetConfig(
        dims=dims,
        in_channels=shape[0],
        out_channels=shape[0],
        block_out_channels=tuple(16 * m for m in mults),
        layers_per_block=1,
        attention_levels=attn,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    net = UNet(cfg)
    x = torch.randn(2, *shape)
    assert net(x, torch.tensor([3, 700])).shape == x.shape
    assert net(x, 5).shape == x.shape


@pytest.mark.parametrize("dims,shape", [(1, (2, 8, 9)), (2, (2, 8, 5, 6))])
def test_phase_upsample_equals_nearest_upsample_then_conv(dims: int, shape: tuple) -> None:
    up = Upsample(dims, shape[1])
    x = torch.randn(*shape)
    for _ in range(2):  # second round: the cached fused weight must follow a weight update
        expected = up.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        with torch.no_grad():
            torch.testing.assert_close(up(x), expected, rtol=1e-5, atol=1e-5)
            up.conv.weight.mul_(-0.5)


def test_fused_qkv_attention_equals_the_autograd_path_and_follows_weight_updates() -> None:
    att = Attention(channels=16, head_dim=8, groups=4, eps=1e-5, dropout=0.0)
    x = torch.randn(2, 16, 4, 5)
    for _ in range(2):  # second round: the cached fused q/k/v weight must follow an in-place update
        expected = att(x)  # autograd on: three separate projections
        with torch.no_grad():
            torch.testing.assert_close(att(x.clone()), expected, rtol=1e-5, atol=1e-5)
            att.to_v.weight.mul_(-0.5)
            att.to_q.bias.add_(0.3)


def test_single_image_conv_goes_to_onednn_only_when_large_and_equals_the_default_path() -> None:
    torch.manual_seed(0)
    conv = Conv2d(128, 128, kernel_size=3, padding=1)
    x = torch.randn(1, 128, 8, 8)  # 9.4M multiply-adds at batch 1: ATen would take im2col + GEMM
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        assert conv._use_onednn(x) == torch.backends.mkldnn.is_available()
        torch.testing.assert_close(conv(x), expected, rtol=1e-4, atol=1e-4)
        channels_last = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(conv(channels_last), expected, rtol=1e-4, atol=1e-4)
        assert not conv._use_onednn(torch.randn(2, 128, 8, 8))  # batches: ATen already uses oneDNN
        assert not conv._use_onednn(torch.randn(1, 128, 4, 4))  # small: im2col + GEMM is faster
        assert not Conv2d(128, 128, kernel_size=1)._use_onednn(x)
    assert not conv._use_onednn(x)  # autograd on: the default path
    out = conv(x)
    out.sum().backward()
    assert conv.weight.grad is not None


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
def test_onednn_conv_op_has_a_correct_fake_kernel_for_compiled_graphs() -> None:
    """The custom op a compiled UNet calls: torch.library's checks (fake kernel shapes, schema) and a
    traced graph (dynamo + fake tensors, no code generation) that gives the eager result."""
    torch.manual_seed(0)
    for stride in (1, 2):
        x, w, b = torch.randn(1, 8, 7, 6), torch.randn(16, 8, 3, 3), torch.randn(16)
        torch.library.opcheck(conv2d_onednn, (x, w, b, [1, 1], [stride, stride]))
        expected = F.conv2d(x, w, b, stride=stride, padding=1)
        got = conv2d_onednn(x, w, b, [1, 1], [stride, stride])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    conv = Conv2d(128, 128, kernel_size=3, padding=1)
    x = torch.randn(1, 128, 8, 8)
    targets: list[str] = []

    def record(gm, example_inputs):  # a torch.compile backend that only looks at the graph
        targets.extend(str(node.target) for node in gm.graph.nodes)
        return gm.forward

    with torch.no_grad():
        traced = torch.compile(conv, backend=record, fullgraph=True)
        expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
        torch.testing.assert_close(traced(x), expected, rtol=1e-4, atol=1e-4)
    assert any("conv2d_onednn" in t for t in targets), targets


def test_time_projections_equal_each_block_projection_and_train_each_block() -> None:
    net = UNet(UNetConfig(block_out_channels=(16, 32), attention_levels=(1,), norm_num_groups=8))
    temb = torch.randn(3, 64)
    blocks = net._resnets()
    got = net.time_projections(temb)
    assert len(got) == len(blocks) == 2 * 2 + 2 + 2 * 3
    for r, p in zip(blocks, got, strict=True):
        torch.testing.assert_close(p, r.time_emb_proj(temb))
    sum(p.square().sum() for p in got).backward()
    assert all(r.time_emb_proj.weight.grad is not None for r in blocks)
    with torch.no_grad():  # cached stacked weights follow an in-place update
        first = net.time_projections(temb)[0].clone()
        blocks[0].time_emb_proj.bias.add_(1.0)
        torch.testing.assert_close(net.time_projections(temb)[0], first + 1.0)


def test_unet_built_under_inference_mode_samples() -> None:
    """Parameters created under inference_mode have no version counter: the weight caches must cope."""
    with torch.inference_mode():
        net = UNet(UNetConfig(block_out_channels=(32, 32), attention_levels=(1,), norm_num_groups=8))
        x = torch.randn(2, 1, 8, 8)
        assert net(x, torch.tensor([3, 700])).shape == x.shape


def test_unet_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(UNetConfig(block_out_channels=(32, 64), attention_levels=(2,)))
    with pytest.raises(ValueError, match="norm_num_groups"):
        UNet(UNetConfig(block_out_channels=(20,), norm_num_groups=8))
    with pytest.raises(ValueError, match="attention_head_dim"):
        UNet(UNetConfig(block_out_channels=(32,), attention_levels=(0,), attention_head_dim=24))


def test_unet_matches_diffusers_unet2dmodel_with_the_same_weights() -> None:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    theirs = diffusers.UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=16,
        norm_num_groups=16,
        num_class_embeds=5,
    ).eval()
    ours = UNet(
        UNetConfig(
            in_channels=3,
            out_channels=3,
            block_out_channels=(32, 64, 64),
            attention_levels=(1,),
            attention_head_dim=16,
            norm_num_groups=16,
            num_classes=4,
        )
    ).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x, labels = torch.randn(3, 3, 16, 16), torch.tensor([0, 3, 4])
    with torch.no_grad():
        expected = theirs(x, 321, class_labels=labels).sample
        torch.testing.assert_close(ours(x, 321, class_labels=labels), expected, rtol=1e-4, atol=1e-5)
        cl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(ours(cl, 321, class_labels=labels), expected, rtol=1e-4, atol=1e-5)
        for one in (x[1:2], cl[1:2]):  # one image: the single-image convolution paths (Winograd, oneDNN)
            out = ours(one, 321, class_labels=labels[1:2])
            torch.testing.assert_close(out, expected[1:2], rtol=1e-4, atol=1e-5)


def test_registry_and_config_round_trip() -> None:
    model = tiny(num_classes=3, cfg_dropout=0.1, prediction="v", schedule="cosine")
    assert model.family == "diffusion"
    rebuilt = build_model("diffusion", config_to_dict(model.config))
    assert rebuilt.config == model.config
    assert set(rebuilt.state_dict()) == set(model.state_dict())


def test_save_and_load_round_trip(tmp_path) -> None:
    import genforge

    model = tiny(num_classes=3, prediction="v", schedule="cosine").eval()
    genforge.save(model, tmp_path / "ckpt")
    loaded = genforge.load(tmp_path / "ckpt")
    assert isinstance(loaded, Diffusion) and loaded.config == model.config
    labels = torch.tensor([0, 2])
    a = model.sample(2, steps=3, cond=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    b = loaded.sample(2, steps=3, cond=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("cond_kind", ["none", "classes", "vector"])
def test_training_loss_is_a_differentiable_scalar(prediction: str, cond_kind: str) -> None:
    kw = {"none": {}, "classes": {"num_classes": 3}, "vector": {"cond_dim": 4}}[cond_kind]
    model = tiny(prediction=prediction, cfg_dropout=0.2 if kw else 0.0, **kw)
    x = torch.randn(6, 1, 8, 8)
    batch = {"none": x, "classes": (x, torch.randint(0, 3, (6,))), "vector": (x, torch.randn(6, 4))}[
        cond_kind
    ]
    out = model.training_loss(batch)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.unet.conv_in.weight.grad is not None


def test_training_loss_rejects_wrong_shape_and_missing_condition() -> None:
    with pytest.raises(ValueError, match="expected x of shape"):
        tiny().training_loss(torch.randn(2, 1, 9, 8))
    with pytest.raises(ValueError, match="conditional"):
        tiny(num_classes=2).training_loss(torch.randn(2, 1, 8, 8))


def test_cfg_dropout_trains_the_null_condition() -> None:
    x, labels = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    for dropout, expect_grad in [(0.0, False), (0.5, True)]:
        model = tiny(num_classes=3, cfg_dropout=dropout)
        model.training_loss((x, labels))["loss"].backward()
        null_grad = model.unet.class_embedding.weight.grad[3]
        assert bool(null_grad.abs().sum() > 0) == expect_grad
    model = tiny(cond_dim=2, cfg_dropout=0.5)
    model.training_loss((x, torch.randn(64, 2)))["loss"].backward()
    assert model.unet.null_cond.grad.abs().sum() > 0


@pytest.mark.parametrize("cond_kind", ["classes", "vector"])
def test_guidance_scale_one_is_the_conditional_prediction(cond_kind: str) -> None:
    model = tiny(num_classes=3) if cond_kind == "classes" else tiny(cond_dim=2)
    for p in model.unet.parameters():  # make the null embedding differ from every real condition
        torch.nn.init.normal_(p, std=0.05) if p.ndim == 1 else None
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    cond = torch.tensor([0, 1, 2, 1]) if cond_kind == "classes" else torch.randn(4, 2)
    kw = {"class_labels": cond} if cond_kind == "classes" else {"cond": cond}
    with torch.no_grad():
        c = model.unet(x, 400, **kw)
        u = model.unet(x, 400, drop=torch.ones(4, dtype=torch.bool), **kw)
        assert (c - u).abs().max() > 1e-4
        torch.testing.assert_close(model.predict(x, 400, cond, guidance_scale=1.0), c)
        torch.testing.assert_close(model.predict(x, 400, cond, guidance_scale=0.0), u, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            model.predict(x, 400, cond, guidance_scale=3.0), u + 3 * (c - u), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_sample_shapes_any_step_count(sampler: str, steps: int) -> None:
    model = tiny()
    out = model.sample(3, steps=steps, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 8, 8) and torch.isfinite(out).all()


def test_ddim_eta0_is_deterministic_and_a_scheduler_object_can_be_passed() -> None:
    model = tiny(num_classes=2)
    labels = torch.tensor([0, 1])
    a = model.sample(2, steps=5, cond=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(3))
    b = model.sample(2, steps=5, cond=labels, guidance_scale=2.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    c = model.sample(
        2, steps=5, sampler=DDPMScheduler(1000), cond=labels, generator=torch.Generator().manual_seed(3)
    )
    assert c.shape == a.shape and not torch.allclose(a, c)


def test_one_dimensional_model_samples_other_lengths() -> None:
    model = tiny(dims=1, channels=2, length=16)
    assert model.training_loss(torch.randn(4, 2, 16))["loss"].isfinite()
    assert model.sample(2, steps=2).shape == (2, 2, 16)
    assert model.sample(2, steps=2, length=32).shape == (2, 2, 32)


def _digits() -> torch.Tensor:
    datasets = pytest.importorskip("sklearn.datasets")
    images = datasets.load_digits().images.astype("float32")
    return torch.from_numpy(images / 8.0 - 1.0).unsqueeze(1)  # [1797, 1, 8, 8] in [-1, 1]


def test_training_moves_samples_toward_the_digit_distribution() -> None:
    """200 Adam steps on real 8x8 digits: the samples' mean image and pixel quantiles get much closer to
    the data's than those of the untrained model and of plain Gaussian noise."""
    torch.manual_seed(0)
    data = _digits()
    model = tiny(base_channels=32, channel_mults=(1, 2), layers_per_block=1, attention_levels=())
    q = torch.linspace(0.05, 0.95, 19)
    data_q = torch.quantile(data.flatten(), q)

    def distance(s: torch.Tensor) -> tuple[float, float]:
        mean_gap = (s.mean(0) - data.mean(0)).pow(2).mean().item()
        return mean_gap, (torch.quantile(s.flatten(), q) - data_q).abs().mean().item()

    def samples() -> torch.Tensor:
        return model.sample(256, steps=20, generator=torch.Generator().manual_seed(1))

    noise = distance(torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(2)))
    before = distance(samples())
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(200):
        idx = torch.randint(0, len(data), (64,), generator=g)
        loss = model.training_loss(data[idx])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = distance(samples())
    assert loss.item() < 0.3
    for k in range(2):
        assert after[k] < 0.3 * min(before[k], noise[k]), (before, noise, after)


def test_compiled_sampling_passes_tensor_timesteps_and_matches_eager(monkeypatch) -> None:
    """``sample(compile=True)`` wraps the UNet once (outside the module tree) and hands it 0-d tensor
    timesteps, so one graph serves every step; the UNet gives the same output for either form. The
    wrapper stands in for ``torch.compile`` (a real compile takes minutes; benchmarks/ddim.py runs it)."""
    model = tiny(num_classes=2)
    seen: list[object] = []

    def fake_compile(module, **kwargs):
        assert kwargs.get("dynamic") is False and kwargs["options"] == {"layout_optimization": False}
        return lambda x, t, **kw: (seen.append(t), module(x, t, **kw))[1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    labels = torch.tensor([0, 1])
    kw = dict(steps=4, cond=labels, guidance_scale=2.0)
    eager = model.sample(2, generator=torch.Generator().manual_seed(3), **kw)
    compiled = model.sample(2, generator=torch.Generator().manual_seed(3), compile=True, **kw)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
    assert len(seen) == 4 and all(torch.is_tensor(t) and t.ndim == 0 for t in seen)
    assert model.compiled_unet() is model.compiled_unet()
    assert not any(k.startswith("_compiled") for k in model.state_dict())
