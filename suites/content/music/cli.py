"""``genforge content music ...``: train an event GPT on chorales or your MIDI/MusicXML, generate pieces
to MIDI and WAV/FLAC. Imports are lazy; expected mistakes raise ``GenforgeError`` (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Music: four-voice pieces from a GPT over note events; MIDI and audio out.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def train(
    data: Path = typer.Option(
        None, "--data", help="Folder of .mid/.mxl/.xml files (default: music21's Bach chorales)"
    ),
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    limit: int = typer.Option(None, "--limit", help="Use only the first N chorales (default: all)"),
    max_steps: int = typer.Option(3000, "--max-steps", help="Training steps"),
    block_size: int = typer.Option(192, "--block-size", help="Context in events (4 per sixteenth)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Train on music files or on the Bach chorales that ship with music21.

    Example: genforge content music train --out models/chorales --max-steps 3000
    """
    from genforge.content.music.data import read_chorales, read_music_folder
    from genforge.content.music.models import MusicGenerator

    pieces = read_music_folder(data) if data is not None else read_chorales(limit=limit, progress=True)
    est = MusicGenerator(max_steps=max_steps, block_size=block_size, seed=seed, device=device).fit(pieces)
    est.save(out)
    typer.echo(f"trained on {len(pieces)} piece(s); model in {out}")


@app.command()
def generate(
    model: Path = typer.Option(..., "--model", help="Model folder written by 'music train'"),
    out: Path = typer.Option(..., "--out", help="MIDI file to write (.mid)"),
    seconds: float = typer.Option(20.0, "--seconds", help="Length of the piece"),
    bpm: float = typer.Option(90.0, "--bpm", help="Tempo in quarter notes per minute"),
    opening: Path = typer.Option(None, "--opening", help="MIDI/MusicXML opening to continue"),
    wav: Path = typer.Option(None, "--wav", help="Also write audio (.wav or .flac) from the synthesiser"),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(None, "--top-p"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Generate a piece (or continue an opening) and write MIDI, optionally audio.

    Example: genforge content music generate --model models/chorales --seconds 30 --out p.mid --wav p.wav
    """
    from genforge.content.music.data import read_piece
    from genforge.content.music.export import write_audio, write_midi
    from genforge.content.music.models import MusicGenerator
    from genforge.errors import GenforgeError

    if out.suffix.lower() not in (".mid", ".midi"):
        raise GenforgeError(f"--out {out}: expected a .mid file")
    if wav is not None and wav.suffix.lower() not in (".wav", ".flac"):
        raise GenforgeError(f"--wav {wav}: expected a .wav or .flac file")
    start = read_piece(opening) if opening is not None else None
    est = MusicGenerator.load(model)
    piece = est.generate(
        seconds=seconds, bpm=bpm, opening=start, temperature=temperature, top_p=top_p, seed=seed
    )
    write_midi(piece, out)
    if wav is not None:
        write_audio(piece, wav)
    typer.echo(f"wrote {out}" + (f" and {wav}" if wav is not None else ""))
