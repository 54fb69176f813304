#!/usr/bin/env python3
"""Check simdnn's model zoo against PyTorch, model by model.

For each registered model this script builds the same network in PyTorch
(torchvision's constructor where torchvision has the model; for LeNet-5, the
paper's LeNet-5, the ungrouped and grouped AlexNet and SqueezeNodule-Net, the
nn.Module definitions below, which replicate models/src/zoo/*.rs), gives it
seeded random weights (biases and batch-norm statistics included, so that no
layer is an identity; the statistics calibrated on a random batch, then
perturbed, to keep deep networks' activations of order one), and then

1. checks its structure against `simdnn summary MODEL --json`: the state_dict's
   names and shapes against the summary's "tensors" (or, from a simdnn without
   that key, each layer's parameter count), and every layer's output shape
   against the PyTorch module of the same name (a padding or ceil-mode
   difference shows up here);
2. writes the weights (safetensors with simdnn's metadata) and a seeded random
   input at the model's native size to a temporary directory, runs
   `simdnn infer`, and compares its logits with PyTorch's:
   max relative error = max|y - t| / max|t|, PASS if at most --tol.

The reference is computed in float64 from the same float32 weights and input
(--reference-dtype float32 to compute it as the engine does), in eval mode
(dropout off, batch norm on its running statistics).

Usage:
    python3 scripts/compare_pytorch.py                       # every model
    python3 scripts/compare_pytorch.py --models lenet5,resnet18,squeezenet1_1
    python3 scripts/compare_pytorch.py --models lenet5:activation=tanh:pooling=avg
    python3 scripts/compare_pytorch.py --structure-only      # no `simdnn infer`

A model is named as simdnn names it, optionally followed by ":NAME=VALUE" model
options. Options: --simdnn (the binary, default target/release/simdnn),
--batch (default 2), --input H W (another size than the native ones), --tol
(default 1e-4), --seed, --keep DIR (keep the files written for each model).
Exits 1 if any model fails a check.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zlib

import torch
import torchvision
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from convert_pytorch import NATIVE_INPUT, metadata, write_safetensors

# ---------------------------------------------------------------------------
# Models of our own: replicas of models/src/zoo/{lenet5,lenet5_paper,alexnet,squeezenet}.rs
# ---------------------------------------------------------------------------


def c5_side(side):
    """A map's side after a valid 5x5 convolution and a 2x2 subsampling, twice."""
    return max(max(side - 4, 0) // 2 - 4, 0) // 2


class LeNet5(nn.Module):
    """Today's LeNet-5 (lenet5.rs): C1 6@5x5, S2 2x2, C3 16@5x5 reading all six maps,
    S4 2x2, C5 as a linear layer over the 400 flattened values, F6 84, a linear output.
    `activation` "relu" or "tanh" (plain tanh) after every hidden layer, `pooling` "max"
    or "avg" in S2 and S4."""

    def __init__(self, in_channels=1, classes=10, input_hw=(32, 32), activation="relu", pooling="max"):
        super().__init__()
        self.act = nn.ReLU() if activation == "relu" else nn.Tanh()
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.s2 = pool(2, 2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = pool(2, 2)
        self.c5 = nn.Linear(16 * c5_side(input_hw[0]) * c5_side(input_hw[1]), 120)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, classes)

    def forward(self, x):
        x = self.s2(self.act(self.c1(x)))
        x = self.s4(self.act(self.c3(x)))
        x = self.act(self.c5(torch.flatten(x, 1)))
        x = self.act(self.f6(x))
        return self.output(x)


class LeCunTanh(nn.Module):
    """The paper's squashing function 1.7159 tanh(2x/3)."""

    def forward(self, x):
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """The paper's trainable subsampling: the 2x2 mean times one coefficient per map plus
    one bias per map (`weight[c]`, `bias[c]`), as the engine's `NAME.sum` average pooling
    and `NAME` channel affine."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        x = nn.functional.avg_pool2d(x, 2, 2)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class Rbf(nn.Module):
    """Euclidean RBF units: y[i] = -||x - weight[i]||^2, a fixed prototype per class."""

    def __init__(self, inputs, units):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(units, inputs), requires_grad=False)

    def forward(self, x):
        return -((x.unsqueeze(1) - self.weight.unsqueeze(0)) ** 2).sum(dim=2)


# Table I of the paper: the S2 maps each C3 map reads (lenet5_paper.rs, C3_TABLE).
C3_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]

# C3's four groups: the maps reading the same number of S2 maps, one grouped convolution each.
C3_PARTS = [("a", range(0, 6)), ("b", range(6, 12)), ("c", range(12, 15)), ("d", range(15, 16))]


class SparseC3(nn.Module):
    """The paper's C3: map m convolves the S2 maps C3_TABLE[m]. Parts a-d gather the maps
    they read (in the table's order) and convolve them in groups, one group per map;
    their outputs, concatenated, are maps 0..15."""

    def __init__(self):
        super().__init__()
        self.reads = {}
        for part, maps in C3_PARTS:
            reads = [i for m in maps for i in C3_TABLE[m]]
            self.reads[part] = reads
            self.add_module(part, nn.Conv2d(len(reads), len(maps), 5, groups=len(maps)))

    def forward(self, x):
        return torch.cat([getattr(self, part)(x[:, self.reads[part]]) for part, _ in C3_PARTS], dim=1)


class LeNet5Paper(nn.Module):
    """LeNet-5 as the paper built it (lenet5_paper.rs): scaled tanh after C1, S2, C3, S4,
    C5 and F6, trainable subsampling, the sparse C3, an RBF output giving -||x - w||^2."""

    def __init__(self, in_channels=1, classes=10, input_hw=(32, 32)):
        super().__init__()
        self.squash = LeCunTanh()
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.s2 = Subsampling(6)
        self.c3 = SparseC3()
        self.s4 = Subsampling(16)
        self.c5 = nn.Linear(16 * c5_side(input_hw[0]) * c5_side(input_hw[1]), 120)
        self.f6 = nn.Linear(120, 84)
        self.output = Rbf(84, classes)

    def forward(self, x):
        x = self.squash(self.c1(x))
        x = self.squash(self.s2(x))
        x = self.squash(self.c3(x))
        x = self.squash(self.s4(x))
        x = self.squash(self.c5(torch.flatten(x, 1)))
        x = self.squash(self.f6(x))
        return self.output(x)


class AlexNet(nn.Module):
    """AlexNet with 96/256/384/384/256 filters on 227x227 (alexnet.rs): no padding in the
    first convolution, no LRN, conv2, conv4 and conv5 in `groups` groups (2: the paper's
    two-GPU split), adaptive average pooling to 6x6, FC 9216-4096-4096 with dropout.
    Module indices are torchvision's."""

    def __init__(self, in_channels=3, classes=1000, groups=1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 11, stride=4),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=groups),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=groups),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=groups),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class Fire(nn.Module):
    """A fire module: a 1x1 squeeze convolution feeding 1x1 and 3x3 (padding 1) expand
    convolutions, each followed by ReLU, their outputs concatenated."""

    def __init__(self, in_channels, squeeze, expand1x1, expand3x3):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], dim=1)


