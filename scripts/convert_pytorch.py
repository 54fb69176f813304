#!/usr/bin/env python3
"""Convert a PyTorch checkpoint into a simdnn weights file (safetensors).

simdnn names its parameters after torchvision's module paths, so a torchvision
state_dict (or one of a model written the same way) loads as it is: this script
only cleans the checkpoint up and records what simdnn needs to rebuild the
network in the file's metadata.

Usage:
    python3 scripts/convert_pytorch.py MODEL CHECKPOINT OUT.safetensors \
        [--in-channels C] [--classes N] [--input H W] [--option NAME=VALUE ...] \
        [--dtype f32|f16|bf16]

    # e.g. torchvision's pretrained ResNet-50:
    python3 scripts/convert_pytorch.py resnet50 resnet50-0676ba61.pth resnet50.safetensors
    simdnn infer resnet50 --weights resnet50.safetensors --input x.safetensors --output y.safetensors

The checkpoint is read with ``torch.load(weights_only=True)``. It may be a bare
state_dict or a dict holding one under "state_dict" or "model"; a leading
"module." (DataParallel) is stripped from the names. Batch-norm
"num_batches_tracked" counters are dropped, floating tensors are cast to the
requested dtype (float32 by default) and made contiguous; any other tensor is
an error.

When not given, the classes are the first dimension of the last 2-D or 4-D
".weight" tensor (the classifier), the input channels the second dimension of
the first 4-D ".weight" tensor (the first convolution), and the input size the
model's native one. The metadata written: "model", "in_channels", "classes",
"input" ("HxW"), and one key per --option (model options such as LeNet-5's
"activation" and "pooling"). The file is written atomically.

The helpers ``load_state_dict`` and ``write_safetensors`` are also used by the
other scripts in this directory.
"""

import argparse
import json
import os
import pickle
import sys
import tempfile

import torch
from safetensors.torch import save_file

# The registered models and their native input (height, width); see
# models/src/registry.rs.
NATIVE_INPUT = {
    "lenet5": (32, 32),
    "lenet5-paper": (32, 32),
    "alexnet": (227, 227),
    "alexnet-grouped": (227, 227),
    "alexnet-torchvision": (224, 224),
    **{f"vgg{d}{bn}": (224, 224) for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{d}": (224, 224) for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": (224, 224) for d in (121, 169, 201, 264)},
    "squeezenet1_0": (224, 224),
    "squeezenet1_1": (224, 224),
    "squeezenodule_v1": (64, 64),
    "squeezenodule_v2": (64, 64),
}

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


class ConversionError(Exception):
    """A checkpoint that cannot be converted (reported without a traceback)."""


def load_state_dict(path):
    """The checkpoint's tensors by name, "module." stripped, counters dropped."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConversionError(
            f"{path}: holds Python objects besides tensors (a whole nn.Module?), which a weights-only "
            "load refuses; load it in Python and torch.save(model.state_dict()) instead"
        ) from e
    except Exception as e:  # not a zip or pickle file, truncated, ...
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {message})") from e
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise ConversionError(f"{path}: holds no state_dict (found {type(checkpoint).__name__})")
    state = {}
    for name, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("num_batches_tracked"):
            continue
        state[name] = value
    return state


def cast(state, dtype=torch.float32):
    """Every tensor as a contiguous `dtype` tensor; non-floating tensors are an error."""
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise ConversionError(f"tensor {name!r} is {tensor.dtype}, not a floating-point tensor")
        # clone: safetensors refuses tensors that share storage.
        out[name] = tensor.detach().to(dtype).contiguous().clone()
    return out


def infer_classes(state):
    """The first dimension of the last 2-D or 4-D weight (the classifier's outputs)."""
    weights = [t for n, t in state.items() if n.endswith(".weight") and t.dim() in (2, 4)]
    if not weights:
        raise ConversionError("no 2-D or 4-D weight to infer the classes from; give --classes")
    return weights[-1].shape[0]


def infer_in_channels(state):
    """The second dimension of the first 4-D weight (the first convolution's inputs)."""
    for name, tensor in state.items():
        if name.endswith(".weight") and tensor.dim() == 4:
            return tensor.shape[1]
    raise ConversionError("no convolution weight to infer the input channels from; give --in-channels")


def metadata(model, in_channels, classes, input_hw, options=()):
    """simdnn's metadata: every value a string."""
    meta = {
        "model": model,
        "in_channels": str(in_channels),
        "classes": str(classes),
        "input": f"{input_hw[0]}x{input_hw[1]}",
    }
    meta.update((k, str(v)) for k, v in options)
    return meta


def _sort_metadata(path):
    """Rewrites the header of safetensors file `path` in place with its metadata keys
    sorted (safetensors writes them in hash order), so that the same tensors and metadata
    always make the same bytes. The header keeps its length (it is padded with spaces)."""
    with open(path, "r+b") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= length:
            f.seek(8)
            f.write(text.ljust(length, b" "))


def write_safetensors(path, tensors, meta=None):
    """Writes `tensors` (name -> tensor) with `meta` to `path` atomically, with the
    permissions of a new file and its metadata keys sorted."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        _sort_metadata(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def parse_option(text):
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="simdnn model name, e.g. resnet50 (see `simdnn summary --help`)")
    parser.add_argument("checkpoint", help="PyTorch checkpoint (.pth, .pt)")
    parser.add_argument("output", help="simdnn weights file to write (.safetensors)")
    parser.add_argument("--in-channels", type=int, help="input channels [default: from the first convolution]")
    parser.add_argument("--classes", type=int, help="classes [default: from the last layer's weight]")
    parser.add_argument("--input", type=int, nargs=2, metavar=("H", "W"),
                        help="input height and width [default: the model's native size]")
    parser.add_argument("--option", type=parse_option, action="append", default=[], metavar="NAME=VALUE",
                        help="a model option to record, e.g. activation=tanh (repeatable)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="stored dtype [default: f32]")
    args = parser.parse_args(argv)

    try:
        if args.model not in NATIVE_INPUT:
            raise ConversionError(f"unknown model {args.model!r}; known: {', '.join(NATIVE_INPUT)}")
        for what, n in (("--in-channels", args.in_channels), ("--classes", args.classes)):
            if n is not None and n < 1:
                raise ConversionError(f"{what} must be at least 1")
        if args.input is not None and min(args.input) < 1:
            raise ConversionError("--input sizes must be at least 1")
        state = cast(load_state_dict(args.checkpoint), DTYPES[args.dtype])
        in_channels = args.in_channels or infer_in_channels(state)
        classes = args.classes or infer_classes(state)
        input_hw = tuple(args.input) if args.input else NATIVE_INPUT[args.model]
        meta = metadata(args.model, in_channels, classes, input_hw, args.option)
        write_safetensors(args.output, state, meta)
    except (ConversionError, OSError) as e:
        print(f"convert_pytorch: error: {e}", file=sys.stderr)
        return 1
    params = sum(t.numel() for t in state.values())
    print(f"{args.output}: {args.model}, {len(state)} tensors, {params:,} values ({args.dtype}), "
          f"{in_channels} channels, {classes} classes, input {input_hw[0]}x{input_hw[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
