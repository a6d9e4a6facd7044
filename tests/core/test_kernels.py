"""Native CPU kernels: they build where a compiler is, Winograd convolution equals conv2d, the UNet uses
it at batch 1 only, and everything falls back (with one warning) when the kernels cannot be built."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from genforge import kernels
from genforge.models.unet import Conv2d, ResnetBlock

needs_kernels = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler on this machine"
)


def _reference(x, w, b, residual=None):
    out = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=1)
    return out if residual is None else out + residual.double()


@needs_kernels
def test_kernels_build_where_a_compiler_is():
    assert kernels.available(), "a C++ compiler is present, so genforge_cpu must build"


@needs_kernels
@pytest.mark.parametrize(
    ("shape", "out_channels", "with_bias", "with_residual"),
    [
        ((1, 8, 7, 9), 5, True, False),  # odd sizes: the generic loops
        ((2, 16, 8, 8), 12, False, True),  # 4, 8 and 16 tiles a row: the fixed-width loops
        ((1, 4, 16, 16), 6, True, True),
        ((1, 4, 32, 32), 6, True, False),
        ((1, 3, 1, 2), 4, True, True),
    ],
)
def test_winograd_equals_conv2d(shape, out_channels, with_bias, with_residual):
    torch.manual_seed(0)
    x = torch.randn(shape)
    w = torch.randn(out_channels, shape[1], 3, 3)
    b = torch.randn(out_channels) if with_bias else None
    residual = torch.randn(shape[0], out_channels, *shape[2:]) if with_residual else None
    out = kernels.winograd_conv3x3(x, kernels.winograd_weights(w), b, residual)
    assert out.shape == (shape[0], out_channels, *shape[2:])
    torch.testing.assert_close(out.double(), _reference(x, w, b, residual), rtol=1e-5, atol=1e-5)


@needs_kernels
def test_unet_conv_uses_winograd_at_batch_one_only(monkeypatch):
    torch.manual_seed(0)
    conv = Conv2d(32, 32, kernel_size=3, padding=1)
    calls = []
    original = kernels.winograd_conv3x3
    monkeypatch.setattr(kernels, "winograd_conv3x3", lambda *a: calls.append(a[0].shape) or original(*a))

    def plain(x):
        return F.conv2d(x, conv.weight, conv.bias, padding=1)

    with torch.no_grad():
        one = torch.randn(1, 32, 16, 16)
        torch.testing.assert_close(conv(one), plain(one), rtol=1e-5, atol=1e-5)
        assert calls == [one.shape]
        conv(torch.randn(2, 32, 16, 16))  # batches keep oneDNN's direct convolution
        assert len(calls) == 1
        conv.weight.mul_(2.0)  # the cached Winograd weights follow an in-place update
        torch.testing.assert_close(conv(one), plain(one), rtol=1e-5, atol=1e-5)
    conv(one).sum().backward()  # autograd keeps the default path
    assert len(calls) == 2 and conv.weight.grad is not None


@needs_kernels
def test_resnet_block_fuses_its_residual_sum():
    torch.manual_seed(0)
    block = ResnetBlock(2, 32, 64, temb_dim=16, groups=8, eps=1e-5, dropout=0.0)
    x, temb = torch.randn(1, 32, 8, 8), torch.randn(1, 64)
    expected = block(x, temb)  # autograd on: plain convolutions and sums
    with torch.no_grad():
        torch.testing.assert_close(block(x, temb), expected.detach(), rtol=1e-5, atol=1e-5)


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    def broken() -> None:
        raise RuntimeError("Error building extension 'genforge_cpu'\nc++: not found")

    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(kernels, "_load", broken)
    with pytest.warns(RuntimeWarning, match=r"native CPU kernels unavailable \(c\+\+: not found\)"):
        assert kernels.available() is False
    assert kernels.available() is False  # decided once
    conv = Conv2d(8, 8, kernel_size=3, padding=1)
    x = torch.randn(1, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("GENFORGE_NATIVE_KERNELS", "0")
    monkeypatch.setattr(kernels, "_load", lambda: pytest.fail("must not build when switched off"))
    assert kernels.available() is False


@needs_kernels
def test_rows_linear_equals_linear():
    if not kernels.has_rows_linear():
        pytest.skip("no AVX-512 build of genforge_cpu here: the decode step keeps inductor's loop")
    torch.manual_seed(0)
    for rows in (1, 3, 8, 11):  # 11: one block of eight, then three
        for features, inputs in ((1152, 384), (65, 37), (3, 16)):  # odd feature counts, a 5-wide tail
            x, w, b = torch.randn(rows, inputs), torch.randn(features, inputs), torch.randn(features)
            torch.testing.assert_close(kernels.rows_linear(x, w, b), F.linear(x, w, b), rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(kernels.rows_linear(x, w, None), F.linear(x, w), rtol=1e-4, atol=1e-4)


@needs_kernels
def test_one_query_attention_equals_the_matmul_form():
    from genforge.models.transformer import attend_one_query

    torch.manual_seed(0)
    qkv = torch.randn(3, 1, 3, 2, 8)  # a strided q, as the decode step makes it
    q = qkv.permute(2, 0, 3, 1, 4)[0]
    k, v = torch.randn(3, 2, 12, 8), torch.randn(3, 2, 12, 8)
    for filled in (1, 5, 12):
        expected = attend_one_query(q, k[:, :, :filled], v[:, :, :filled])
        out = kernels.attend_one_query(q, k, v, torch.tensor([filled - 1]))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="position outside the cache"):
        kernels.attend_one_query(q, k, v, torch.tensor([12]))
