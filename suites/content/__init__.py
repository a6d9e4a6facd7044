"""genforge.content: text, image and music generation trained on the user's own material, locally.

Three products, each a sub-package of the suite shape (data / models / evaluate / cli):

- ``text``: :class:`TextGenerator`, the core GPT on a folder of .txt/.md files (characters or BPE
  trained on the corpus), streaming generation with temperature / top-k / top-p / repetition penalty
  and stop strings;
- ``image``: :class:`ImageGenerator`, the core Diffusion model, class-conditional with classifier-free
  guidance, DDIM sampling and EMA weights, on a folder of PNG/JPEG (one sub-folder per class);
- ``music``: :class:`MusicGenerator`, the core GPT over four-voice note events, trained on MIDI /
  MusicXML or music21's Bach chorales, exported as MIDI and synthesised audio.

Public API (imported lazily)::

    from genforge.content import TextGenerator, read_corpus
    gen = TextGenerator(max_steps=2000).fit(read_corpus("docs/"))
    for piece in gen.stream("Dear customer", top_p=0.9, stop=["\\n\\n"]):
        print(piece, end="")
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="content",
    title="Content",
    summary="text, images and music generated from your own material (GPT, diffusion), trained locally",
    cli="genforge.content.cli:app",
    demo="genforge.content.cli:run_demo",
    estimators=(
        "genforge.content.text.models:TextGenerator",
        "genforge.content.image.models:ImageGenerator",
        "genforge.content.music.models:MusicGenerator",
    ),
    page="genforge.dashboards.views.content",
    icon=":material/palette:",
)

_LAZY = {
    # text
    "TextGenerator": "genforge.content.text.models",
    "read_corpus": "genforge.content.text.data",
    "read_text_file": "genforge.content.text.data",
    "read_prompts": "genforge.content.text.data",
    "embedded_text": "genforge.content.text.data",
    # image
    "ImageGenerator": "genforge.content.image.models",
    "ImageSet": "genforge.content.image.data",
    "read_image_folder": "genforge.content.image.data",
    "read_image": "genforge.content.image.data",
    "mnist_digits": "genforge.content.image.data",
    "sklearn_digits": "genforge.content.image.data",
    "save_grid": "genforge.content.image.data",
    # music
    "MusicGenerator": "genforge.content.music.models",
    "Piece": "genforge.content.music.data",
    "read_piece": "genforge.content.music.data",
    "read_music_folder": "genforge.content.music.data",
    "read_chorales": "genforge.content.music.data",
    "grid_to_notes": "genforge.content.music.data",
    "TOKENISATION": "genforge.content.music.data",
    "write_midi": "genforge.content.music.export",
    "write_audio": "genforge.content.music.export",
    "synthesise": "genforge.content.music.export",
    "music_statistics": "genforge.content.music.evaluate:sample_statistics",
    # shared
    "NGramLM": "genforge.content.ngram",
}

__all__ = ["SUITE", *_LAZY]


__getattr__ = lazy_getattr("genforge.content", _LAZY, globals())
