"""Progress bars are seen also when stderr is a log file or a pipe, as whole lines, not a flood."""

from __future__ import annotations

import io

import torch

from genforge.models.vae import VAE, VAEConfig
from genforge.training import TrainConfig, Trainer
from genforge.training.progress import LOG_INTERVAL, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_stream_gets_whole_lines_at_start_and_end_only_when_fast():
    stream = io.StringIO()
    with progress_bar(1000, "work", stream=stream) as bar:
        for _ in range(1000):
            bar.update(1)
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2, lines  # fast work: the opening and the closing line, nothing between
    assert lines[0].startswith("work:   0%")
    assert lines[-1].startswith("work: 100%") and "1000/1000" in lines[-1]
    assert LOG_INTERVAL >= 10  # a long step adds a line at most this often


def test_terminal_gets_the_redrawn_bar_and_disabled_bar_prints_nothing():
    terminal = FakeTerminal()
    with progress_bar(50, "work", stream=terminal) as bar:
        bar.update(50)
    assert "\r" in terminal.getvalue() and "50/50" in terminal.getvalue()
    quiet = io.StringIO()
    with progress_bar(50, "work", stream=quiet, enabled=False) as bar:
        bar.update(50)
    assert quiet.getvalue() == ""


def test_trainer_shows_progress_when_stderr_is_not_a_terminal(capsys):
    """The demo's long stages printed nothing under a pipe or in a log: tqdm's own default hid the bar."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(kind="mlp", in_features=8, latent_dim=2, hidden=(8,)))
    config = TrainConfig(max_steps=20, batch_size=16, device="cpu", val_every=None)
    Trainer(config).fit(model, torch.rand(64, 8))
    err = capsys.readouterr().err
    assert "train vae: 100%" in err and "20/20" in err
    Trainer(config, progress=False, seed=1).fit(model, torch.rand(64, 8))
    assert "train vae" not in capsys.readouterr().err
