#!/usr/bin/env python3
"""Write the PyTorch reference fixtures of simdnn's fused recurrent op (RNN, LSTM, GRU).

For each case this writes tests/fixtures/rnn/CASE.safetensors: the weights of a seeded
torch.nn.RNN / nn.LSTM / nn.GRU (PyTorch's default initialisation, then randn*0.3 added
to every bias so that bias mistakes show), a random input, PyTorch's outputs for it, random
output gradients ("seeds") and the gradients autograd computes from them.

Tensors (float32 except `lengths`, int64):
    rnn.<name>        every state_dict entry in PyTorch's layout (rnn.weight_ih_l0,
                      rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, ..._reverse)
    x                 [T, N, I], or [N, T, I] when batch_first
    h0, c0            [L*D, N, H] (never batch-first), when the case gives them
    lengths           [N] int64, when the case gives them (unsorted; fed through
                      pack_padded_sequence(enforce_sorted=False) and
                      pad_packed_sequence(total_length=T))
    y                 [T, N, D*H] (or [N, T, D*H]); 0 at padded positions
    h_n, c_n          [L*D, N, H] (c_n for LSTM only)
    dy, dh_n, dc_n    seeds: randn, dy zeroed at padded positions
    grad.x, grad.h0, grad.c0, grad.rnn.<name>
                      gradients of sum(y*dy) + sum(h_n*dh_n) [+ sum(c_n*dc_n)]
Metadata (strings): cell (rnn_tanh|rnn_relu|lstm|gru), input_size, hidden_size,
num_layers, bidirectional, batch_first, has_h0, has_lengths (true|false), torch_version,
reference.

The references are computed in float64 from float32 values (the stored weights and inputs
are exactly what the float64 run used), then rounded to float32, so the files hold PyTorch's
result without float32 rounding noise of its own. The same script writes the same bytes.
The safetensors format is written by hand (8-byte little-endian header length, a JSON
header, raw little-endian data), so only torch is needed; every file is read back with a
parser of the same format and checked.

Usage:
    python3 benches/peers/rnn_fixtures.py [--out tests/fixtures/rnn] [--only lstm]
"""
import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _SCRUB):
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name: settings. T = seq length, N = batch.
CASES = {
    "rnn_tanh": dict(cell="rnn_tanh", I=5, H=7, T=6, N=3, L=1, bi=False, h0=False),
    "rnn_relu_bi2": dict(cell="rnn_relu", I=5, H=7, T=6, N=3, L=2, bi=True, h0=True),
    "lstm": dict(cell="lstm", I=5, H=7, T=6, N=3, L=1, bi=False, h0=False),
    "lstm_bi2_state": dict(cell="lstm", I=4, H=6, T=5, N=2, L=2, bi=True, h0=True),
    "lstm_lengths": dict(cell="lstm", I=5, H=7, T=6, N=3, L=2, bi=True, h0=False,
                         lengths=[6, 3, 5]),
    "gru": dict(cell="gru", I=5, H=7, T=6, N=3, L=1, bi=False, h0=True),
    # The longest sequence (5) is shorter than T (6): the last time step is padding for all.
    "gru_bi2_lengths_batch_first": dict(cell="gru", I=5, H=7, T=6, N=4, L=2, bi=True, h0=True,
                                        batch_first=True, lengths=[5, 2, 1, 4]),
}
DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
NP_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def write_safetensors(path, tensors, meta):
    """Writes name -> tensor (float32 or int64) with string metadata `meta`, atomically.
    Tensors are laid out in name order; the header is padded with spaces to 8 bytes."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, np_dtype = DTYPES[t.dtype]
        data = t.numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in sorted(meta.items())}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_safetensors(path):
    """Parses a safetensors file: returns (name -> numpy array, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data, out, end = raw[8 + n:], {}, 0
    for name, info in header.items():
        begin, stop = info["data_offsets"]
        dtype = NP_DTYPES[info["dtype"]]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert stop - begin == count * dtype.itemsize, f"{name}: data size does not match its shape"
        out[name] = np.frombuffer(data[begin:stop], dtype=dtype).reshape(info["shape"])
        end = max(end, stop)
    assert end == len(data), "trailing bytes after the tensors"
    return out, meta


def build(case):
    """The module in float32 with perturbed biases (then, for the reference, in float64)."""
    kw = dict(input_size=case["I"], hidden_size=case["H"], num_layers=case["L"],
              bidirectional=case["bi"], batch_first=case.get("batch_first", False))
    cell = case["cell"]
    if cell.startswith("rnn_"):
        return torch.nn.RNN(nonlinearity=cell[4:], **kw)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](**kw)


