"""The level-generation protocol: playability, novelty, tile-pattern KL, count control, blending.

``genforge games evaluate --data VGLC_DIR --json out.json`` (VGLC_DIR holds ``smb/`` and ``kid_icarus/``):

1. **checker validation** — every real SMB level must pass the A* agent and the independent ballistic
   checker; three negative controls per level must fail (a 14-row wall, a chasm wider than any jump, the
   floor removed); the share of column-shuffled real levels that pass is reported (a lenient checker
   passes many; playability alone is never the goal).
2. **models** trained on the 15 SMB levels in the same run: the level VAE (conditioned on counts), the
   column Markov chain, the core GAN. Each generates ``n`` level segments of ``width`` columns. The VAE's
   decoding (temperature, min-p, prior or aggregate-posterior latents) is chosen first on validation
   segments with the A* agent (:func:`choose_decoding`); the segments are raw (no agent in generation).
   The level GPT (:class:`~genforge.games.level_gpt.LevelGPT`, as MarioGPT) is a compared model: its
   temperature / top-p chosen by :func:`choose_gpt_decoding`, its metrics under ``models.gpt``.
3. **metrics** — ``playable`` (A*), ``playable_independent`` (ballistic checker, on the first
   ``n_independent`` segments), ``novel_windows`` (share of generated 14x16 windows absent from training)
   and ``nn_distance`` (mean share of tiles that differ from the nearest training window), ``tpkl_2x2`` /
   ``tpkl_3x3`` (against all training levels), ``control_within_1`` (VAE windows conditioned on a requested
   count of one element, share within +-1 of the request, over the four elements), ``blend_score`` (a VAE
   trained on SMB + Kid Icarus; for weights 0..1 the tile distribution's relative position between the two
   games, Spearman rho against the weight; 1 = moves monotonically from SMB to Kid Icarus).
4. **held-out TPKL** (``--heldout-folds K``, off by default: K more VAEs to train): TPKL against the
   training levels rewards copying them (the Markov chain re-emits training columns and scores about 0,
   while real levels score 0.05-0.45 against other real levels), so per level-wise fold the VAE and the
   chain are trained on the other levels and scored against the held-out ones, beside the training
   levels themselves (a perfect copier): ``tpkl_heldout_2x2`` / ``_3x3``.

Anchor: MarioGPT reports about 88% playable with its A* agent. Goals (issue 15): >= 95% playable under
both checkers, TPKL below the Markov baseline's, >= 90% novel windows, control within +-1 for >= 80%.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from genforge.errors import DataError
from genforge.games.data import Level, Vocabulary, read_game
from genforge.games.metrics import COUNT_NAMES, all_windows, count_matrix, novelty, tile_distribution, tpkl
from genforge.games.playability import astar, ballistic

ANCHOR = {"name": "MarioGPT (Sudhakaran et al. 2023), A* agent", "playable": 0.88}
GOALS = {"playable": 0.95, "novel_windows": 0.90, "control_within_1": 0.80}


def default_data_dir() -> Path:
    env = os.environ.get("GENFORGE_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return root / "vglc"


def checker_validation(levels: list[Level], shuffles: int = 10, seed: int = 0) -> dict[str, Any]:
    """Real levels pass; negative controls fail; share of column-shuffled levels that pass."""
    rng = np.random.default_rng(seed)
    real_a = [astar(lv.grid, lv.legend).playable for lv in levels]
    real_b = [ballistic(lv.grid, lv.legend) for lv in levels]
    negatives: dict[str, list[bool]] = {"wall": [], "chasm": [], "no_floor": []}
    for lv in levels:
        g = lv.grid
        mid = g.shape[1] // 2
        wall = g.copy()
        wall[:, mid] = "X"
        chasm = g.copy()
        chasm[:, mid : mid + g.shape[0] + 10] = "-"  # wider than a jump plus a fall from the top
        floor = g.copy()
        floor[-2:, :] = "-"
        for name, grid in (("wall", wall), ("chasm", chasm), ("no_floor", floor)):
            negatives[name].append(astar(grid, lv.legend).playable or ballistic(grid, lv.legend))
    shuffled_a, shuffled_b = [], []
    for lv in levels:
        for _ in range(shuffles):
            perm = rng.permutation(lv.grid.shape[1])
            grid = lv.grid[:, perm]
            shuffled_a.append(astar(grid, lv.legend).playable)
            shuffled_b.append(ballistic(grid, lv.legend))
    return {
        "real_pass_astar": float(np.mean(real_a)),
        "real_pass_ballistic": float(np.mean(real_b)),
        "negative_controls_pass": {k: float(np.mean(v)) for k, v in negatives.items()},
        "shuffled_pass_astar": float(np.mean(shuffled_a)),
        "shuffled_pass_ballistic": float(np.mean(shuffled_b)),
        "n_shuffled": len(shuffled_a),
    }


def level_metrics(
    generated: list[Level], real_codes: list[np.ndarray], encode, n_independent: int, desc: str
) -> dict[str, float]:
    codes = [encode(lv.grid) for lv in generated]
    playable = [astar(lv.grid, lv.legend).playable for lv in tqdm(generated, desc=f"{desc}: A*", leave=False)]
    independent = [
        ballistic(lv.grid, lv.legend)
        for lv in tqdm(generated[:n_independent], desc=f"{desc}: ballistic", leave=False)
    ]
    novel, nn_dist = novelty(all_windows(codes), all_windows(real_codes))
    return {
        "playable": float(np.mean(playable)),
        "playable_independent": float(np.mean(independent)) if independent else float("nan"),
        "novel_windows": novel,
        "nn_distance": nn_dist,
        "tpkl_2x2": tpkl(real_codes, codes, 2),
        "tpkl_3x3": tpkl(real_codes, codes, 3),
    }


def control_error(vae, n_per_request: int = 50, seed: int = 0) -> dict[str, float]:
    """Share of conditioned windows within +-1 of the requested count, per element and overall."""
    rng = np.random.default_rng(seed)
    hits: dict[str, list[bool]] = {}
    for j, name in enumerate(COUNT_NAMES):
        values = np.unique(vae.train_counts_[:, j])
        requests = rng.choice(values, size=min(5, len(values)), replace=False)
        for value in requests:
            windows = vae.sample_windows(
                n_per_request, counts={name: float(value)}, seed=int(rng.integers(1e9))
            )
            got = count_matrix(windows, vae.vocab_)[:, j]
            hits.setdefault(name, []).extend((np.abs(got - value) <= 1).tolist())
    out = {f"control_within_1_{k}": float(np.mean(v)) for k, v in hits.items()}
    out["control_within_1"] = float(np.mean([x for v in hits.values() for x in v]))
    return out


def blend_score(
    vae, other: str, weights=(0.0, 0.25, 0.5, 0.75, 1.0), n: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Tile distribution of blended windows placed between the two games' (0 = first game, 1 = other)."""
    from scipy.stats import spearmanr

    k = len(vae.vocab_.chars)
    lat_games = vae.train_game_
    # the games' own tile distributions, from the windows the model stored
    dists = {}
    for gi, game in enumerate(vae.games_):
        z = vae.latents_[lat_games == gi][:n]
        dists[game] = tile_distribution(vae.decode(z), k)
    a, b = dists[vae.games_[0]], dists[other]
    positions = []
    for w in weights:
        d = tile_distribution(vae.sample_windows(n, blend={other: float(w)}, seed=seed), k)
        da, db = np.abs(d - a).sum(), np.abs(d - b).sum()
        positions.append(float(da / max(da + db, 1e-12)))
    rho = float(spearmanr(weights, positions).statistic) if len(set(positions)) > 1 else 0.0
    return {"blend_score": rho, "blend_positions": dict(zip(map(str, weights), positions, strict=True))}



