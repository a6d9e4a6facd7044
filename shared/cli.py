"""The ``genforge`` command: train, sample, demo, dashboard, info, plus one sub-command per suite.

Suites plug in through entry points of group ``genforge.suites`` (name -> a typer app), so the core
never imports a suite by name; a suite that fails to import costs a warning line, not the command.

Expected mistakes (a missing file, a bad option, a corrupt checkpoint) end as one line on stderr,
``error: ...``, and exit code 2, without a traceback. ``python -m genforge`` runs the same entry
point, so ``torchrun -m genforge train ...`` trains with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import typer

try:  # typer >= 0.22 vendors click as typer._click; older versions raise click's own exceptions
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as _click_errors
from genforge.errors import GenforgeError

RECIPE_FILE = "recipe.json"  # written by `genforge train` beside the checkpoint: how to decode samples
RANK_HASH_ENV = "GENFORGE_DEBUG_RANK_HASH"  # folder: each rank writes rank<r>.sha256 of its weights

app = typer.Typer(
    name="genforge",
    help=(
        "Generative models (VAE, GAN, transformer, diffusion) at work for industries.\n\n"
        "Start with `genforge demo` (trains all four families on real data in a few minutes), "
        "then `genforge train` / `genforge sample` on your own data, and `genforge dashboard`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

SUITE_STATUS: dict[str, str] = {}  # suite name -> "loaded" or the one-line reason it failed


class Family(StrEnum):
    vae = "vae"
    gan = "gan"
    transformer = "transformer"
    diffusion = "diffusion"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _positive(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _echo(message: str) -> None:
    if _rank() == 0:
        typer.echo(message)


# ============================================================================== info
def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON.")) -> None:
    """Versions, devices and installed suites.

    Example: `genforge info --json`
    """
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "genforge": _version("genforge"),
        "versions": {d: _version(d) for d in ("torch", "numpy", "pandas", "scikit-learn", "safetensors",
                                              "typer", "streamlit", "tokenizers")},
        "devices": devices,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "suites": dict(SUITE_STATUS),
    }
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(f"genforge {facts['genforge']}  (python {facts['python']}, {facts['platform']})")
    for name, ver in facts["versions"].items():
        typer.echo(f"  {name:<13} {ver}")
    typer.echo(f"devices: {', '.join(devices)}  ({facts['cpu_cores']} CPU cores, "
               f"{facts['torch_threads']} torch threads)")
    suites = ", ".join(f"{k} ({v})" for k, v in SUITE_STATUS.items()) or "none"
    typer.echo(f"suites: {suites}")


# ============================================================================== train
@app.command()
def train(
    family: Family = typer.Argument(..., help="Model family: vae, gan, transformer or diffusion."),
    dataset: str = typer.Option(..., "--dataset", "-d",
                                help="'digits', 'shakespeare', or a file: .txt (text), .csv/.parquet "
                                     "(numeric table), .npy ([N,F] table or [N,H,W] images)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for checkpoints and the final model."),
    steps: int = typer.Option(None, "--steps", min=1, help="Training steps (default: the recipe's)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Batch size (default: the recipe's)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (> 0).", callback=_positive),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same weights on CPU."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", min=1,
                                         help="Write a resumable checkpoint every N steps."),
    checkpoint_seconds: float = typer.Option(60.0, "--checkpoint-seconds", callback=_positive,
                                             help="Also write one after this many seconds of training, "
                                                  "so a crash loses at most that much."),
    val_every: int = typer.Option(None, "--val-every", min=1, help="Validate every N steps."),
    device: Device = typer.Option(Device.auto, "--device", help="auto = cuda > mps > cpu."),
    play: str = typer.Option("hamlet", "--play",
                             help="Which Shakespeare play (dataset shakespeare), e.g. hamlet, macbeth, "
                                  "king-lear."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Continue from the checkpoint in --out if there is one."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace whatever --out holds (another model, other settings)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model of one family on a data set; rerun the same command to resume.

    A folder holding anything else (another model, a run with other settings) is refused unless
    `--overwrite` is given; a checkpoint is written at least every `--checkpoint-seconds` of training.

    Examples:

    * `genforge train vae --dataset digits --out runs/vae --steps 2000`

    * `genforge train transformer --dataset shakespeare --out runs/gpt --checkpoint-every 200`

    * `genforge train gan --dataset prices.csv --out runs/gan`

    * `torchrun --standalone --nproc_per_node=2 -m genforge train vae --dataset digits --out runs/ddp`

    Then: `genforge sample --model runs/vae`.
    """
    import torch

    from genforge import recipes
    from genforge.datasets import load_dataset, prepare
    from genforge.io import write_json_atomic
    from genforge.outputs import check_writable, output_job
    from genforge.training.engine import STATE_FILE

    fam = family.value
    check_writable(out, "--out", folder=True)  # before any work
    data = load_dataset(dataset, play=play)  # fails before anything is written
    prepared = prepare(fam, data, seed=seed)

    settings = recipes.train_settings(fam)
    overrides = {"max_steps": steps, "batch_size": batch_size, "lr": lr, "val_every": val_every,
                 "checkpoint_every": checkpoint_every, "checkpoint_seconds": checkpoint_seconds}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings.update(seed=seed, out_dir=str(out), resume=resume, progress=progress, device=device.value)
    if prepared.val is None:
        settings.pop("val_every", None)
    _check_batch_size(settings["batch_size"], prepared)
    # what makes two runs the same job: resuming with any of these changed would mix two runs
    job = {"dataset": dataset, "play": play if data.meta["name"] == "shakespeare" else None,
           **{k: v for k, v in settings.items() if k not in _RESUMABLE_ANYWHERE}}

    torch.manual_seed(seed)
    model = recipes.build_model(fam, prepared.meta)
    main_rank = _rank() == 0
    guard = (output_job(out, f"genforge train {fam}", job, overwrite=overwrite, resume=resume,
                        keep=lambda folder: (folder / STATE_FILE).is_file())
             if main_rank else contextlib.nullcontext(False))
    with guard:
        if main_rank:
            recipe = {"family": fam, "dataset": dataset, "meta": prepared.meta,
                      "train": {k: v for k, v in settings.items() if k != "out_dir"}}
            write_json_atomic(out / RECIPE_FILE, recipe)
        start_step = _checkpoint_step(out) if resume else None
        if start_step:
            _echo(f"resuming from step {start_step} (checkpoint in {out})")
        result = recipes.train(model, prepared, **settings)
    model = model.cpu()
    _write_rank_hash(model)
    if main_rank:
        import genforge
        from genforge.checkpoints import load_extra

        trainer_info = load_extra(out).get("trainer", {}) if (out / "config.json").is_file() else {}
        genforge.save(model, out, extra={**prepared.meta, "trainer": trainer_info})
        summary = _result_summary(result)
        _echo(f"trained {fam} on {data.meta['name']}: {summary}")
        _echo(f"model saved to {out}  (next: genforge sample --model {out})")


