"""Music material and its event vocabulary: four-voice pieces on a sixteenth-note grid.

Tokenisation (stated once, used everywhere in this product): a piece is a grid of ``steps x 4`` voices
(soprano, alto, tenor, bass) at sixteenth-note resolution; each cell is the MIDI pitch the voice sounds
at that step, or a rest. The grid is read row by row, S A T B, S A T B, ..., after one ``BOS`` token, so
one token (an *event*) is one voice's pitch-or-rest at one sixteenth step — the serialised JSB grid of
Huang et al. (Music Transformer, 2018). Vocabulary: ``BOS`` = 0, ``REST`` = 1, pitch p in
``[LOW_PITCH, HIGH_PITCH]`` = ``2 + p - LOW_PITCH`` (71 tokens). A held note and a repeated note look
the same on the grid (as in the JSB piano rolls); :func:`grid_to_notes` merges equal neighbours.

Readers: MusicXML (``.xml``/``.musicxml``/``.mxl``) through ``music21``, MIDI (``.mid``/``.midi``) through
``pretty_midi``; the first four parts (MIDI: instruments, or the notes of one instrument split top to
bottom) become the voices. Bach chorales come from music21's corpus. Every mistake is one ``DataError``
line naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genforge.errors import DataError

BOS, REST = 0, 1
LOW_PITCH, HIGH_PITCH = 28, 96
VOCAB_SIZE = 2 + HIGH_PITCH - LOW_PITCH + 1
VOICES = 4
STEPS_PER_QUARTER = 4
MIDI_SUFFIXES = (".mid", ".midi")
XML_SUFFIXES = (".xml", ".musicxml", ".mxl")
TOKENISATION = (
    "16th-note grid, 4 voices (SATB) interleaved per step, one token per voice per step = MIDI pitch "
    f"{LOW_PITCH}-{HIGH_PITCH} or rest, plus BOS (vocabulary {VOCAB_SIZE})"
)


@dataclass
class Piece:
    """``grid`` int16 [steps, 4]: MIDI pitch per voice per sixteenth (-1 = rest); ``name``; ``bpm``."""

    name: str
    grid: np.ndarray
    bpm: float = 90.0


def pitch_token(p: int) -> int:
    return REST if p < 0 else 2 + int(np.clip(p, LOW_PITCH, HIGH_PITCH)) - LOW_PITCH


def encode(grid: np.ndarray) -> list[int]:
    """BOS + the grid's tokens row by row (S A T B per step)."""
    return [BOS] + [pitch_token(int(p)) for p in np.asarray(grid).reshape(-1)]


def decode(tokens: list[int]) -> np.ndarray:
    """Tokens (a leading BOS optional) back to a grid [steps, 4]; a stray BOS counts as a rest, a last
    incomplete step is dropped."""
    toks = list(tokens[1:] if tokens and tokens[0] == BOS else tokens)
    toks = toks[: len(toks) - len(toks) % VOICES]
    pitches = [-1 if t <= REST else LOW_PITCH + t - 2 for t in toks]
    return np.array(pitches, dtype=np.int16).reshape(-1, VOICES)


def grid_to_notes(grid: np.ndarray, bpm: float = 90.0) -> list[tuple[int, float, float, int]]:
    """(pitch, start seconds, end seconds, voice) of every note: equal neighbours in a voice merge."""
    step = 60.0 / bpm / STEPS_PER_QUARTER
    notes = []
    for v in range(grid.shape[1]):
        col = grid[:, v]
        start = 0
        for i in range(1, len(col) + 1):
            if i == len(col) or col[i] != col[start]:
                if col[start] >= 0:
                    notes.append((int(col[start]), start * step, i * step, v))
                start = i
    return sorted(notes, key=lambda n: (n[1], n[3]))


def transpositions(piece: Piece, shifts: range = range(-5, 7)) -> list[Piece]:
    """``piece`` moved by every shift of ``shifts`` (semitones; default the 12 keys -5..+6) that keeps
    all its pitches in ``[LOW_PITCH, HIGH_PITCH]``; shift 0 (the piece itself) included. Training
    augmentation for chorales, as is standard for JSB."""
    sounding = piece.grid[piece.grid >= 0]
    if not len(sounding):
        return [piece]
    low, high = int(sounding.min()), int(sounding.max())
    out = []
    for k in shifts:
        if k == 0:
            out.append(piece)
        elif LOW_PITCH <= low + k and high + k <= HIGH_PITCH:
            grid = np.where(piece.grid >= 0, piece.grid + k, piece.grid).astype(np.int16)
            out.append(Piece(f"{piece.name}{k:+d}", grid, piece.bpm))
    return out


