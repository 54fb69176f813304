#!/usr/bin/env python3
"""Peer benchmark: PyTorch's char-level LSTM language model, validation loss against wall time.

The PyTorch counterpart of simdnn's `charlm`, on the same data, split and model:
- data: a UTF-8 text file (--data, default ../shared/data/tinyshakespeare/input.txt from
  the repository root); the vocabulary is the sorted set of its distinct characters (by
  code point); the first floor(0.9 * len) characters train, the rest validate;
- model: nn.Embedding(vocab, 64) -> nn.LSTM(64, 256, num_layers=2, dropout=--dropout)
  -> nn.Linear(256, vocab), time-major;
- training (char-rnn convention, truncated BPTT): the training text is cut into B = 32
  contiguous streams (stream i = characters [i*L, (i+1)*L), L = len(train) // 32); each
  step takes the next --seq (100) characters of every stream as inputs and the characters
  one further on as targets (only whole windows: (L - 1) // seq steps per pass); the LSTM
  state is carried from step to step, detached, and reset to zero at the start of each pass;
  mean cross-entropy, Adam (lr --lr, 2e-3), gradient-norm clipping at --clip (5; 0 = none),
  torch.set_num_threads(--threads, 2);
- validation: the validation text cut into 32 contiguous streams the same way, run in
  windows of --seq carrying the state from zero (the last window shorter), mean
  cross-entropy in nats over every predicted character (32 * (Lv - 1) of them), in eval
  mode under no_grad.
The training clock runs only while training (validation is timed apart): validation runs
before the first step, every --eval-seconds of training time and at the end, after
--minutes of training. Each validation prints a JSON line {"train_seconds", "steps",
"val_loss_nats", "bits_per_char" (= val_loss_nats / ln 2), "epochs", "train_loss_nats"
(mean training loss since the previous line), "val_seconds"}; a last JSON line
{"summary": {...}} sums the run up. The output is JSON lines with or without --json
(accepted for symmetry with the other peer scripts); the setup goes to stderr.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (by re-executing
this script) before any library loads, as in gemm_numpy.py.

Usage:
    python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/charlm_peers.py                      # 8 minutes, 2 threads
    python3 benches/peers/charlm_peers.py --minutes 0.3 --eval-seconds 5 --threads 1
"""
import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _SCRUB):
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt"))


def load_text(path):
    """Returns (character ids as int64 tensor, vocabulary as a sorted list of characters)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    vocab = sorted(set(text))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    ids = np.searchsorted(np.array([ord(c) for c in vocab], dtype="<u4"), codes)
    return torch.from_numpy(ids.astype(np.int64)), vocab


def streams(ids, batch):
    """Cuts ids into `batch` contiguous streams of len // batch characters: [L, batch]."""
    length = len(ids) // batch
    if length < 2:
        raise SystemExit(f"text of {len(ids)} characters is too short for {batch} streams")
    return ids[: batch * length].view(batch, length).t().contiguous()


class CharLM(torch.nn.Module):
    def __init__(self, vocab, embed, hidden, layers, dropout):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embed(x), state)
        return self.head(y), state


def validate(model, val, seq):
    """Mean cross-entropy (nats) over every predicted character of the validation streams."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, val.shape[0] - 1, seq):
            end = min(start + seq, val.shape[0] - 1)
            logits, state = model(val[start:end], state)
            target = val[start + 1:end + 1]
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum").item()
            count += target.numel()
    model.train()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="UTF-8 text [default: ../shared/data/tinyshakespeare/input.txt]")
    p.add_argument("--minutes", type=float, default=8.0, help="training wall time [default: 8]")
    p.add_argument("--eval-seconds", type=float, default=30.0, help="training seconds between validations [default: 30]")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads [default: 2]")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate [default: 2e-3]")
    p.add_argument("--clip", type=float, default=5.0, help="gradient-norm clipping, 0 = none [default: 5]")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout between the LSTM layers [default: 0]")
    p.add_argument("--batch", type=int, default=32, help="streams [default: 32]")
    p.add_argument("--seq", type=int, default=100, help="characters per window (BPTT length) [default: 100]")
    p.add_argument("--embed", type=int, default=64, help="embedding width [default: 64]")
    p.add_argument("--hidden", type=int, default=256, help="LSTM hidden size [default: 256]")
    p.add_argument("--layers", type=int, default=2, help="LSTM layers [default: 2]")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed [default: 0]")
    p.add_argument("--json", action="store_true", help="accepted; the output is JSON lines anyway")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ids, vocab = load_text(args.data)
    n_train = len(ids) * 9 // 10  # floor(0.9 * len), exactly
    train, val = streams(ids[:n_train], args.batch), streams(ids[n_train:], args.batch)
    steps_per_pass = (train.shape[0] - 1) // args.seq
    if steps_per_pass < 1:
        raise SystemExit(f"training streams of {train.shape[0]} characters hold no window of {args.seq + 1}")
    model = CharLM(len(vocab), args.embed, args.hidden, args.layers, args.dropout)
    params = sum(t.numel() for t in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"# torch {torch.__version__}, {args.threads} threads; {args.data}: {len(ids)} characters, "
          f"vocabulary {len(vocab)}, train {n_train} ({args.batch} streams of {train.shape[0]}, "
          f"{steps_per_pass} steps of {args.seq} per pass), validation {len(ids) - n_train} "
          f"({args.batch} streams of {val.shape[0]}); {params} parameters", file=sys.stderr)

    limit, clock, steps, state = args.minutes * 60.0, 0.0, 0, None
    train_sum, train_n, best = 0.0, 0, math.inf
    start_wall = time.perf_counter()

    def evaluate():
        nonlocal train_sum, train_n, best
        t0 = time.perf_counter()
        loss = validate(model, val, args.seq)
        best = min(best, loss)
        print(json.dumps({"train_seconds": round(clock, 3), "steps": steps, "val_loss_nats": loss,
                          "bits_per_char": loss / math.log(2), "epochs": round(steps / steps_per_pass, 4),
                          "train_loss_nats": train_sum / train_n if train_n else None,
                          "val_seconds": round(time.perf_counter() - t0, 3)}), flush=True)
        train_sum, train_n = 0.0, 0
        return loss

    loss = evaluate()
    next_eval = args.eval_seconds
    while clock < limit:
        k = steps % steps_per_pass
        if k == 0:
            state = None  # a new pass over the training text
        t0 = time.perf_counter()
        x = train[k * args.seq:(k + 1) * args.seq]
        y = train[k * args.seq + 1:(k + 1) * args.seq + 1]
        logits, state = model(x, state)
        step_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        step_loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        state = tuple(s.detach() for s in state)
        train_sum += step_loss.item()
        clock += time.perf_counter() - t0
        train_n += 1
        steps += 1
        if clock >= next_eval and clock < limit:
            loss = evaluate()
            while next_eval <= clock:
                next_eval += args.eval_seconds
    if train_n:
        loss = evaluate()
    print(json.dumps({"summary": {
        "train_seconds": round(clock, 3), "steps": steps, "epochs": round(steps / steps_per_pass, 4),
        "val_loss_nats": loss, "bits_per_char": loss / math.log(2), "best_val_loss_nats": best,
        "train_chars_per_second": steps * args.seq * args.batch / clock if clock else None,
        "wall_seconds": round(time.perf_counter() - start_wall, 3), "parameters": params,
        "vocabulary": len(vocab), "threads": args.threads, "lr": args.lr, "clip": args.clip,
        "dropout": args.dropout, "batch": args.batch, "seq": args.seq, "torch": torch.__version__}}), flush=True)


if __name__ == "__main__":
    main()