# settings that may change between a run and its resumption without mixing two runs (max_steps: a rerun
# with more steps trains on, the common way to extend a run)
_RESUMABLE_ANYWHERE = ("out_dir", "resume", "progress", "device", "checkpoint_every", "checkpoint_seconds",
                       "max_steps")


def _check_batch_size(batch_size: int, prepared: Any) -> None:
    """--batch-size must fit the training split (the engine drops incomplete batches)."""
    from genforge.training.engine import as_dataset

    n = len(as_dataset(prepared.train, "train_data"))
    if batch_size > n:
        raise GenforgeError(f"--batch-size {batch_size}: the training split has only {n} examples; "
                            f"expected at most {n}")


def _checkpoint_step(out: Path) -> int | None:
    """The step of the resumable trainer state in ``out`` (None if there is none)."""
    from genforge.training.engine import STATE_FILE
    from genforge.training.state import read_trainer_state

    path = out / STATE_FILE
    if not path.is_file():
        return None
    return int(read_trainer_state(path)["step"])  # a corrupt file is a CheckpointError: one line, exit 2


def _result_summary(result: Any) -> str:
    parts = [f"{getattr(result, 'steps', '?')} steps"]
    history = getattr(result, "history", None) or []
    if history and isinstance(history[-1], dict) and "loss" in history[-1]:
        parts.append(f"final loss {float(history[-1]['loss']):.4f}")
    best = getattr(result, "best_val_loss", None)
    if best is not None:
        parts.append(f"best validation loss {float(best):.4f}")
    seconds = getattr(result, "seconds", None)
    if seconds is not None:
        parts.append(f"{float(seconds):.1f} s")
    return ", ".join(parts)


def _write_rank_hash(model: Any) -> None:
    """Debug aid for distributed tests: each rank writes a SHA-256 of its weights.

    The folder is ``$GENFORGE_DEBUG_RANK_HASH``; the file ``rank<r>.sha256``.
    """
    folder = os.environ.get(RANK_HASH_ENV)
    if not folder:
        return
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    from genforge.io import write_text_atomic

    write_text_atomic(Path(folder) / f"rank{_rank()}.sha256", digest.hexdigest() + "\n")