def make_case(name, case, seed):
    torch.manual_seed(seed)
    cell, T, N, I, H, L = (case[k] for k in ("cell", "T", "N", "I", "H", "L"))
    D, batch_first = 2 if case["bi"] else 1, case.get("batch_first", False)
    lengths = case.get("lengths")
    is_lstm = cell == "lstm"

    rnn = build(case)
    with torch.no_grad():
        for pname, p in rnn.named_parameters():
            if pname.startswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    params32 = {k: v.detach().clone() for k, v in rnn.state_dict().items()}

    x32 = torch.randn(N, T, I) if batch_first else torch.randn(T, N, I)
    h032 = torch.randn(L * D, N, H) if case["h0"] else None
    c032 = torch.randn(L * D, N, H) if case["h0"] and is_lstm else None
    y_shape = (N, T, D * H) if batch_first else (T, N, D * H)
    dy32 = torch.randn(*y_shape)
    if lengths is not None:
        lens = torch.tensor(lengths, dtype=torch.int64)
        valid = torch.arange(T)[:, None] < lens[None, :]  # [T, N]
        if batch_first:
            valid = valid.t()
        dy32 = dy32 * valid[..., None]
    dh32 = torch.randn(L * D, N, H)
    dc32 = torch.randn(L * D, N, H) if is_lstm else None

    # Reference in float64 on exactly the float32 values.
    rnn = rnn.double()
    x = x32.double().requires_grad_()
    h0 = h032.double().requires_grad_() if h032 is not None else None
    c0 = c032.double().requires_grad_() if c032 is not None else None
    state = ((h0, c0) if is_lstm else h0) if h0 is not None else None
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, lens, batch_first=batch_first, enforce_sorted=False)
    out, hn = rnn(inp, state)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    h_n, c_n = hn if is_lstm else (hn, None)
    loss = (out * dy32.double()).sum() + (h_n * dh32.double()).sum()
    if is_lstm:
        loss = loss + (c_n * dc32.double()).sum()
    loss.backward()

    check_semantics(case, out.detach(), h_n.detach(), lengths)

    f32 = lambda t: t.detach().float().contiguous()  # noqa: E731
    tensors = {f"rnn.{k}": v for k, v in params32.items()}
    tensors.update(x=x32, y=f32(out), h_n=f32(h_n), dy=dy32, dh_n=dh32, **{"grad.x": f32(x.grad)})
    if h0 is not None:
        tensors.update(h0=h032, **{"grad.h0": f32(h0.grad)})
    if c0 is not None:
        tensors.update(c0=c032, **{"grad.c0": f32(c0.grad)})
    if is_lstm:
        tensors.update(c_n=f32(c_n), dc_n=dc32)
    if lengths is not None:
        tensors["lengths"] = lens
    for pname, p in rnn.named_parameters():
        tensors[f"grad.rnn.{pname}"] = f32(p.grad)
    tf = lambda b: "true" if b else "false"  # noqa: E731
    meta = {
        "cell": cell, "input_size": I, "hidden_size": H, "num_layers": L,
        "bidirectional": tf(case["bi"]), "batch_first": tf(batch_first), "has_h0": tf(case["h0"]),
        "has_lengths": tf(lengths is not None), "torch_version": torch.__version__,
        "reference": "float64 computation on the stored float32 values, rounded to float32",
    }
    return tensors, meta


