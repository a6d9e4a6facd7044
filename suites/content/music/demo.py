"""The music part of ``genforge content demo``: a small event GPT on a few of music21's Bach chorales,
one generated piece as MIDI and WAV, and its statistics against the training pieces."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def music_demo(out_dir: Path, quick: bool) -> dict[str, Any]:
    from genforge.content.music.data import encode, read_chorales
    from genforge.content.music.evaluate import sample_statistics
    from genforge.content.music.export import write_audio, write_midi
    from genforge.content.music.models import MusicGenerator

    pieces = read_chorales(limit=4 if quick else 60)
    size = dict(n_layer=1, n_head=2, n_embd=48, block_size=64) if quick else {}
    est = MusicGenerator(max_steps=50 if quick else 1500, progress=not quick, device="cpu", **size).fit(
        pieces[1:]
    )
    est.save(out_dir / "model")
    held_out = pieces[0]
    total, count = est.nll(encode(held_out.grid))
    piece = est.generate(seconds=8 if quick else 30, seed=0)
    write_midi(piece, out_dir / "piece.mid")
    write_audio(piece, out_dir / "piece.wav")
    stats = sample_statistics([piece], pieces)
    return {
        "music_nll_held_out": round(total / count, 3),
        "music_in_key_share": round(stats["in_key_share"], 3),
    }