def _validation_row(
    levels: list[Level], vocab: Vocabulary, real_codes: list[np.ndarray], real_windows: np.ndarray
) -> dict[str, float]:
    """The figures a decoding rule compares: novel windows, TPKL 2x2 against the training levels, A*."""
    codes = [vocab.encode(lv.grid) for lv in levels]
    novel, _ = novelty(all_windows(codes), real_windows)
    return {
        "novel_windows": novel,
        "tpkl_2x2": tpkl(real_codes, codes, 2),
        "playable": float(np.mean([astar(lv.grid, lv.legend).playable for lv in levels])),
    }

def choose_temperature(
    vae,
    real_codes: list[np.ndarray],
    grid=(0.5, 0.75, 1.0, 1.5, 2.0),
    n: int = 30,
    width: int = 150,
    seed: int = 90_000,
) -> tuple[float, dict[str, dict[str, float]]]:
    """The decoding temperature of ``vae``, chosen on validation segments (seeds ``seed``.., never the
    evaluation seeds) against the *training* levels only, without the agent: the lowest tile-pattern KL
    (2x2) among the temperatures whose windows are >= 90% novel (the issue's novelty goal), else the most
    novel. Segments are raw (no A* latent search). Sets ``vae.temperature`` and returns (T, table)."""
    table: dict[str, dict[str, float]] = {}
    real_windows = all_windows(real_codes)
    for t in grid:
        vae.temperature = float(t)
        levels = [vae.generate(1, width=width, seed=seed + i, playable=False)[0] for i in range(n)]
        codes = [vae.vocab_.encode(lv.grid) for lv in levels]
        novel, _ = novelty(all_windows(codes), real_windows)
        table[str(t)] = {"tpkl_2x2": tpkl(real_codes, codes, 2), "novel_windows": novel}
    ok = [t for t in grid if table[str(t)]["novel_windows"] >= GOALS["novel_windows"]]
    if ok:
        best = min(ok, key=lambda t: table[str(t)]["tpkl_2x2"])
    else:
        best = max(grid, key=lambda t: table[str(t)]["novel_windows"])
    vae.temperature = float(best)
    return float(best), table


