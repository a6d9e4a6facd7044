"""genforge.games: playable level generation and blending with a level VAE, A* playability, Tiled export.

Public API (imported lazily, so ``import genforge.games`` and the ``genforge`` CLI start fast)::

    from genforge.games import read_game, LevelVAE, astar, write_tiled
    levels = read_game("vglc/smb")                     # VGLC text levels + JSON legend, validated
    vae = LevelVAE().fit(levels)                       # core VAE, 2-D conv, categorical over tiles
    new = vae.generate(4, width=150, counts={"enemies": 2})
    astar(new[0].grid, new[0].legend).playable         # A* agent with jump arcs
    write_tiled(new[0], "level.tmj")                   # opens in the Tiled editor

Layout: ``data`` (formats), ``render`` (PNG), ``playability`` (A* agent, ballistic checker), ``rules``
(rule-based levels for the demo), ``metrics`` (counts, TPKL, novelty), ``models`` (LevelVAE),
``level_gpt`` (LevelGPT: the core GPT over column-serialised levels, as MarioGPT),
``baselines`` (column Markov chain, level GAN), ``evaluate`` (protocol), ``sprites`` (class-conditional
sprite diffusion with classifier-free guidance, and a sprite VAE, on Kenney's sprites), ``sprite_eval``
(FD in a trained feature space, class accuracy, copies),
``cli`` (``genforge games``).
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="games",
    title="Game levels",
    summary="playable game levels from a level VAE: generate, blend two games, constrain, export to Tiled",
    cli="genforge.games.cli:app",
    demo="genforge.games.cli:run_demo",
    estimators=("genforge.games.models:LevelVAE", "genforge.games.level_gpt:LevelGPT",
                "genforge.games.sprites:SpriteVAE", "genforge.games.sprites:SpriteDiffusion"),
    page="genforge.dashboards.views.games",
    icon=":material/sports_esports:",
)

_LAZY = {
    "Level": "genforge.games.data",
    "Vocabulary": "genforge.games.data",
    "SMB_LEGEND": "genforge.games.data",
    "read_legend": "genforge.games.data",
    "read_level": "genforge.games.data",
    "parse_level": "genforge.games.data",
    "read_game": "genforge.games.data",
    "read_tiled": "genforge.games.data",
    "write_tiled": "genforge.games.data",
    "write_text": "genforge.games.data",
    "render_level": "genforge.games.render:render",
    "write_png": "genforge.games.render",
    "astar": "genforge.games.playability",
    "ballistic": "genforge.games.playability",
    "Physics": "genforge.games.playability",
    "rule_level": "genforge.games.rules",
    "rule_levels": "genforge.games.rules",
    "element_counts": "genforge.games.metrics",
    "tpkl": "genforge.games.metrics",
    "COUNT_NAMES": "genforge.games.metrics",
    "LevelVAE": "genforge.games.models",
    "LevelGPT": "genforge.games.level_gpt",
    "MarkovColumns": "genforge.games.baselines",
    "LevelGAN": "genforge.games.baselines",
    "run_evaluation": "genforge.games.evaluate:evaluate",
    "SpriteVAE": "genforge.games.sprites",
    "SpriteDiffusion": "genforge.games.sprites",
    "load_sprite_model": "genforge.games.sprites",
    "kenney_sprites": "genforge.games.sprites",
    "read_sprite_folder": "genforge.games.sprites",
    "sprite_sheet": "genforge.games.sprites",
    "evaluate_sprites": "genforge.games.sprite_eval",
}

__all__ = ["SUITE", *_LAZY]

__getattr__ = lazy_getattr("genforge.games", _LAZY, globals())
