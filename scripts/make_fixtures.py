#!/usr/bin/env python3
"""Write the PyTorch reference fixtures of `simdnn infer`'s tests.

For each fixture model this writes two files under the output directory
(default tests/fixtures):

- MODEL.safetensors: seeded random weights with simdnn's metadata ("model",
  "in_channels", "classes", "input", and the model's options), as
  scripts/convert_pytorch.py would write them;
- MODEL.io.safetensors: float32 tensors "input" (a seeded random batch) and
  "output" (PyTorch's logits for it, computed in float32).

The fixtures:

- lenet5: 1 channel, 32x32, 10 classes, the default options (ReLU, max
  pooling), float32 weights; input [2, 1, 32, 32];
- squeezenet1_1: 3 channels, 64x64, 10 classes, weights stored as float16 to
  halve the file; the reference runs with those float16 values widened back to
  float32, so the engine, which widens them the same way, sees the very same
  weights; input [2, 3, 64, 64].

The networks are compare_pytorch.py's references, their weights drawn by its
`randomise` (no batch norm in either model). The same seed writes the same
files.

Usage:
    python3 scripts/make_fixtures.py [--out tests/fixtures] [--seed 2026]
    simdnn infer lenet5 --weights tests/fixtures/lenet5.safetensors \
        --input tests/fixtures/lenet5.io.safetensors --output /tmp/y.safetensors
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file

from compare_pytorch import build_reference, case_seed, randomise, weights_of
from convert_pytorch import metadata, write_safetensors

# name: (in_channels, classes, (h, w), options, stored dtype, batch)
FIXTURES = {
    "lenet5": (1, 10, (32, 32), {"activation": "relu", "pooling": "max"}, torch.float32, 2),
    "squeezenet1_1": (3, 10, (64, 64), {}, torch.float16, 2),
}


def make_fixture(name, out_dir, seed):
    """Writes NAME.safetensors and NAME.io.safetensors; returns their paths."""
    in_channels, classes, input_hw, options, dtype, batch = FIXTURES[name]
    net = randomise(build_reference(name, in_channels, classes, input_hw, options), seed)
    stored = {k: v.to(dtype) for k, v in weights_of(net).items()}
    # The reference uses exactly the stored values, widened to float32.
    net.load_state_dict({k: v.float() for k, v in stored.items()})
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, in_channels, *input_hw, generator=g)
    with torch.no_grad():
        y = net.float().eval()(x)

    weights_path = os.path.join(out_dir, f"{name}.safetensors")
    io_path = os.path.join(out_dir, f"{name}.io.safetensors")
    write_safetensors(weights_path, stored, metadata(name, in_channels, classes, input_hw, options.items()))
    write_safetensors(
        io_path,
        {"input": x.contiguous(), "output": y.contiguous()},
        {"model": name, "reference": f"PyTorch {torch.__version__}, float32"},
    )
    # Read back: what the tests will see.
    assert all(torch.equal(v, stored[k]) for k, v in load_file(weights_path).items())
    return weights_path, io_path, x.shape, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tests/fixtures", help="output directory [default: tests/fixtures]")
    parser.add_argument("--seed", type=int, default=2026, help="seed of weights and inputs [default: 2026]")
    parser.add_argument("--only", choices=sorted(FIXTURES), action="append", help="write only this fixture")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same summation order, hence bit-identical outputs, every run
    for name in args.only or FIXTURES:
        weights_path, io_path, shape, y = make_fixture(name, args.out, case_seed(args.seed, name))
        size = os.path.getsize(weights_path)
        print(f"{weights_path} ({size:,} bytes), {io_path}: input {list(shape)}, output {list(y.shape)}, "
              f"max |logit| {y.abs().max().item():.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