POOL = "pool"

# squeezenet.rs's tables: ("stem", filters, kernel, stride), POOL, or (squeeze, 1x1, 3x3).
SQUEEZENODULE_V1 = [
    ("stem", 96, 7, 2), POOL,
    (12, 96, 32), (12, 96, 32), (24, 192, 64), POOL,
    (24, 192, 64), (36, 288, 96), (36, 288, 96), (48, 384, 128), POOL,
    (48, 384, 128),
]
SQUEEZENODULE_V2 = [
    ("stem", 96, 7, 2), POOL,
    (12, 96, 32), (12, 96, 32), (24, 192, 64), (24, 192, 64), (36, 288, 96), POOL,
    (36, 288, 96), (48, 384, 128), POOL,
    (48, 384, 128),
]


class SqueezeNetTable(nn.Module):
    """A SqueezeNet built from a squeezenet.rs table: the stem convolution (no padding)
    and its ReLU, 3x3 stride-2 ceil-mode max pools, fire modules; then dropout, a 1x1
    convolution to the classes, ReLU and a global average. Indices are torchvision's."""

    def __init__(self, table, in_channels, classes):
        super().__init__()
        layers, channels = [], in_channels
        for stage in table:
            if stage == POOL:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            elif stage[0] == "stem":
                _, filters, kernel, stride = stage
                layers += [nn.Conv2d(channels, filters, kernel, stride=stride), nn.ReLU()]
                channels = filters
            else:
                layers.append(Fire(channels, *stage))
                channels = stage[1] + stage[2]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(channels, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ---------------------------------------------------------------------------
# The registry: simdnn name -> PyTorch constructor
# ---------------------------------------------------------------------------


def torchvision_model(constructor):
    """A torchvision constructor (3 input channels only) as a builder."""

    def build(in_channels, classes, input_hw, options):
        if in_channels != 3:
            raise ValueError(f"torchvision's models read 3 channels, not {in_channels}")
        return constructor(num_classes=classes)

    return build


def _densenet264(num_classes):
    return torchvision.models.DenseNet(32, (6, 12, 64, 48), 64, num_classes=num_classes)


BUILDERS = {
    "lenet5": lambda c, n, hw, o: LeNet5(c, n, hw, o.get("activation", "relu"), o.get("pooling", "max")),
    "lenet5-paper": lambda c, n, hw, o: LeNet5Paper(c, n, hw),
    "alexnet": lambda c, n, hw, o: AlexNet(c, n, groups=1),
    "alexnet-grouped": lambda c, n, hw, o: AlexNet(c, n, groups=2),
    "alexnet-torchvision": torchvision_model(torchvision.models.alexnet),
    **{
        name: torchvision_model(getattr(torchvision.models, name))
        for name in [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
        + [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
        + [f"densenet{d}" for d in (121, 169, 201)]
        + ["squeezenet1_0", "squeezenet1_1"]
    },
    "densenet264": torchvision_model(_densenet264),
    "squeezenodule_v1": lambda c, n, hw, o: SqueezeNetTable(SQUEEZENODULE_V1, c, n),
    "squeezenodule_v2": lambda c, n, hw, o: SqueezeNetTable(SQUEEZENODULE_V2, c, n),
}

# Native (in_channels, classes); the input size is convert_pytorch.NATIVE_INPUT's.
NATIVE_SHAPE = {
    "lenet5": (1, 10),
    "lenet5-paper": (1, 10),
    "squeezenodule_v1": (1, 2),
    "squeezenodule_v2": (1, 2),
}

# Model options (registry.rs), defaults first.
MODEL_OPTIONS = {"lenet5": {"activation": ("relu", "tanh"), "pooling": ("max", "avg")}}

# Besides each model at its defaults, the default run covers these option sets.
EXTRA_CASES = ["lenet5:activation=tanh", "lenet5:pooling=avg", "lenet5:activation=tanh:pooling=avg"]


def native_shape(model):
    """(in_channels, classes, (h, w)) of a registered model."""
    c, n = NATIVE_SHAPE.get(model, (3, 1000))
    return c, n, NATIVE_INPUT[model]


def build_reference(model, in_channels, classes, input_hw, options=None):
    """The PyTorch network simdnn builds for `model` (in train mode, default weights)."""
    if model not in BUILDERS:
        raise KeyError(f"no PyTorch reference for {model!r}")
    return BUILDERS[model](in_channels, classes, tuple(input_hw), dict(options or {}))


def randomise(net, seed, calibration=None):
    """Gives `net` seeded random weights and puts it in eval mode.

    - convolution and linear weights N(0, 2 / fan_in), biases U(-0.1, 0.1);
    - batch norm gamma U(0.5, 1.5), beta N(0, 0.1); running mean N(0, 0.1) and variance
      U(0.5, 1.5), or, given a `calibration` input, each layer's own input statistics on
      that batch, perturbed (see calibrate_batch_norms);
    - the batch norm closing each ResNet residual branch: gamma U(0.1, 0.3);
    - trainable subsampling coefficients U(0.5, 1.5), biases N(0, 0.1); RBF prototypes +-1.

    Why calibrate: with statistics drawn independently of the data, ResNet-152's logits
    reach 1e13 and the biases no longer count. Why small residual gammas (torchvision's
    zero_init_residual, not quite zero): with full-size branches a perturbation grows ~17%
    a block, and float32 rounding alone moves ResNet-152's logits by 3e-4 of their size."""
    g = torch.Generator().manual_seed(seed)
    batch_norms = []
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()), generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                batch_norms.append(m)
            elif isinstance(m, Subsampling):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
            elif isinstance(m, Rbf):
                m.weight.copy_(torch.randint(0, 2, m.weight.shape, generator=g) * 2.0 - 1.0)
        for m in net.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                (m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight.uniform_(0.1, 0.3, generator=g)
    net.eval()
    if batch_norms and calibration is not None:
        calibrate_batch_norms(net, batch_norms, calibration, g)
    return net


def calibrate_batch_norms(net, batch_norms, x, g):
    """Sets the running statistics of `batch_norms` from batch `x`: in one eval-mode pass,
    each layer, as it is reached, gets its input's per-channel mean plus N(0, 0.1) standard
    deviations, and variance times U(0.5, 1.5); the layers after it are calibrated on what
    it then really outputs."""

    def calibrate(m, inputs):
        v = inputs[0].detach()
        mean, var = v.mean(dim=(0, 2, 3)), v.var(dim=(0, 2, 3), unbiased=False)
        m.running_mean.copy_(mean + torch.randn(mean.shape, generator=g) * 0.1 * var.sqrt())
        m.running_var.copy_(var * (torch.rand(var.shape, generator=g) + 0.5))

    hooks = [m.register_forward_pre_hook(calibrate) for m in batch_norms]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()


def weights_of(net):
    """The state_dict as simdnn stores it: float32, no num_batches_tracked."""
    return {
        k: v.detach().float().contiguous().clone()
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def reference_logits(net, x, dtype=torch.float64, record=None):
    """The network's output for x computed in `dtype`; with `record` (a dict), the output
    shape of every module called exactly once, by module name."""
    net = net.to(dtype)
    calls, hooks = {}, []
    if record is not None:
        for name, module in net.named_modules():
            def hook(mod, inputs, output, name=name):
                if isinstance(output, torch.Tensor):
                    calls.setdefault(name, []).append(list(output.shape))
            if name:
                hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            y = net(x.to(dtype))
    finally:
        for h in hooks:
            h.remove()
        net.float()
    if record is not None:
        record.update({k: v[0] for k, v in calls.items() if len(v) == 1})
    return y


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


class Engine:
    """The `simdnn` binary."""

    def __init__(self, path, timeout):
        self.path, self.timeout = path, timeout

    def run(self, args):
        return subprocess.run([self.path, *args], capture_output=True, text=True, timeout=self.timeout)

    def exists(self):
        return os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def has_infer(self):
        return self.exists() and self.run(["infer", "--help"]).returncode == 0

    def models(self):
        """The models `simdnn summary --help` lists."""
        names, listing = [], False
        for line in self.run(["summary", "--help"]).stdout.splitlines():
            if line.strip() == "Commands:":
                listing = True
            elif listing and not line.strip():
                break
            elif listing and line.split()[0] != "help":
                names.append(line.split()[0])
        return names

    def summary(self, model, in_channels, classes, input_hw, options):
        args = ["summary", model, "--json", "--in-channels", str(in_channels), "--classes", str(classes),
                "--input", str(input_hw[0]), str(input_hw[1])]
        for k, v in options.items():
            args += [f"--{k}", v]
        r = self.run(args)
        if r.returncode != 0:
            raise RuntimeError(f"simdnn summary failed: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def infer(self, model, weights, inputs, output):
        r = self.run(["infer", model, "--weights", weights, "--input", inputs, "--output", output])
        if r.returncode != 0:
            raise RuntimeError(f"simdnn infer failed (exit {r.returncode}): {r.stderr.strip()}")
        return load_file(output)["output"]


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def check_tensors(summary, weights, net):
    """Problems with the weights' names and shapes against the engine's. Uses the
    summary's "tensors" where present, else each layer's parameter count."""
    problems = []
    if "tensors" in summary:
        engine = {k: list(v) for k, v in summary["tensors"].items()}
        ours = {k: list(v.shape) for k, v in weights.items()}
        for k in ours.keys() - engine.keys():
            problems.append(f"{k} {ours[k]}: not in the engine")
        for k in engine.keys() - ours.keys():
            problems.append(f"{k} {engine[k]}: the engine's, not in PyTorch's state_dict")
        for k in ours.keys() & engine.keys():
            if ours[k] != engine[k]:
                problems.append(f"{k}: engine {engine[k]}, PyTorch {ours[k]}")
        # The order is compared only where the engine's JSON keeps it (serde_json without
        # "preserve_order" sorts an object's keys).
        if not problems and list(engine) != sorted(engine) and list(ours) != list(engine):
            first = next(i for i, (a, b) in enumerate(zip(ours, engine)) if a != b)
            print(f"  note: same tensors, other order (from #{first}: engine {list(engine)[first]}, "
                  f"PyTorch {list(ours)[first]})")
    else:
        params = {k: v.numel() for k, v in net.named_parameters()}
        layers = {l["name"]: l["params"] for l in summary["layers"] if l["params"]}
        owner = {k: k.rsplit(".", 1)[0] for k in params}
        for layer, count in layers.items():
            ours = sum(n for k, n in params.items() if owner[k] == layer)
            if ours != count:
                problems.append(f"layer {layer}: engine {count} parameters, PyTorch {ours}")
        for k in params:
            if owner[k] not in layers:
                problems.append(f"{k}: no engine layer {owner[k]!r} with parameters")
    total = sum(p.numel() for p in net.parameters())
    if summary.get("params") != total:
        problems.append(f"parameters: engine {summary.get('params')}, PyTorch {total}")
    return problems


def check_layer_shapes(summary, shapes):
    """Problems with the engine's layer output shapes against PyTorch's modules of the
    same name (batch excluded), and the number of layers compared."""
    problems, compared = [], 0
    for layer in summary["layers"]:
        ours = shapes.get(layer["name"])
        if ours is None or layer.get("output") is None:
            continue
        compared += 1
        if list(layer["output"][1:]) != ours[1:]:
            problems.append(f"layer {layer['name']} ({layer['op']}): engine output {layer['output'][1:]}, "
                            f"PyTorch {ours[1:]}")
    return problems, compared


def report(label, problems, limit=None):
    """Prints `problems`, the first `limit` of them if given."""
    for p in problems[:limit]:
        print(f"  {label}: {p}")
    if limit is not None and len(problems) > limit:
        print(f"  {label}: ... and {len(problems) - limit} more")


def parse_case(text):
    """'model:NAME=VALUE:...' -> (model, {NAME: VALUE})."""
    model, *rest = text.split(":")
    options = dict(o.split("=", 1) for o in rest)
    if model not in BUILDERS:
        raise ValueError(f"no PyTorch reference for {model!r}; known: {', '.join(BUILDERS)}")
    allowed = MODEL_OPTIONS.get(model, {})
    for k, v in options.items():
        if v not in allowed.get(k, ()):
            raise ValueError(f"{model}: option {k}={v} is not one of {allowed.get(k, 'none')}")
    return model, options


def case_seed(seed, label):
    return (seed * 1_000_003 + zlib.crc32(label.encode())) % (2**63)


def run_case(engine, label, model, options, args, infer):
    """Checks one model; returns (row, passed)."""
    in_channels, classes, input_hw = native_shape(model)
    if args.input:
        input_hw = tuple(args.input)
    seed = case_seed(args.seed, label)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(args.batch, in_channels, *input_hw, generator=g)
    calibration = torch.randn(4, in_channels, *input_hw, generator=g)
    net = randomise(build_reference(model, in_channels, classes, input_hw, options), seed, calibration)
    weights = weights_of(net)
    params = sum(p.numel() for p in net.parameters())

    summary = engine.summary(model, in_channels, classes, input_hw, options)
    tensor_problems = check_tensors(summary, weights, net)
    report(label, tensor_problems)
    row = {
        "model": label,
        "params": params,
        "tensors": "ok" if not tensor_problems else f"{len(tensor_problems)} bad",
        "layers": "-",
        "abs": None,
        "rel": None,
        "result": "FAIL",
    }
    shapes = {}
    dtype = torch.float64 if args.reference_dtype == "float64" else torch.float32
    t0 = time.perf_counter()
    try:
        t = reference_logits(net, x, dtype, record=shapes).double()
    except RuntimeError as e:
        print(f"  {label}: the PyTorch model fails: {e}")
        return row, False
    t_torch = time.perf_counter() - t0
    shape_problems, compared = check_layer_shapes(summary, shapes)
    # Later layers only repeat the first wrong shape.
    report(label, shape_problems, limit=3)
    problems = tensor_problems + shape_problems
    row["layers"] = f"{compared - len(shape_problems)}/{compared}"
    row["result"] = "FAIL" if problems else ("PASS" if not infer else None)
    if not infer:
        return row, not problems

    keep = os.path.join(args.keep, label.replace(":", "_")) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="simdnn-compare-") as tmp:
        directory = keep or tmp
        os.makedirs(directory, exist_ok=True)
        w_path, x_path, y_path = (os.path.join(directory, f) for f in
                                  ("weights.safetensors", "input.safetensors", "output.safetensors"))
        write_safetensors(w_path, weights, metadata(model, in_channels, classes, input_hw, options.items()))
        save_file({"input": x.contiguous()}, x_path)
        if keep:
            save_file({"output": t.float().contiguous()}, os.path.join(directory, "reference.safetensors"))
        t0 = time.perf_counter()
        try:
            y = engine.infer(model, w_path, x_path, y_path).double()
        except (RuntimeError, KeyError, subprocess.TimeoutExpired) as e:
            print(f"  {label}: {e}")
            row["result"] = "FAIL"
            return row, False
        t_engine = time.perf_counter() - t0
    if y.shape != t.shape:
        print(f"  {label}: engine output {list(y.shape)}, PyTorch {list(t.shape)}")
        row["result"] = "FAIL"
        return row, False
    err = (y - t).abs().max().item()
    scale = t.abs().max().item()
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    row["abs"], row["rel"] = err, rel
    ok = not problems and rel <= args.tol and math.isfinite(rel)
    row["result"] = "PASS" if ok else "FAIL"
    if args.verbose:
        print(f"  {label}: max|t| {scale:.4g}, PyTorch {t_torch:.2f} s, simdnn {t_engine:.2f} s")
    return row, ok


def format_row(row):
    num = lambda v: "-" if v is None else f"{v:.2e}"
    return (f"{row['model']:<38} {row['params']:>12,} {row['tensors']:>8} {row['layers']:>8} "
            f"{num(row['abs']):>10} {num(row['rel']):>10}  {row['result'] or '-'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated models, each optionally MODEL:NAME=VALUE:... "
                                         "[default: every registered model and extra option sets]")
    parser.add_argument("--simdnn", default="target/release/simdnn", help="the engine's binary")
    parser.add_argument("--batch", type=int, default=2, help="images per input [default: 2]")
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="largest max|y - t| / max|t| that passes [default: 1e-4]")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and inputs [default: 0]")
    parser.add_argument("--input", type=int, nargs=2, metavar=("H", "W"),
                        help="input height and width for every model [default: each model's native size]")
    parser.add_argument("--reference-dtype", choices=("float64", "float32"), default="float64",
                        help="precision of the PyTorch reference [default: float64]")
    parser.add_argument("--structure-only", action="store_true",
                        help="check names and shapes only, without `simdnn infer`")
    parser.add_argument("--keep", metavar="DIR", help="keep each model's weights, input, output and "
                                                      "reference under DIR/MODEL")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per simdnn command")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print timings and logit scales")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be at least 1")

    engine = Engine(args.simdnn, args.timeout)
    if not engine.exists():
        parser.error(f"{args.simdnn}: no such executable (build with `cargo build --release`)")
    registered = engine.models()
    try:
        if args.models:
            cases = [parse_case(c.strip()) + (c.strip(),) for c in args.models.split(",") if c.strip()]
        else:
            missing = [m for m in registered if m not in BUILDERS]
            for m in missing:
                print(f"warning: {m} is registered but has no PyTorch reference here")
            names = [m for m in registered if m in BUILDERS] or list(BUILDERS)
            cases = [parse_case(c) + (c,) for c in names + EXTRA_CASES]
    except ValueError as e:
        parser.error(str(e))
    unknown = [label for _, _, label in cases if registered and label.split(":")[0] not in registered]
    if unknown:
        parser.error(f"not registered in {args.simdnn}: {', '.join(unknown)}")

    infer = not args.structure_only
    if infer and not engine.has_infer():
        print(f"error: {args.simdnn} has no `infer` command; use --structure-only to check names and "
              f"shapes only", file=sys.stderr)
        return 1

    torch.manual_seed(args.seed)
    header = (f"{'model':<38} {'params':>12} {'tensors':>8} {'layers':>8} {'max abs':>10} {'max rel':>10}"
              f"  result")
    print(header)
    print("-" * len(header))
    failed = []
    for model, options, label in cases:
        try:
            row, ok = run_case(engine, label, model, options, args, infer)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            print(f"  {label}: {e}")
            row, ok = {"model": label, "params": 0, "tensors": "-", "layers": "-", "abs": None, "rel": None,
                       "result": "FAIL"}, False
        print(format_row(row), flush=True)
        if not ok:
            failed.append(label)
    print("-" * len(header))
    what = "structure checks" if args.structure_only else f"checks (tolerance {args.tol:g})"
    if failed:
        print(f"{len(failed)} of {len(cases)} models failed {what}: {', '.join(failed)}")
        return 1
    print(f"all {len(cases)} models passed {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
