"""Content: text in your style (streamed, with the sampling controls), image grids by class and guidance,
and music with a piano roll and an audio player — each from a saved model folder or a small model trained
here on your uploads or on embedded data.

UI only: reading and validating uploads, training, generation, MIDI and audio all come from
``genforge.content``. Model folders default to ``$GENFORGE_CONTENT_MODELS/<text|image|music>``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

TITLE = "Content"
ICON = ":material/palette:"


def _models_root() -> Path:
    return Path(os.environ.get("GENFORGE_CONTENT_MODELS", "models/content"))


def _save_uploads(files, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / Path(f.name).name).write_bytes(f.getvalue())
    return folder


# ------------------------------------------------------------------------------------------- models
@st.cache_resource(show_spinner="loading the model ...")
def _load(kind: str, folder: str, stamp: float):
    from genforge.content import ImageGenerator, MusicGenerator, TextGenerator

    cls = {"text": TextGenerator, "image": ImageGenerator, "music": MusicGenerator}[kind]
    return cls.load(folder)


@st.cache_resource(show_spinner="training a small text model ...")
def _train_text(texts: tuple[str, ...]):
    from genforge.content import TextGenerator

    return TextGenerator(n_layer=2, n_head=2, n_embd=64, max_steps=300, progress=False).fit(list(texts))


@st.cache_resource(show_spinner="training a small image model (about a minute) ...")
def _train_image(key: str, folder: str | None):
    from genforge.content import ImageGenerator, read_image_folder, sklearn_digits

    images = read_image_folder(folder) if folder else sklearn_digits()
    return ImageGenerator(
        base_channels=16,
        channel_mults=(1, 2),
        max_steps=300,
        batch_size=32,
        class_names=tuple(images.classes),
        progress=False,
    ).fit(images.x, images.y)


@st.cache_resource(show_spinner="training a small music model on Bach chorales ...")
def _train_music(n_pieces: int):
    from genforge.content import MusicGenerator, read_chorales

    return MusicGenerator(n_layer=2, n_head=2, n_embd=64, block_size=128, max_steps=300, progress=False).fit(
        read_chorales(limit=n_pieces)
    )


@st.cache_data(show_spinner=False)
def _embedded_text() -> str:
    from genforge.content import embedded_text

    return embedded_text(200_000)


def _saved(kind: str):
    folder = st.text_input("Model folder", str(_models_root() / kind), key=f"{kind}_folder")
    path = Path(folder)
    if (path / "config.json").is_file():
        try:
            return _load(kind, str(path), (path / "model.safetensors").stat().st_mtime)
        except Exception as exc:  # a foreign or corrupt folder is a message, not a crash
            st.error(f"{path}: {exc}")
    return None


# --------------------------------------------------------------------------------------------- text
def text_tab() -> None:
    from genforge.content import read_corpus

    model = _saved("text")
    uploads = st.file_uploader(
        "Your documents (.txt, .md)", type=["txt", "md"], accept_multiple_files=True, key="text_upload"
    )
    if st.button(
        "Train a small model here",
        key="text_train",
        help="On your uploads, or on embedded Shakespeare without uploads",
    ):
        try:
            if uploads:
                with tempfile.TemporaryDirectory() as tmp:
                    texts = read_corpus(_save_uploads(uploads, Path(tmp)))
            else:
                texts = [_embedded_text()]
            st.session_state["text_model"] = _train_text(tuple(texts))
        except Exception as exc:  # bad uploads: one line, the page stays up
            st.error(str(exc))
    model = model or st.session_state.get("text_model")
    if model is None:
        st.info("No text model yet: give a model folder (genforge content text train) or train one here.")
        return
    c1, c2, c3, c4 = st.columns(4)
    temperature = c1.slider("temperature", 0.0, 2.0, 0.8, 0.05)
    top_k = c2.number_input("top-k (0 = off)", 0, 1000, 0)
    top_p = c3.slider("top-p", 0.05, 1.0, 1.0, 0.05)
    penalty = c4.slider("repetition penalty", 1.0, 2.0, 1.0, 0.05)
    prompt = st.text_area("Prompt", "\n", key="text_prompt")
    stop = st.text_input("Stop string (optional)", "")
    max_new = st.slider("tokens", 20, 1000, 300, 20)
    if st.button("Generate", key="text_go"):
        try:
            pieces = model.stream(
                prompt or "\n",
                max_new,
                temperature=temperature,
                top_k=top_k or None,
                top_p=top_p if top_p < 1 else None,
                repetition_penalty=penalty,
                stop=[stop.encode().decode("unicode_escape")] if stop else (),
                seed=None,
            )
            text = st.write_stream(pieces)
            st.download_button("Download text", str(text), file_name="generated.txt")
        except Exception as exc:  # e.g. a prompt character the model never saw
            st.error(str(exc))


# -------------------------------------------------------------------------------------------- image
def image_tab() -> None:
    from genforge.content import save_grid

    model = _saved("image")
    uploads = st.file_uploader(
        "Your images (PNG/JPEG, one size and mode)",
        type=["png", "jpg", "jpeg"],
        accept_multiple_files=True,
        key="image_upload",
    )
    if st.button(
        "Train a small model here",
        key="image_train",
        help="On your uploads, or on scikit-learn's 8x8 digits without uploads",
    ):
        try:
            if uploads:
                folder = Path(tempfile.mkdtemp(prefix="genforge-images-"))
                _save_uploads(uploads, folder)
                key = ",".join(sorted(f"{f.name}:{f.size}" for f in uploads))
                st.session_state["image_model"] = _train_image(key, str(folder))
            else:
                st.session_state["image_model"] = _train_image("digits", None)
        except Exception as exc:
            st.error(str(exc))
    model = model or st.session_state.get("image_model")
    if model is None:
        st.info("No image model yet: give a model folder (genforge content image train) or train one here.")
        return
    c1, c2, c3, c4 = st.columns(4)
    label = None
    if model.num_classes_:
        label = c1.slider("class", 0, model.num_classes_ - 1, 0)
    guidance = c2.slider("guidance", 1.0, 6.0, 1.5, 0.5)  # ImageGenerator's DEFAULT_GUIDANCE
    steps = c3.slider("DDIM steps", 5, 100, 25, 5)
    n = c4.slider("images", 1, 36, 16)
    if st.button("Sample", key="image_go"):
        images = model.sample(n, label=label, steps=steps, guidance=guidance, seed=None)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_grid(images, Path(tmp) / "grid.png", scale=4)
            data = path.read_bytes()
        st.image(data, caption=f"class {label}, guidance {guidance}, {steps} DDIM steps")
        st.download_button("Download grid (PNG)", data, file_name="grid.png", mime="image/png")


# -------------------------------------------------------------------------------------------- music
def music_tab() -> None:
    from genforge.content import grid_to_notes, read_piece, synthesise, write_midi

    model = _saved("music")
    if st.button("Train a small model here on 20 Bach chorales", key="music_train"):
        st.session_state["music_model"] = _train_music(20)
    model = model or st.session_state.get("music_model")
    if model is None:
        st.info("No music model yet: give a model folder (genforge content music train) or train one here.")
        return
    opening_file = st.file_uploader(
        "Opening to continue (MIDI or MusicXML, optional)",
        type=["mid", "midi", "xml", "musicxml", "mxl"],
        key="music_upload",
    )
    c1, c2, c3 = st.columns(3)
    seconds = c1.slider("seconds", 4, 60, 16)
    bpm = c2.slider("tempo (bpm)", 40, 160, 90)
    temperature = c3.slider("temperature", 0.5, 1.5, 1.0, 0.05)
    if st.button("Generate", key="music_go"):
        try:
            opening = None
            if opening_file is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    opening = read_piece(
                        _save_uploads([opening_file], Path(tmp)) / Path(opening_file.name).name
                    )
            piece = model.generate(
                seconds=seconds, bpm=bpm, opening=opening, temperature=temperature, seed=None
            )
        except Exception as exc:
            st.error(str(exc))
            return
        notes = pd.DataFrame(grid_to_notes(piece.grid, piece.bpm), columns=["pitch", "start", "end", "voice"])
        notes["voice"] = notes["voice"].map({0: "soprano", 1: "alto", 2: "tenor", 3: "bass"})
        fig = px.timeline(
            notes.assign(
                start=pd.to_datetime(notes["start"], unit="s"), end=pd.to_datetime(notes["end"], unit="s")
            ),
            x_start="start",
            x_end="end",
            y="pitch",
            color="voice",
        )
        fig.update_yaxes(autorange=True, title="MIDI pitch")
        fig.update_layout(height=380, xaxis_title="time", bargap=0.1)
        st.plotly_chart(fig, use_container_width=True)
        st.audio(synthesise(piece, 22_050), sample_rate=22_050)
        with tempfile.TemporaryDirectory() as tmp:
            midi = write_midi(piece, Path(tmp) / "piece.mid").read_bytes()
        st.download_button("Download MIDI", midi, file_name="piece.mid", mime="audio/midi")


st.title("Content")
st.caption("Text, images and music trained on your own material, on this machine.")
text, image, music = st.tabs(["Text", "Images", "Music"])
with text:
    text_tab()
with image:
    image_tab()
with music:
    music_tab()
