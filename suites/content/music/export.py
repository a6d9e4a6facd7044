"""Pieces out: MIDI files (``pretty_midi``; one instrument per voice) and audio from a small additive
synthesiser of our own (harmonics under an attack-decay-release envelope), resampled and low-pass
filtered with ``torchaudio`` (scipy where torchaudio's library does not load), written as WAV or FLAC
with ``soundfile``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genforge.errors import GenforgeError

SYNTH_RATE = 16_000  # the synthesiser's own rate; torchaudio resamples to the requested one
RELEASE = 0.25  # seconds every note rings after its end (also the tail of the file)
HARMONICS = (1.0, 0.5, 0.3, 0.15, 0.08)
VOICE_PROGRAMS = (52, 52, 52, 52)  # General MIDI "Choir Aahs" for the four voices


def write_midi(piece, path: str | os.PathLike[str]) -> Path:
    """A MIDI file with one instrument per voice (S, A, T, B), written atomically."""
    import pretty_midi

    from genforge.content.music.data import grid_to_notes
    from genforge.io import atomic_path

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(piece.bpm))
    names = ("soprano", "alto", "tenor", "bass")
    instruments = [pretty_midi.Instrument(program=VOICE_PROGRAMS[v], name=names[v]) for v in range(4)]
    for pitch, start, end, voice in grid_to_notes(piece.grid, piece.bpm):
        instruments[voice].notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=start, end=end))
    pm.instruments.extend(instruments)
    path = Path(path)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))
    return path


def synthesise(piece, rate: int = 22_050) -> np.ndarray:
    """Mono float32 audio of the piece at ``rate`` Hz: length ``round((duration + RELEASE) * rate)``."""
    from genforge.content.music.data import STEPS_PER_QUARTER, grid_to_notes

    if rate < 4000:
        raise GenforgeError(f"sample rate {rate}; expected at least 4000 Hz")
    duration = len(piece.grid) * 60.0 / piece.bpm / STEPS_PER_QUARTER
    n = int(round((duration + RELEASE) * SYNTH_RATE))
    audio = np.zeros(n, dtype=np.float64)
    attack, decay = 0.02, 0.1
    for pitch, start, end, _ in grid_to_notes(piece.grid, piece.bpm):
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        a = int(start * SYNTH_RATE)
        length = int((end - start + RELEASE) * SYNTH_RATE)
        t = np.arange(min(length, n - a)) / SYNTH_RATE
        held = end - start
        env = np.minimum(1.0, t / attack) * (0.7 + 0.3 * np.exp(-t / decay))
        env *= np.where(t < held, 1.0, np.exp(-(t - held) / (RELEASE / 4)))
        wave = sum(
            h * np.sin(2 * np.pi * f0 * (k + 1) * t)
            for k, h in enumerate(HARMONICS)
            if f0 * (k + 1) < SYNTH_RATE / 2
        )
        audio[a : a + len(t)] += env * wave
    out = _filter_and_resample(audio, rate)
    expected = int(round((duration + RELEASE) * rate))
    out = np.pad(out, (0, max(0, expected - len(out))))[:expected]
    peak = float(np.abs(out).max()) if len(out) else 0.0
    return (out / peak * 0.8 if peak > 0 else out).astype(np.float32)


def _filter_and_resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """Low-pass at 5 kHz and resample from ``SYNTH_RATE`` to ``rate``: torchaudio's biquad and resampler,
    or scipy's Butterworth filter and polyphase resampler where torchaudio's native library does not load
    (a torch / torchaudio build mismatch)."""
    cutoff = min(5000.0, SYNTH_RATE / 2 - 100)
    try:
        import torch
        import torchaudio.functional as AF
    except (ImportError, OSError):
        from math import gcd

        from scipy.signal import butter, resample_poly, sosfilt

        out = sosfilt(butter(2, cutoff, fs=SYNTH_RATE, output="sos"), audio)
        if rate != SYNTH_RATE:
            g = gcd(rate, SYNTH_RATE)
            out = resample_poly(out, rate // g, SYNTH_RATE // g)
        return np.asarray(out)
    signal = AF.lowpass_biquad(torch.from_numpy(audio).float()[None], SYNTH_RATE, cutoff_freq=cutoff)
    if rate != SYNTH_RATE:
        signal = AF.resample(signal, SYNTH_RATE, rate)
    return signal[0].numpy()


def write_audio(piece, path: str | os.PathLike[str], rate: int = 22_050) -> Path:
    """WAV (or FLAC, by the suffix) of the synthesised piece, written atomically."""
    import soundfile as sf

    from genforge.io import atomic_path

    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise GenforgeError(f"{path}: unsupported audio type {path.suffix!r}; expected .wav or .flac")
    audio = synthesise(piece, rate)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, rate, format=fmt, subtype="PCM_16")
    return path
