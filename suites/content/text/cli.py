"""``genforge content text ...``: train a GPT on your documents, generate (streaming), batch-generate.

Imports are lazy so that ``genforge --help`` stays fast; expected mistakes raise ``GenforgeError`` (the
core CLI prints one ``error:`` line and exits with code 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(
    help="Text in your house style: a GPT trained on your .txt/.md files.",
    no_args_is_help=True,
    add_completion=False,
)

TEMPERATURE = typer.Option(0.8, "--temperature", help="Sampling temperature (0 = greedy)")
TOP_K = typer.Option(None, "--top-k", help="Keep only the k most likely tokens")
TOP_P = typer.Option(None, "--top-p", help="Nucleus sampling: keep the smallest set with this mass")
REPETITION = typer.Option(1.0, "--repetition-penalty", help="> 1 discourages repeating tokens (CTRL)")
STOP = typer.Option(None, "--stop", help="Stop string (repeatable); generation ends before it")
MAX_NEW = typer.Option(300, "--max-new-tokens", help="Tokens to generate")
SEED = typer.Option(0, "--seed", help="Random seed of the sampler")


def _load(model: Path):
    from genforge.content.text.models import TextGenerator

    return TextGenerator.load(model)


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="Folder of .txt/.md files, or one text file"),
    out: Path = typer.Option(..., "--out", help="Model folder to write (training resumes from it)"),
    tokenizer: str = typer.Option("char", "--tokenizer", help="char or bpe (trained on your corpus)"),
    bpe_vocab_size: int = typer.Option(1000, "--bpe-vocab-size", help="BPE vocabulary size"),
    max_steps: int = typer.Option(2000, "--max-steps", help="Training steps (batches)"),
    block_size: int = typer.Option(64, "--block-size", help="Context length in tokens"),
    n_layer: int = typer.Option(4, "--n-layer"),
    n_head: int = typer.Option(4, "--n-head"),
    n_embd: int = typer.Option(128, "--n-embd"),
    batch_size: int = typer.Option(12, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate"),
    seed: int = typer.Option(1337, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps"),
) -> None:
    """Train on your documents; an interrupted run resumes when started again with the same --out.

    Example: genforge content text train --data docs/ --out models/house-style --max-steps 2000
    """
    from genforge.content.text.data import read_corpus
    from genforge.content.text.models import TextGenerator

    if tokenizer not in ("char", "bpe"):
        raise typer.BadParameter(f"{tokenizer!r}; expected char or bpe", param_hint="--tokenizer")
    docs = read_corpus(data)
    est = TextGenerator(
        tokenizer=tokenizer,
        bpe_vocab_size=bpe_vocab_size,
        max_steps=max_steps,
        block_size=block_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
    )
    est.fit(docs, out_dir=out / "checkpoints")
    est.save(out)
    val = f"{est.val_loss_:.4f}" if est.val_loss_ is not None else "n/a"
    typer.echo(
        f"trained on {len(docs)} document(s), {est.num_parameters() / 1e6:.2f}M parameters; "
        f"validation loss {val} nats/token; model in {out}"
    )


@app.command()
def generate(
    model: Path = typer.Option(..., "--model", help="Model folder written by 'text train'"),
    prompt: str = typer.Option("\n", "--prompt", help="Text to continue"),
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    repetition_penalty: float = REPETITION,
    stop: list[str] = STOP,
    stream: bool = typer.Option(False, "--stream", help="Print the text as it is generated"),
    seed: int = SEED,
) -> None:
    """Continue a prompt.

    Example: genforge content text generate --model models/house-style --prompt "Dear" --stream --top-p 0.9
    """
    est = _load(model)
    pieces = est.stream(
        prompt,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        stop=stop or (),
        seed=seed,
    )
    sys.stdout.write(prompt)
    if stream:
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
    else:
        sys.stdout.write("".join(pieces))
    sys.stdout.write("\n")


@app.command()
def batch(
    model: Path = typer.Option(..., "--model", help="Model folder written by 'text train'"),
    prompts: Path = typer.Option(..., "--prompts", help="Text file, one prompt per line ('\\n' = newline)"),
    out: Path = typer.Option(..., "--out", help="JSONL file to write: one {prompt, text} per line"),
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    repetition_penalty: float = REPETITION,
    stop: list[str] = STOP,
    seed: int = SEED,
) -> None:
    """Generate for every prompt of a file, written atomically as JSONL.

    Example: genforge content text batch --model models/house-style --prompts prompts.txt --out drafts.jsonl
    """
    from tqdm.auto import tqdm

    from genforge.content.text.data import read_prompts
    from genforge.io import write_text_atomic

    items = read_prompts(prompts)
    est = _load(model)
    lines = []
    for i, p in enumerate(tqdm(items, desc="prompts", disable=None, file=sys.stderr)):
        text = est.generate(
            p,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            stop=stop or (),
            seed=seed + i,
        )
        lines.append(json.dumps({"prompt": p, "text": text}, ensure_ascii=False))
    write_text_atomic(out, "\n".join(lines) + "\n")
    typer.echo(f"{len(lines)} generations written to {out}")