def choose_decoding(
    vae,
    real_codes: list[np.ndarray],
    temperatures=(0.75, 1.0, 1.25),
    min_probs=(0.0, 0.05),
    latent_noises=(None, 0.5),
    n: int = 100,
    width: int = 150,
    seed: int = 90_000,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Decoding settings of ``vae`` (``temperature``, ``min_prob``, ``latent_noise``: prior or aggregate
    posterior latents), chosen on raw validation segments (seeds ``seed``.., never the evaluation seeds)
    with the A* agent and the *training* levels only: the most playable setting among those whose windows
    are >= 90% novel (ties: lower tile-pattern KL 2x2), else the most novel. The independent ballistic
    checker is not used, so it stays independent. Sets the attributes and returns (setting, table)."""
    table: dict[str, dict[str, Any]] = {}
    real_windows = all_windows(real_codes)
    for t, p, s in itertools.product(temperatures, min_probs, latent_noises):
        vae.temperature, vae.min_prob, vae.latent_noise = float(t), float(p), s
        levels = [vae.generate(1, width=width, seed=seed + i, playable=False)[0] for i in range(n)]
        table[f"T={t},min_prob={p},latent_noise={s}"] = {
            "temperature": float(t),
            "min_prob": float(p),
            "latent_noise": s,
            **_validation_row(levels, vae.vocab_, real_codes, real_windows),
        }
    rows = list(table.values())
    ok = [r for r in rows if r["novel_windows"] >= GOALS["novel_windows"]]
    best = (
        max(ok, key=lambda r: (r["playable"], -r["tpkl_2x2"]))
        if ok
        else max(rows, key=lambda r: r["novel_windows"])
    )
    setting = {k: best[k] for k in ("temperature", "min_prob", "latent_noise")}
    for k, v in setting.items():
        setattr(vae, k, v)
    return setting, table


def level_folds(n_levels: int, k: int, seed: int = 0) -> list[list[int]]:
    """Level-wise K-fold: ``k`` disjoint lists of held-out level indices covering ``range(n_levels)``
    (a permutation drawn with ``seed``, cut into ``k`` near-equal parts; each part sorted)."""
    if not 2 <= k <= n_levels:
        raise DataError(f"heldout folds={k}: expected 2 <= folds <= the number of levels ({n_levels})")
    perm = np.random.default_rng(seed).permutation(n_levels)
    return [sorted(int(i) for i in part) for part in np.array_split(perm, k)]


def fold_tpkl(
    vae,
    markov,
    train_codes: list[np.ndarray],
    held_codes: list[np.ndarray],
    n: int,
    width: int,
    seed: int,
    others: dict[str, Any] | None = None,
) -> dict[str, float]:
    """TPKL (2x2, 3x3) of ``n`` raw segments of a fold's VAE and Markov chain against the fold's held-out
    levels and against its own training levels, beside the training levels themselves against the
    held-out ones (what a perfect copier of the training levels scores). ``others``: more models by name
    (each ``generate(n, width=, seed=, playable=False)``, e.g. a :class:`LevelGPT`), scored the same way;
    ``vae`` may be None when ``others`` is given (keys ``<name>_heldout_2x2`` ...)."""
    others = dict(others or {})
    enc = (vae if vae is not None else next(iter(others.values()))).vocab_.encode
    gen: dict[str, list[np.ndarray]] = {}
    if vae is not None:
        gen["vae"] = [
            enc(vae.generate(1, width=width, seed=seed * 1_000_003 + i, playable=False)[0].grid)
            for i in range(n)
        ]
    gen["markov"] = [enc(lv.grid) for lv in markov.generate(n, width, seed)]
    for name, model in others.items():
        gen[name] = [enc(lv.grid) for lv in model.generate(n, width=width, seed=seed, playable=False)]
    out: dict[str, float] = {}
    for k in (2, 3):
        for name, codes in gen.items():
            out[f"{name}_heldout_{k}x{k}"] = tpkl(held_codes, codes, k)
            out[f"{name}_train_{k}x{k}"] = tpkl(train_codes, codes, k)
        out[f"copier_heldout_{k}x{k}"] = tpkl(held_codes, train_codes, k)
    return out


def heldout_tpkl(
    levels: list[Level],
    k: int = 5,
    n: int = 200,
    width: int = 150,
    vae_steps: int = 3000,
    setting: dict[str, Any] | None = None,
    seed: int = 0,
    echo=print,
    gpt_steps: int = 0,
    gpt_setting: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generalisation: for each of ``k`` level-wise folds (:func:`level_folds`) a level VAE (evaluate's
    configuration, ``vae_steps``; none when 0), the order-2 column Markov chain and, with ``gpt_steps`` > 0,
    a :class:`LevelGPT` (its default configuration, ``gpt_steps``) are trained on the other levels;
    :func:`fold_tpkl` per fold, and the means over folds. ``setting`` (temperature, min_prob,
    latent_noise) is the decoding chosen for the main VAE, ``gpt_setting`` (temperature, top_p) the one
    chosen for the main GPT, each applied unchanged to every fold's model."""
    from genforge.games.baselines import MarkovColumns
    from genforge.games.level_gpt import LevelGPT
    from genforge.games.models import LevelVAE

    if not vae_steps and not gpt_steps:
        raise DataError("held-out TPKL: expected a VAE (vae_steps > 0) or a GPT (gpt_steps > 0) to score")
    per_fold = []
    for f, held in enumerate(level_folds(len(levels), k, seed)):
        train = [lv for i, lv in enumerate(levels) if i not in held]
        echo(
            f"held-out fold {f + 1}/{k}: training on {len(train)} levels, holding out "
            f"{[levels[i].name for i in held]} ..."
        )
        vae = None
        if vae_steps:
            vae = LevelVAE(max_steps=vae_steps, hidden=(32, 64), seed=seed).fit(train)
            for key, value in (setting or {}).items():
                setattr(vae, key, value)
        others = {}
        if gpt_steps:
            gpt = LevelGPT(max_steps=gpt_steps, seed=seed).fit(train)
            for key, value in (gpt_setting or {}).items():
                setattr(gpt, key, value)
            others["gpt"] = gpt
        markov = MarkovColumns(order=2, seed=seed).fit(train)
        enc = (vae if vae is not None else others["gpt"]).vocab_.encode
        row = fold_tpkl(
            vae,
            markov,
            [enc(lv.grid) for lv in train],
            [enc(levels[i].grid) for i in held],
            n,
            width,
            seed,
            others,
        )
        per_fold.append({"heldout": [levels[i].name for i in held], **row})
    means = {key: float(np.mean([r[key] for r in per_fold])) for key in per_fold[0] if key != "heldout"}
    return {
        "folds": k,
        "segments": n,
        "width": width,
        "vae_steps": vae_steps,
        "gpt_steps": gpt_steps,
        "per_fold": per_fold,
        **means,
    }


def choose_gpt_decoding(
    gpt,
    real_codes: list[np.ndarray],
    temperatures=(0.8, 1.0, 1.2),
    top_ps=(None, 0.95),
    n: int = 100,
    width: int = 150,
    seed: int = 90_000,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Sampling settings of a :class:`LevelGPT` (``temperature``, ``top_p``), chosen on ``n`` raw
    validation segments (seed ``seed``, never the evaluation's) with the A* agent and the *training*
    levels only: the lowest tile-pattern KL 2x2 among the settings with >= 90% novel windows and >= 95%
    A*-playable segments; when none has both, the most playable among the >= 90% novel ones (ties: lower
    KL), else the most novel. The ballistic checker is not used. Sets the attributes; returns (setting,
    table)."""
    table: dict[str, dict[str, Any]] = {}
    real_windows = all_windows(real_codes)
    for t, p in itertools.product(temperatures, top_ps):
        gpt.temperature, gpt.top_p = float(t), p
        levels = gpt.generate(n, width=width, seed=seed, playable=False)
        table[f"T={t},top_p={p}"] = {
            "temperature": float(t),
            "top_p": p,
            **_validation_row(levels, gpt.vocab_, real_codes, real_windows),
        }
    rows = list(table.values())
    novel_ok = [r for r in rows if r["novel_windows"] >= GOALS["novel_windows"]]
    both = [r for r in novel_ok if r["playable"] >= GOALS["playable"]]
    if both:
        best = min(both, key=lambda r: r["tpkl_2x2"])
    elif novel_ok:
        best = max(novel_ok, key=lambda r: (r["playable"], -r["tpkl_2x2"]))
    else:
        best = max(rows, key=lambda r: r["novel_windows"])
    setting = {"temperature": best["temperature"], "top_p": best["top_p"]}
    gpt.temperature, gpt.top_p = setting["temperature"], setting["top_p"]
    return setting, table


def evaluate(
    data: Path | None = None,
    n: int = 1000,
    width: int = 150,
    n_independent: int = 200,
    vae_steps: int = 3000,
    gan_steps: int = 1000,
    seed: int = 0,
    blend: bool = True,
    n_filtered: int = 100,
    model: Path | None = None,
    heldout_folds: int = 0,
    heldout_n: int = 200,
    echo=print,
    gpt_steps: int = 800,
    gpt_model: Path | None = None,
) -> dict[str, Any]:
    """Run the whole protocol; returns the result dict (the keys the issue names, plus details).

    The headline figures are the raw model's (no A* latent search at the seams); the A*-checked stitching
    (a product option, ``generate(playable=True)``) is reported apart on ``n_filtered`` segments. With
    ``model`` (a saved :class:`LevelVAE` folder, trained on the same SMB levels) that VAE is evaluated
    instead of training one in the run (``vae_steps`` then only sizes the blend VAE and the fold VAEs).
    With ``heldout_folds`` K >= 2, :func:`heldout_tpkl` adds TPKL against held-out levels (K VAEs trained:
    about K times the VAE's training time; off by default). The level GPT (``gpt_steps`` > 0, or a saved
    :class:`LevelGPT` folder ``gpt_model``) is a compared model: its sampling chosen by
    :func:`choose_gpt_decoding`, its metrics under ``models.gpt`` (held out too when K >= 2)."""
    import torch

    from genforge.games.baselines import LevelGAN, MarkovColumns
    from genforge.games.level_gpt import LevelGPT
    from genforge.games.models import LevelVAE

    torch.set_num_threads(1)
    root = Path(data) if data else default_data_dir()
    smb_dir = root / "smb"
    if not smb_dir.is_dir():
        raise DataError(f"--data {root}: no 'smb' folder; expected the VGLC folder with smb/ and kid_icarus/")
    started = time.perf_counter()
    smb = read_game(smb_dir, game="smb")
    echo(f"checker validation on {len(smb)} SMB levels ...")
    checks = checker_validation(smb, seed=seed)
    if model is not None:
        echo(f"loading the level VAE from {model} ...")
        vae = LevelVAE.load(model)
        vae.decoding = "tiles"
        if vae.games_[0] != "smb":
            raise DataError(f"--model {model}: trained on {vae.games_}; expected a level VAE of SMB")
    else:
        echo(f"training the level VAE ({vae_steps} steps) ...")
        vae = LevelVAE(max_steps=vae_steps, hidden=(32, 64), seed=seed, progress=True).fit(smb)
    real_codes = [vae.vocab_.encode(lv.grid) for lv in smb]
    enc = vae.vocab_.encode
    setting, setting_table = choose_decoding(vae, real_codes, width=width)
    echo(f"decoding {setting} (validation segments: {setting_table})")
    echo(f"generating {n} VAE segments of {width} columns (raw: no A* search) ...")
    vae_levels = []
    for i in tqdm(range(n), desc="VAE levels"):
        vae_levels += vae.generate(1, width=width, seed=seed * 1_000_003 + i, playable=False)
    result: dict[str, Any] = {
        "data": str(root),
        "segments": n,
        "width": width,
        "seed": seed,
        "decoding": vae.decoding,
        **setting,
        "decoding_validation": setting_table,
    }
    result.update(level_metrics(vae_levels, real_codes, enc, n_independent, "VAE"))
    if n_filtered:
        filtered = [vae.generate(1, width=width, seed=seed * 1_000_003 + i)[0] for i in range(n_filtered)]
        result["playable_with_astar_search"] = float(
            np.mean([astar(lv.grid, lv.legend).playable for lv in filtered])
        )
    result.update(control_error(vae, seed=seed))
    echo("baselines: column Markov chain, core GAN ...")
    markov = MarkovColumns(order=2, seed=seed).fit(smb)
    gan = LevelGAN(max_steps=gan_steps, hidden=(32, 64), seed=seed, progress=True).fit(smb)
    baselines = {
        "markov": level_metrics(markov.generate(n, width, seed), real_codes, enc, n_independent, "Markov"),
        "gan": level_metrics(gan.generate(n, width, seed), real_codes, enc, n_independent, "GAN"),
    }
    result["baselines"] = baselines
    models: dict[str, dict[str, Any]] = {}
    gpt_setting = None
    if gpt_model is not None or gpt_steps:
        if gpt_model is not None:
            echo(f"loading the level GPT from {gpt_model} ...")
            gpt = LevelGPT.load(gpt_model)
            if gpt.games_[0] != "smb":
                raise DataError(
                    f"--gpt-model {gpt_model}: trained on {gpt.games_}; expected a level GPT of SMB"
                )
        else:
            echo(f"training the level GPT ({gpt_steps} steps) ...")
            gpt = LevelGPT(max_steps=gpt_steps, seed=seed, progress=True).fit(smb)
        gpt_setting, gpt_table = choose_gpt_decoding(gpt, real_codes, width=width)
        echo(f"GPT sampling {gpt_setting} (validation segments: {gpt_table})")
        gpt_levels = gpt.generate(n, width=width, seed=seed, playable=False)
        models["gpt"] = {
            **level_metrics(gpt_levels, real_codes, enc, n_independent, "GPT"),
            **gpt_setting,
            "sampling_validation": gpt_table,
            "max_steps": gpt.max_steps,
            "model": None if gpt_model is None else str(gpt_model),
        }
        result["models"] = models
    if heldout_folds:
        echo(f"held-out TPKL: {heldout_folds} level-wise folds, {heldout_n} segments per model ...")
        fold_gpt_steps = (gpt.max_steps if gpt_model is not None else gpt_steps) if "gpt" in models else 0
        held = heldout_tpkl(
            smb, heldout_folds, heldout_n, width, vae_steps, setting, seed, echo, fold_gpt_steps, gpt_setting
        )
        result["heldout"] = held
        for k in (2, 3):
            result[f"tpkl_heldout_{k}x{k}"] = held[f"vae_heldout_{k}x{k}"]
            baselines["markov"][f"tpkl_heldout_{k}x{k}"] = held[f"markov_heldout_{k}x{k}"]
            if "gpt" in models:
                models["gpt"][f"tpkl_heldout_{k}x{k}"] = held[f"gpt_heldout_{k}x{k}"]
        result["copier_tpkl_heldout_2x2"] = held["copier_heldout_2x2"]
    if blend:
        ki_dir = root / "kid_icarus"
        if ki_dir.is_dir():
            echo("training the blend VAE on SMB + Kid Icarus ...")
            both = smb + read_game(ki_dir, game="kid_icarus")
            # tile decoding: the column chain's bigrams keep each game's columns together, which in a
            # short test held blended windows near 50/50 whatever the weight
            blend_vae = LevelVAE(
                max_steps=vae_steps,
                hidden=(32, 64),
                seed=seed,
                condition_counts=False,
                decoding="tiles",
                progress=True,
            ).fit(both)
            result.update(blend_score(blend_vae, "kid_icarus", seed=seed))
    result["checkers"] = checks
    result["anchor"] = ANCHOR
    result["goals"] = {
        "playable": result["playable"] >= GOALS["playable"]
        and result["playable_independent"] >= GOALS["playable"],
        "tpkl_below_markov": result["tpkl_2x2"] < baselines["markov"]["tpkl_2x2"],
        "novel_windows": result["novel_windows"] >= GOALS["novel_windows"],
        "control_within_1": result["control_within_1"] >= GOALS["control_within_1"],
    }
    if heldout_folds:
        result["goals"]["tpkl_heldout_below_markov"] = (
            result["tpkl_heldout_2x2"] < baselines["markov"]["tpkl_heldout_2x2"]
        )
    if "gpt" in models:
        g = models["gpt"]
        g["goals"] = {
            "playable": g["playable"] >= GOALS["playable"] and g["playable_independent"] >= GOALS["playable"],
            "tpkl_below_markov": g["tpkl_2x2"] < baselines["markov"]["tpkl_2x2"],
            "novel_windows": g["novel_windows"] >= GOALS["novel_windows"],
        }
        if heldout_folds:
            g["goals"]["tpkl_heldout_below_markov"] = (
                g["tpkl_heldout_2x2"] < baselines["markov"]["tpkl_heldout_2x2"]
            )
    result["vae_steps"], result["gan_steps"] = vae.max_steps, gan_steps
    result["model"] = None if model is None else str(model)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def format_table(result: dict[str, Any]) -> str:
    rows = [("level VAE (ours)", result)] + [(f"level {k}", v) for k, v in result.get("models", {}).items()]
    rows += [(k, v) for k, v in result["baselines"].items()]
    keys = ("playable", "playable_independent", "novel_windows", "nn_distance", "tpkl_2x2", "tpkl_3x3")
    lines = [f"{'model':<18}" + "".join(f"{k:>22}" for k in keys)]
    for name, row in rows:
        lines.append(f"{name:<18}" + "".join(f"{row.get(k, float('nan')):>22.3f}" for k in keys))
    lines.append(f"{'anchor: MarioGPT':<18}{ANCHOR['playable']:>22.3f}")
    lines.append(
        f"control within +-1: {result.get('control_within_1', float('nan')):.3f}; "
        f"blend score: {result.get('blend_score', float('nan')):.3f}"
    )
    c = result["checkers"]
    lines.append(
        f"checkers: real levels pass A* {c['real_pass_astar']:.2f}, "
        f"ballistic {c['real_pass_ballistic']:.2f}; "
        f"negative controls pass {c['negative_controls_pass']}; column-shuffled pass A* "
        f"{c['shuffled_pass_astar']:.2f}, ballistic {c['shuffled_pass_ballistic']:.2f}"
    )
    if "heldout" in result:
        h = result["heldout"]
        lines.append(
            f"held-out TPKL 2x2 / 3x3 ({h['folds']} level-wise folds, {h['segments']} segments): VAE "
            f"{h['vae_heldout_2x2']:.3f} / {h['vae_heldout_3x3']:.3f}, "
            f"Markov {h['markov_heldout_2x2']:.3f} / {h['markov_heldout_3x3']:.3f}, "
            + (
                f"GPT {h['gpt_heldout_2x2']:.3f} / {h['gpt_heldout_3x3']:.3f}, "
                if "gpt_heldout_2x2" in h
                else ""
            )
            + f"training levels themselves {h['copier_heldout_2x2']:.3f} / "
            f"{h['copier_heldout_3x3']:.3f}"
        )
    lines.append(f"goals met: {result['goals']}")
    return "\n".join(lines)
