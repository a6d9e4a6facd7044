"""Music product: the event vocabulary round-trips, MIDI written and read back with the same notes, WAV of
the right length and rate, a tiny event GPT learns, n-gram baseline, chorale statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from genforge.cli import main
from genforge.content import (
    MusicGenerator,
    NGramLM,
    Piece,
    grid_to_notes,
    read_piece,
    write_audio,
    write_midi,
)
from genforge.content.music.data import (
    HIGH_PITCH,
    REST,
    VOCAB_SIZE,
    VoiceWindows,
    decode,
    encode,
    transpositions,
)
from genforge.content.music.evaluate import in_key_share, sample_statistics, split_chorales
from genforge.errors import DataError


def _piece(steps=64, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    grid = np.stack([scale[rng.integers(0, 8, steps // 4).repeat(4)] + off for off in (12, 0, -12, -24)], 1)
    grid[8:12, 1] = -1  # a rest in the alto
    return Piece("walk", grid.astype(np.int16), 100.0)


def test_tokens_round_trip():
    p = _piece()
    toks = encode(p.grid)
    assert toks[0] == 0 and len(toks) == 1 + p.grid.size and max(toks) < VOCAB_SIZE
    assert np.array_equal(decode(toks), p.grid)


def test_midi_written_and_read_back_with_the_same_notes(tmp_path):
    p = _piece()
    path = write_midi(p, tmp_path / "p.mid")
    back = read_piece(path)
    assert np.array_equal(back.grid, p.grid)
    assert back.bpm == pytest.approx(p.bpm)
    np.testing.assert_allclose(
        np.array(grid_to_notes(back.grid, back.bpm)), np.array(grid_to_notes(p.grid, p.bpm))
    )
    import pretty_midi  # the file itself holds the notes, voice by voice

    notes = sorted(
        (n.pitch, round(n.start, 6)) for i in pretty_midi.PrettyMIDI(str(path)).instruments for n in i.notes
    )
    assert notes == sorted((n[0], round(n[1], 6)) for n in grid_to_notes(p.grid, p.bpm))


def test_wav_length_and_rate(tmp_path):
    p = _piece(steps=32)  # 32 sixteenths at 100 bpm = 4.8 s, plus 0.25 s release
    path = write_audio(p, tmp_path / "p.wav", rate=22_050)
    audio, rate = sf.read(path)
    assert rate == 22_050 and len(audio) == round(5.05 * 22_050) and 0.5 < np.abs(audio).max() <= 1


def test_corrupt_midi_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(DataError, match="bad.mid: not a readable MIDI file"):
        read_piece(bad)


def test_tiny_music_gpt_learns_and_beats_uniform():
    torch.set_num_threads(1)
    pieces = [_piece(128, s) for s in range(4)]
    size = dict(
        block_size=64,
        n_layer=1,
        n_head=2,
        n_embd=32,
        batch_size=16,
        dropout=0.0,
        lr=3e-3,
        progress=False,
        device="cpu",
    )
    est = MusicGenerator(max_steps=150, **size).fit(pieces[:3])
    start = MusicGenerator(max_steps=1, **size).fit(pieces[:3])
    total, n = est.nll(encode(pieces[3].grid))
    assert n == pieces[3].grid.size and total / n < 0.7 * start.nll(encode(pieces[3].grid))[0] / n
    assert total / n < 0.7 * math.log(VOCAB_SIZE)
    ngram = NGramLM(order=5, vocab_size=VOCAB_SIZE).fit([encode(p.grid) for p in pieces[:3]])
    ng_total, ng_n = ngram.nll([encode(pieces[3].grid)])
    assert ng_n == n and ng_total / ng_n < math.log(VOCAB_SIZE)
    gen = est.generate(seconds=3, bpm=100, seed=0)
    assert gen.grid.shape == (20, 4)
    cont = est.generate(seconds=3, bpm=100, opening=pieces[0], seed=0)
    assert np.array_equal(cont.grid[: len(pieces[0].grid)][:20], pieces[0].grid[:20])


def test_transpositions_stay_in_range_and_keep_intervals():
    piece = _piece(32)
    moved = transpositions(piece)
    assert len(moved) == 12 and moved[5] is piece  # shifts -5..+6, the piece itself at 0
    for k, m in zip(range(-5, 7), moved, strict=True):
        assert np.array_equal(m.grid == -1, piece.grid == -1)  # rests stay rests
        assert np.array_equal(m.grid[piece.grid >= 0], piece.grid[piece.grid >= 0] + k)
    high = Piece("high", np.where(piece.grid >= 0, piece.grid + HIGH_PITCH - 4 - piece.grid.max(), -1))
    assert [int(m.grid.max()) for m in transpositions(high)][-1] == HIGH_PITCH  # +5, +6 dropped


def test_voice_windows_start_on_bos_or_soprano_and_stay_in_their_piece():
    a, b = encode(_piece(32, 0).grid), encode(_piece(16, 1).grid)  # 129 and 65 tokens
    windows = VoiceWindows([a, b], block=48)
    assert windows.starts[0] == 0 and all(s % 4 == 1 for s in windows.starts[1 : windows.ends.count(129)])
    for i in range(len(windows)):
        x, y = windows[i]
        s, end = windows.starts[i], windows.ends[i]
        piece, offset = (a, 0) if end == 129 else (b, 129)
        inside = min(48, end - s - 1)  # targets inside the piece; the rest are ignored (-1)
        assert y[:inside].tolist() == piece[s - offset + 1 : s - offset + 1 + inside]
        assert (y[inside:] == -1).all() and (x[min(48, end - s) :] == REST).all()
        assert inside >= 24 or s == offset  # at least half a block of targets, or the piece's BOS start
    beats = VoiceWindows([a, b], block=48, stride=4)  # every quarter note of the grid
    assert beats.starts == [0, 1, 17, 33, 49, 65, 81, 97, 129, 130, 146, 162]


def test_rope_music_gpt_with_aligned_windows_and_transpositions_learns():
    torch.set_num_threads(1)
    pieces = [_piece(128, s) for s in range(4)]
    size = dict(block_size=64, n_layer=1, n_head=2, n_embd=32, batch_size=16, dropout=0.0, lr=3e-3)
    common = dict(progress=False, device="cpu", position="learned+rope", align_steps=4, transpose=True)
    est = MusicGenerator(max_steps=120, **size, **common).fit(pieces[:3])
    assert est.model_.config.position == "learned+rope"
    total, n = est.nll(encode(pieces[3].grid))
    start = MusicGenerator(max_steps=1, **size, **common).fit(pieces[:3]).nll(encode(pieces[3].grid))[0]
    assert n == pieces[3].grid.size and total < 0.7 * start
    gen = est.generate(seconds=6, bpm=100, seed=0)  # 40 steps = 160 events: past the 64-event context
    assert gen.grid.shape == (40, 4)
    tokens = [encode(p.grid) for p in pieces[:3]]  # token lists are transposed through their grid
    same = MusicGenerator(max_steps=120, **size, **common).fit(tokens)
    assert same.nll(encode(pieces[3].grid))[0] == pytest.approx(total, rel=1e-6)


def test_statistics_and_split():
    a, b = _piece(seed=1), _piece(seed=2)
    stats = sample_statistics([a], [b])
    assert 0 <= stats["pitch_class_tv"] <= 1 and 0 <= stats["duration_tv"] <= 1
    assert in_key_share([a]) == 1.0  # C major notes only
    train, valid, test = split_chorales([Piece(f"p{i}", a.grid) for i in range(382)])
    assert (len(train), len(valid), len(test)) == (229, 76, 77)


def test_cli_train_generate_from_midi_folder(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    for s in range(3):
        write_midi(_piece(128, s), folder / f"{s}.mid")
    assert (
        main(
            [
                "content",
                "music",
                "train",
                "--data",
                str(folder),
                "--out",
                str(tmp_path / "m"),
                "--max-steps",
                "5",
                "--block-size",
                "64",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "content",
                "music",
                "generate",
                "--model",
                str(tmp_path / "m"),
                "--seconds",
                "2",
                "--out",
                str(tmp_path / "g.mid"),
                "--wav",
                str(tmp_path / "g.wav"),
            ]
        )
        == 0
    )
    assert (
        read_piece(tmp_path / "g.mid").grid.shape[1] == 4
        and sf.info(str(tmp_path / "g.wav")).samplerate == 22_050
    )