# ============================================================================== sample
@app.command()
def sample(
    model: Path = typer.Option(..., "--model", "-m",
                               help="A folder written by genforge train or genforge demo."),
    n: int = typer.Option(16, "-n", min=1, help="How many samples (images are drawn class by class)."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Output file (.png/.txt/.csv) or folder (default: the model folder)."),
    steps: int = typer.Option(50, "--steps", min=1, help="Diffusion: DDIM sampling steps."),
    guidance: float = typer.Option(2.0, "--guidance", min=0.0, help="Diffusion: classifier-free guidance."),
    prompt: str = typer.Option(None, "--prompt", help="Text: the start of the generated text."),
    max_new_tokens: int = typer.Option(300, "--max-new-tokens", min=1, help="Text: characters to generate."),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="Text: 0 = greedy."),
    top_k: int = typer.Option(None, "--top-k", min=1, help="Text: keep the k most likely tokens."),
    top_p: float = typer.Option(None, "--top-p", max=1.0, callback=_positive,
                                help="Text: nucleus probability mass, in (0, 1]."),
    seed: int = typer.Option(0, "--seed", help="Seed for reproducible samples."),
) -> None:
    """Draw samples from a trained model: image grids as PNG, text as .txt, tables as CSV.

    Examples:

    * `genforge sample --model runs/vae -n 100 --out vae.png`

    * `genforge sample --model runs/diffusion --steps 50 --guidance 3`

    * `genforge sample --model runs/gpt --prompt "ROMEO." --max-new-tokens 500 --top-k 20`
    """
    import genforge
    from genforge import recipes
    from genforge.outputs import check_writable

    if not model.is_dir():
        raise GenforgeError(f"--model {model}: no such folder; expected one written by genforge train")
    if out is not None:  # before any work: a read-only place or a parent that is a file is one line
        check_writable(out, "--out", folder=not out.suffix)
    net = genforge.load(model)
    meta = _recipe_meta(model)
    samples = recipes.draw_samples(net, meta, n, steps=steps, guidance_scale=guidance, prompt=prompt,
                                max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                top_p=top_p, seed=seed)
    target = _sample_path(out, model, samples.kind)
    path = recipes.save_samples(samples, target)
    if samples.kind == "text":
        typer.echo(samples.texts[0])
    typer.echo(f"wrote {n} samples to {path}")


def _recipe_meta(model_dir: Path) -> dict[str, Any]:
    """How to decode the model's outputs: the checkpoint's ``extra``, else ``recipe.json``."""
    from genforge.checkpoints import load_extra

    meta = load_extra(model_dir) or {}
    if "family" not in meta and (model_dir / RECIPE_FILE).is_file():
        meta = json.loads((model_dir / RECIPE_FILE).read_text()).get("meta", {})
    if "family" not in meta:
        raise GenforgeError(f"{model_dir / 'config.json'}: no genforge recipe metadata; expected a model "
                            "folder written by genforge train or genforge demo")
    return meta


_SUFFIX = {"image": ".png", "text": ".txt", "table": ".csv"}


def _sample_path(out: Path | None, model_dir: Path, kind: str) -> Path:
    wanted = _SUFFIX[kind]
    if out is None:
        return model_dir / f"samples{wanted}"
    if out.suffix:
        if out.suffix.lower() != wanted:
            raise GenforgeError(f"--out {out}: this model makes {kind} samples; expected a {wanted} file")
        return out
    return out / f"samples{wanted}"


# ============================================================================== demo
@app.command("demo")
def demo_command(
    out: Path = typer.Option(None, "--out", "-o",
                             help="Results folder (default: $GENFORGE_RESULTS or ./genforge-results, "
                                  "/demo-<timestamp>)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny step counts: checks the pipeline in seconds."),
    suite: list[str] = typer.Option(None, "--suite", help="Run only these suites' demos (repeatable)."),
    no_suites: bool = typer.Option(False, "--no-suites", help="Skip the suites' demos."),
    family: list[Family] = typer.Option(None, "--family", help="Run only these families (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed for data splits, weights and samples."),
) -> None:
    """Train all four families on real embedded data, measure them, and write a results folder.

    Digits (scikit-learn): a conditional VAE, a conditional GAN and a class-conditional diffusion
    model, each scored by a digit classifier trained on real digits. Shakespeare: a character GPT,
    validation loss vs the unigram entropy. Then every installed suite's demo.

    Examples:

    * `genforge demo` (a few minutes on 2 CPU cores)

    * `genforge demo --quick --out /tmp/demo --no-suites` (seconds: checks the pipeline)

    * `genforge demo --family diffusion --suite ecg`
    """
    from genforge import demo
    from genforge.recipes import FAMILIES

    installed = list(demo.installed_suites())
    unknown = sorted(set(suite or []) - set(installed))
    if unknown:
        known = ", ".join(installed) or "none"
        raise GenforgeError(f"--suite {unknown[0]}: not installed; installed: {known}")
    suites = [] if no_suites else (list(suite) if suite else None)
    target = out if out is not None else demo.default_out_dir()
    typer.echo(f"genforge demo -> {target}")
    families = tuple(f.value for f in family) if family else FAMILIES
    metrics = demo.run(target, quick=quick, families=families, suites=suites, seed=seed, echo=typer.echo)
    typer.echo(f"results: {target}  (report.md, metrics.json; view them with `genforge dashboard`)")
    if metrics["failures"]:
        for line in metrics["failures"]:
            typer.echo(f"failed: {line}", err=True)
        raise typer.Exit(1)