def check_semantics(case, y, h_n, lengths):
    """Asserts what PyTorch's h_n holds for the last layer, as documented in the report:
    the forward direction's h_n is y at each sequence's own last step (t = len-1), the
    reverse direction's is y at t = 0 (where the reverse pass ends); padded y is 0."""
    T, N, H, L = case["T"], case["N"], case["H"], case["L"]
    D = 2 if case["bi"] else 1
    if case.get("batch_first", False):
        y = y.transpose(0, 1)
    lens = lengths or [T] * N
    for n, ln in enumerate(lens):
        assert torch.allclose(h_n[(L - 1) * D, n], y[ln - 1, n, :H], atol=1e-12)
        if D == 2:
            assert torch.allclose(h_n[(L - 1) * D + 1, n], y[0, n, H:], atol=1e-12)
        assert torch.count_nonzero(y[ln:, n]) == 0


def expected_shapes(case):
    T, N, I, H, L = (case[k] for k in ("T", "N", "I", "H", "L"))
    D, bf = 2 if case["bi"] else 1, case.get("batch_first", False)
    G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[case["cell"]]
    shapes = {"x": [N, T, I] if bf else [T, N, I], "y": [N, T, D * H] if bf else [T, N, D * H],
              "h_n": [L * D, N, H], "dh_n": [L * D, N, H]}
    shapes["dy"], shapes["grad.x"] = shapes["y"], shapes["x"]
    if case["cell"] == "lstm":
        shapes.update(c_n=[L * D, N, H], dc_n=[L * D, N, H])
    if case["h0"]:
        shapes.update(h0=[L * D, N, H], **{"grad.h0": [L * D, N, H]})
        if case["cell"] == "lstm":
            shapes.update(c0=[L * D, N, H], **{"grad.c0": [L * D, N, H]})
    if "lengths" in case:
        shapes["lengths"] = [N]
    for layer in range(L):
        for suffix in ["", "_reverse"][:D]:
            inp = I if layer == 0 else D * H
            for kind, shape in (("weight_ih", [G * H, inp]), ("weight_hh", [G * H, H]),
                                ("bias_ih", [G * H]), ("bias_hh", [G * H])):
                key = f"rnn.{kind}_l{layer}{suffix}"
                shapes[key] = shapes["grad." + key] = shape
    return shapes


def verify(path, case, tensors, meta):
    """Reads the file back with read_safetensors and checks names, shapes, dtypes, values."""
    got, got_meta = read_safetensors(path)
    want = expected_shapes(case)
    assert sorted(got) == sorted(want), f"names differ: {sorted(set(got) ^ set(want))}"
    for k, shape in want.items():
        assert list(got[k].shape) == shape, f"{k}: shape {list(got[k].shape)} != {shape}"
        assert got[k].dtype == (np.int64 if k == "lengths" else np.float32), f"{k}: dtype {got[k].dtype}"
        assert np.array_equal(got[k], tensors[k].numpy()), f"{k}: values differ"
        assert np.all(np.isfinite(got[k])), f"{k}: not finite"
    assert got_meta == {k: str(v) for k, v in meta.items()}
    return got


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "rnn"),
                   help="output directory [default: tests/fixtures/rnn]")
    p.add_argument("--seed", type=int, default=2026, help="base seed; case i uses seed+i [default: 2026]")
    p.add_argument("--only", choices=sorted(CASES), action="append", help="write only this case")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the same summation order every run
    for i, (name, case) in enumerate(CASES.items()):
        if args.only and name not in args.only:
            continue
        tensors, meta = make_case(name, case, args.seed + i)
        path = os.path.join(args.out, f"{name}.safetensors")
        write_safetensors(path, tensors, meta)
        got = verify(path, case, tensors, meta)
        D = 2 if case["bi"] else 1
        print(f"{name}: {case['cell']} I={case['I']} H={case['H']} T={case['T']} N={case['N']} "
              f"layers={case['L']} directions={D} batch_first={meta['batch_first']} "
              f"h0={meta['has_h0']} lengths={case.get('lengths', '-')} | {len(got)} tensors, "
              f"{os.path.getsize(path)} bytes, |y|max={np.abs(got['y']).max():.3f}, "
              f"|grad.x|max={np.abs(got['grad.x']).max():.3f} -> {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