class VoiceWindows(torch.utils.data.Dataset):
    """Training windows of ``block`` tokens that start on a piece's BOS or on the soprano token of every
    ``stride``-th grid step (1: every step; 4: every quarter note of the grid), so window position ``i``
    after such a start holds voice ``i % 4`` and, for ``stride`` 4, sits at a fixed place in the beat:
    the absolute position embedding then encodes voice (and beat). Windows stay inside their piece and
    hold at least half a block of targets (the BOS start excepted); a short tail is padded (inputs
    ``REST``, targets ``-1`` = ignored). Items ``(x, y)`` as the core GPT's ``training_loss`` takes."""

    def __init__(self, sequences: list[list[int]], block: int, stride: int = 1) -> None:
        if block < 1 or stride < 1 or not sequences:
            raise DataError("VoiceWindows: expected pieces, a positive context and a positive stride")
        self.block = block
        self.ids = torch.tensor([t for s in sequences for t in s], dtype=torch.long)
        starts, ends, offset = [], [], 0
        for seq in sequences:
            end = offset + len(seq)
            for s in [offset, *range(offset + 1, end - 1, VOICES * stride)]:
                if s == offset or s + max(1, block // 2) < end:
                    starts.append(s)
                    ends.append(end)
            offset = end
        self.starts, self.ends = starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, end = self.starts[i], self.ends[i]
        x = torch.full((self.block,), REST, dtype=torch.long)
        y = torch.full((self.block,), -1, dtype=torch.long)
        n_x = min(self.block, end - s)
        n_y = min(self.block, end - s - 1)
        x[:n_x] = self.ids[s : s + n_x]
        y[:n_y] = self.ids[s + 1 : s + 1 + n_y]
        return x, y


# ----------------------------------------------------------------------------------------- readers
def _grid_from_music21(score, name: str) -> np.ndarray:
    parts = list(score.parts)[:VOICES]
    if not parts:
        raise DataError(f"{name}: no parts in the score; expected up to four voices")
    length = int(round(float(score.highestTime) * STEPS_PER_QUARTER))
    if length < 1:
        raise DataError(f"{name}: the score has no duration; expected notes")
    grid = np.full((length, VOICES), -1, dtype=np.int16)
    for v, part in enumerate(parts):
        for n in part.flatten().notes:
            pitch = max(p.midi for p in n.pitches)  # a chord in one part: its top note
            a = int(round(float(n.offset) * STEPS_PER_QUARTER))
            b = int(round(float(n.offset + n.quarterLength) * STEPS_PER_QUARTER))
            grid[a : max(b, a + 1), v] = pitch
    return grid


def read_musicxml(path: Path) -> Piece:
    import music21

    try:
        score = music21.converter.parse(str(path))
    except Exception as exc:  # music21 raises many types for malformed files
        raise DataError(
            f"{path}: not a readable MusicXML score ({type(exc).__name__}); expected MusicXML"
        ) from None
    return Piece(path.stem, _grid_from_music21(score, str(path)))


def read_midi(path: Path) -> Piece:
    """A MIDI file on the sixteenth grid of its first tempo; instruments (or one split by pitch) as voices."""
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise OSError, EOFError, KeyError, ValueError ...
        raise DataError(
            f"{path}: not a readable MIDI file ({type(exc).__name__}); expected a .mid file"
        ) from None
    instruments = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not instruments:
        raise DataError(f"{path}: no pitched notes; expected a MIDI file with notes")
    _, tempi = pm.get_tempo_changes()
    bpm = float(tempi[0]) if len(tempi) else 120.0
    step = 60.0 / bpm / STEPS_PER_QUARTER
    end = max(n.end for i in instruments for n in i.notes)
    length = max(1, int(round(end / step)))
    grid = np.full((length, VOICES), -1, dtype=np.int16)
    if len(instruments) >= 2:
        voices = [[(n, v) for n in inst.notes] for v, inst in enumerate(instruments[:VOICES])]
        for notes in voices:
            for n, v in notes:
                a, b = int(round(n.start / step)), int(round(n.end / step))
                grid[a : max(b, a + 1), v] = n.pitch
    else:  # one instrument: at each step the sounding pitches, top to bottom, fill S A T B
        sounding: list[list[int]] = [[] for _ in range(length)]
        for n in instruments[0].notes:
            a, b = int(round(n.start / step)), int(round(n.end / step))
            for s in range(a, min(length, max(b, a + 1))):
                sounding[s].append(n.pitch)
        for s, pitches in enumerate(sounding):
            for v, p in enumerate(sorted(set(pitches), reverse=True)[:VOICES]):
                grid[s, v] = p
    return Piece(path.stem, grid, bpm)


def read_piece(path: str | os.PathLike[str]) -> Piece:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected a MIDI (.mid) or MusicXML (.xml/.mxl) file")
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return read_midi(path)
    if suffix in XML_SUFFIXES:
        return read_musicxml(path)
    raise DataError(
        f"{path}: unsupported file type {suffix!r}; expected .mid, .midi, .xml, .musicxml or .mxl"
    )


def read_music_folder(path: str | os.PathLike[str]) -> list[Piece]:
    """Every MIDI/MusicXML file below a folder (or one file)."""
    root = Path(path).expanduser()
    if root.is_file():
        return [read_piece(root)]
    if not root.is_dir():
        raise DataError(f"{root}: not found; expected a folder of MIDI/MusicXML files")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES + XML_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no .mid/.midi/.xml/.musicxml/.mxl files; expected music files")
    return [read_piece(f) for f in files]


# ------------------------------------------------------------------------------------ Bach chorales
def chorale_paths() -> list[Path]:
    """music21's Bach chorale files (``bach/bwv*.mxl`` and friends), sorted by name."""
    from music21 import corpus

    return sorted({Path(p) for p in corpus.getComposer("bach")}, key=lambda p: p.name)


def read_chorales(limit: int | None = None, progress: bool = False) -> list[Piece]:
    """Four-part chorales of music21's corpus (files without exactly four parts are skipped; a piece that
    appears twice with the same grid is kept once)."""
    import music21
    from tqdm.auto import tqdm

    pieces, seen = [], set()
    for path in tqdm(chorale_paths(), desc="chorales", disable=not progress):
        if limit is not None and len(pieces) >= limit:
            break
        try:
            score = music21.converter.parse(str(path))
        except Exception:  # noqa: BLE001 - a corpus file music21 cannot read is skipped
            continue
        if len(score.parts) != VOICES:
            continue
        grid = _grid_from_music21(score, path.name)
        key = grid.tobytes()
        if key in seen:
            continue
        seen.add(key)
        pieces.append(Piece(path.name.split(".mxl")[0].replace(".xml", ""), grid))
    return pieces


def save_pieces(path: str | os.PathLike[str], pieces: list[Piece]) -> Path:
    """Grids of several pieces in one ``.npz`` (atomically): names, lengths and the stacked grids."""
    from genforge.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            names=np.array([p.name for p in pieces]),
            lengths=np.array([len(p.grid) for p in pieces]),
            grids=np.concatenate([p.grid for p in pieces]),
            bpm=np.array([p.bpm for p in pieces]),
        )
    return path


def load_pieces(path: str | os.PathLike[str]) -> list[Piece]:
    try:
        with np.load(path, allow_pickle=False) as data:
            names, lengths, grids, bpm = data["names"], data["lengths"], data["grids"], data["bpm"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"{path}: not a saved piece set ({type(exc).__name__}); delete it to rebuild"
        ) from None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [
        Piece(str(n), grids[a:b], float(t))
        for n, a, b, t in zip(names, bounds[:-1], bounds[1:], bpm, strict=True)
    ]


def cached_chorales(cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> list[Piece]:
    """All four-part chorales, parsed once (minutes) and kept in ``cache_dir`` (default
    ``$GENFORGE_CACHE`` or ``~/.cache/genforge``) as ``content/chorales-v1.npz``."""
    base = Path(cache_dir or os.environ.get("GENFORGE_CACHE") or Path.home() / ".cache" / "genforge")
    path = base / "content" / "chorales-v1.npz"
    if path.is_file():
        return load_pieces(path)
    pieces = read_chorales(progress=progress)
    save_pieces(path, pieces)
    return pieces