# ============================================================================== dashboard
def dashboard_app_path() -> Path:
    """The dashboard's Streamlit script, from the app registered under ``genforge.apps``."""
    from genforge.suite import app_launcher

    launcher = app_launcher("dashboard")
    if launcher is None:
        raise GenforgeError("no dashboard is installed (entry point group 'genforge.apps', name "
                            "'dashboard'); reinstall genforge")
    return Path(launcher())


@app.command()
def dashboard(
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve on."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to bind (0.0.0.0 for all)."),
    results: Path = typer.Option(None, "--results", help="Folder of demo results to show."),
) -> None:
    """Open the Streamlit dashboard (headless: browse to the printed URL).

    Example: `genforge dashboard --port 8502 --results genforge-results`
    """
    import signal

    env = dict(os.environ)
    if results is not None:
        env["GENFORGE_RESULTS"] = str(results.resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(dashboard_app_path()), "--server.headless", "true",
           "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "minimal"]
    typer.echo(f"genforge dashboard at http://{address}:{port}  (Ctrl+C to stop)")
    child = subprocess.Popen(cmd, env=env)

    def stop(signum: int, _frame: Any) -> None:  # SIGTERM/SIGHUP to us stops the server too
        child.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        code = 0
    finally:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code and code != -signal.SIGTERM:
        raise typer.Exit(code)


# ============================================================================== suites
def register_suites(target: typer.Typer) -> None:
    """Add every installed suite's typer app (from its ``genforge.suite.Suite``) as a sub-command.

    A suite that fails to load costs a warning line and its status in ``genforge info``, not the command.
    """
    from genforge.suite import discover

    for status in discover():
        try:
            if status.suite is None:
                raise RuntimeError(status.error)
            sub = status.suite.load_cli()
            if not isinstance(sub, typer.Typer):
                raise TypeError(f"{status.suite.cli} is a {type(sub).__name__}, expected a typer.Typer")
        except Exception as exc:  # noqa: BLE001 - any import failure of a plug-in is reported, not fatal
            reason = str(exc) if status.suite is None else f"{type(exc).__name__}: {exc}"
            SUITE_STATUS[status.name] = f"failed: {reason}"
            if _rank() == 0:
                print(f"warning: suite {status.name!r} not loaded ({reason})", file=sys.stderr)
            continue
        summary = status.suite.summary
        target.add_typer(sub, name=status.name, help=summary[:1].upper() + summary[1:] + ".")
        SUITE_STATUS[status.name] = "loaded"


register_suites(app)


# ============================================================================== entry point
def _error(message: str) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())


def _finite_numbers(command: Any) -> None:
    """Every number option and argument of every (sub-)command refuses NaN and infinity.

    One rule for the whole command tree, suites included (a NaN threshold compares false with everything
    and would silently flag nothing): each parameter's value processing is wrapped once per process.
    """
    import math

    for param in getattr(command, "params", []):
        if getattr(param, "_genforge_finite", False) or not hasattr(param, "process_value"):
            continue

        def checked(ctx: Any, value: Any, _original: Any = param.process_value, _param: Any = param) -> Any:
            value = _original(ctx, value)
            for item in value if isinstance(value, list | tuple) else (value,):
                if isinstance(item, float) and not math.isfinite(item):
                    raise _click_errors.BadParameter(f"{item} is not a finite number; expected a real value",
                                                     ctx=ctx, param=_param)
            return value

        param.process_value = checked
        param._genforge_finite = True
    for sub in getattr(command, "commands", {}).values():
        _finite_numbers(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected mistakes become ``error: ...`` on stderr and exit code 2."""
    try:
        command = typer.main.get_command(app)
        _finite_numbers(command)
        result = command.main(args=argv, prog_name="genforge", standalone_mode=False)
    except _NoArgsIsHelp as exc:
        exc.show()
        return 0
    except _click_errors.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(exc.format_message() + hint)
        return 2
    except _click_errors.ClickException as exc:
        _error(exc.format_message())
        return 2
    except GenforgeError as exc:
        _error(str(exc))
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _error("interrupted")
        return 130
    return result if isinstance(result, int) else 0
