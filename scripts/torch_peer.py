#!/usr/bin/env python3
"""PyTorch peer figures for hwnas's CUDA backend (issue 6), run on the GPU machine.

Times, on cuda:0, the same networks hwnas measures:
  * LeNet-5 (hwnas's built-in "lenet5") and a small MobileNetV2-style net
    ("mbv2_small", defined here and handed to hwnas with --emit-arch), at batch
    1 and 256, in PyTorch eager mode and replayed as a torch.cuda.CUDAGraph;
  * fp32 SGEMM 1024^3 through cuBLAS (torch.matmul) with TF32 off.
Every time is the median over --iters runs between two CUDA events, as hwnas's
RunTimed measures its own graph.

With --hwnas DIR it also reads the JSON that `hwnas-cuda bench model --json`
(files bench_<arch>_b<batch>.json) and `hwnas-cuda bench cuda --json`
(sgemm.json) wrote there and prints both side by side with the acceptance
ratios of issue 6.

The networks are built from hwnas's architecture JSON (nas/arch.go), so both
sides run the same layers: conv, dwconv, batchnorm, linear, maxpool, avgpool,
gap, add, relu, relu6, hardswish, flatten.

  python3 scripts/torch_peer.py --emit-arch mbv2_small > mbv2_small.json   # no torch needed
  python3 scripts/torch_peer.py --json --hwnas OUTDIR
"""
import argparse
import json
import os
import statistics
import sys

# The same text as nas/models.go's built-in "lenet5" (Caffe LeNet-5).
LENET5 = {"version": 1, "name": "lenet5", "input": [1, 28, 28], "classes": 10, "layers": [
    {"name": "conv1", "type": "conv", "out": 20, "kernel": 5},
    {"name": "pool1", "type": "maxpool", "size": 2},
    {"name": "conv2", "type": "conv", "out": 50, "kernel": 5},
    {"name": "pool2", "type": "maxpool", "size": 2},
    {"name": "fc1", "type": "linear", "out": 500, "act": "relu"},
    {"name": "fc2", "type": "linear", "out": 10}]}


def _mbv2_small():
    """Stem, four inverted-residual blocks (two with a residual add), 1x1 head,
    global pooling, classifier: MobileNetV2's shape at CIFAR size."""
    nb = False
    layers = [{"name": "stem", "type": "conv", "out": 16, "kernel": 3, "pad": 1, "bias": nb},
              {"name": "stem_bn", "type": "batchnorm", "act": "relu6"}]

    def block(i, inp, expand, out, stride, residual):
        p = "b%d_" % i
        layers.extend([
            {"name": p + "exp", "type": "conv", "out": expand, "kernel": 1, "bias": nb, "inputs": [inp]},
            {"name": p + "exp_bn", "type": "batchnorm", "act": "relu6"},
            {"name": p + "dw", "type": "dwconv", "kernel": 3, "stride": stride, "pad": 1, "bias": nb},
            {"name": p + "dw_bn", "type": "batchnorm", "act": "relu6"},
            {"name": p + "proj", "type": "conv", "out": out, "kernel": 1, "bias": nb},
            {"name": p + "proj_bn", "type": "batchnorm"}])
        if residual:
            layers.append({"name": p + "add", "type": "add", "inputs": [inp, p + "proj_bn"]})
            return p + "add"
        return p + "proj_bn"

    x = block(1, "stem_bn", 64, 24, 2, False)
    x = block(2, x, 96, 24, 1, True)
    x = block(3, x, 96, 32, 2, False)
    x = block(4, x, 128, 32, 1, True)
    layers.extend([
        {"name": "head", "type": "conv", "out": 128, "kernel": 1, "bias": nb, "inputs": [x]},
        {"name": "head_bn", "type": "batchnorm", "act": "relu6"},
        {"name": "gap", "type": "gap"},
        {"name": "fc", "type": "linear", "out": 10}])
    return {"version": 1, "name": "mbv2_small", "input": [3, 32, 32], "classes": 10, "layers": layers}


ARCHS = {"lenet5": LENET5, "mbv2_small": _mbv2_small()}
BATCHES = [1, 256]


def build(arch):
    """A torch.nn.Module that runs an hwnas architecture in eval mode."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    acts = {None: None, "": None, "none": None, "relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleDict()
            self.plan = []  # (name, type, inputs, module key or None, extra)
            shapes = {"": list(arch["input"])}
            prev = ""
            for l in arch["layers"]:
                t, name = l["type"], l["name"]
                ins = l.get("inputs") or [prev]
                s = shapes[ins[0]]
                act = acts[l.get("act")]
                bias = l.get("bias", True)
                k, st, pad, dil = l.get("kernel", 0), l.get("stride", 1) or 1, l.get("pad", 0), l.get("dilation", 1) or 1
                if t in ("conv", "dwconv"):
                    g = s[0] if t == "dwconv" else (l.get("groups", 1) or 1)
                    out = s[0] if t == "dwconv" else l["out"]
                    self.mods[name] = nn.Conv2d(s[0], out, k, st, pad, dil, g, bias)
                    oh = (s[1] + 2 * pad - dil * (k - 1) - 1) // st + 1
                    ow = (s[2] + 2 * pad - dil * (k - 1) - 1) // st + 1
                    shapes[name] = [out, oh, ow]
                elif t == "batchnorm":
                    self.mods[name] = (nn.BatchNorm2d if len(s) == 3 else nn.BatchNorm1d)(s[0])
                    shapes[name] = s
                elif t == "linear":
                    n = 1
                    for d in s:
                        n *= d
                    self.mods[name] = nn.Linear(n, l["out"], bias)
                    shapes[name] = [l["out"]]
                elif t in ("maxpool", "avgpool"):
                    size = l.get("size", 2) or 2
                    stride = l.get("stride") or size
                    shapes[name] = [s[0], (s[1] + 2 * pad - size) // stride + 1, (s[2] + 2 * pad - size) // stride + 1]
                    l = dict(l, size=size, stride=stride)
                elif t == "gap":
                    shapes[name] = [s[0]]
                elif t == "flatten":
                    n = 1
                    for d in s:
                        n *= d
                    shapes[name] = [n]
                elif t in ("add", "relu", "relu6", "hardswish", "act"):
                    shapes[name] = s
                    if t != "act" and t != "add":
                        act = acts[t]
                else:
                    raise ValueError("layer %s: type %s is not supported by torch_peer.py" % (name, t))
                self.plan.append((name, t, ins, act, l))
                prev = name

        def forward(self, x):
            vals = {"": x}
            for name, t, ins, act, l in self.plan:
                a = vals[ins[0]]
                if t in ("conv", "dwconv", "batchnorm"):
                    y = self.mods[name](a)
                elif t == "linear":
                    y = self.mods[name](a.flatten(1))
                elif t == "maxpool":
                    y = F.max_pool2d(a, l["size"], l["stride"], l.get("pad", 0))
                elif t == "avgpool":
                    y = F.avg_pool2d(a, l["size"], l["stride"], l.get("pad", 0), count_include_pad=False)
                elif t == "gap":
                    y = a.mean((2, 3))
                elif t == "flatten":
                    y = a.flatten(1)
                elif t == "add":
                    y = a + vals[ins[1]]
                else:
                    y = a
                if act is not None:
                    y = act(y)
                vals[name] = y
            return y

    return Net().eval()


def median_us(fn, iters):
    import torch
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1000.0)
    return statistics.median(times)


def measure_model(arch, batch, iters):
    import torch
    model = build(arch).cuda()
    x = torch.randn([batch] + list(arch["input"]), device="cuda")
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        torch.cuda.synchronize()
        eager = median_us(lambda: model(x), iters)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(x)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            model(x)
        for _ in range(10):
            g.replay()
        torch.cuda.synchronize()
        graph = median_us(g.replay, iters)
    return {"arch": arch["name"], "batch": batch, "eager_us": round(eager, 2), "graph_us": round(graph, 2)}


def measure_sgemm(n, iters):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    for _ in range(10):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    us = median_us(lambda: torch.matmul(a, b), iters)
    return {"n": n, "median_us": round(us, 2), "tflops": round(2.0 * n ** 3 / (us * 1e-6) / 1e12, 2)}


def read_hwnas(d):
    """hwnas's figures from DIR: {(arch, batch): median_us}, sgemm rows."""
    models, sgemm = {}, []
    if not d:
        return models, sgemm
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        try:
            with open(path) as f:
                v = json.load(f)
        except (OSError, ValueError):
            continue
        if name.startswith("bench_") and isinstance(v, dict) and "median_us" in v:
            models[(v.get("arch"), v.get("batch"))] = v["median_us"]
        elif name == "sgemm.json" and isinstance(v, dict):
            sgemm = v.get("sgemm", [])
    return models, sgemm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emit-arch", choices=sorted(ARCHS), help="print an architecture as hwnas JSON and exit")
    ap.add_argument("--iters", type=int, default=200, help="timed runs per figure (median)")
    ap.add_argument("--hwnas", metavar="DIR", help="directory with hwnas's --json outputs to compare with")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--report", metavar="FILE", help="print the table of an earlier --json report and exit")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            print_report(json.load(f))
        return 0
    if args.emit_arch:
        json.dump(ARCHS[args.emit_arch], sys.stdout, indent=1)
        print()
        return 0

    import torch
    if not torch.cuda.is_available():
        print("torch_peer: no CUDA device visible to PyTorch", file=sys.stderr)
        return 1
    rep = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "models": [], "sgemm": measure_sgemm(1024, args.iters)}
    hw_models, hw_sgemm = read_hwnas(args.hwnas)
    for name in ("lenet5", "mbv2_small"):
        for batch in BATCHES:
            row = measure_model(ARCHS[name], batch, args.iters)
            hw = hw_models.get((name, batch))
            if hw is not None:
                row["hwnas_us"] = hw
                row["graph_over_hwnas"] = round(row["graph_us"] / hw, 3)
            rep["models"].append(row)
    for r in hw_sgemm:
        if r.get("n") == rep["sgemm"]["n"]:
            rep["sgemm"]["hwnas_tflops"] = r["tflops"]
            rep["sgemm"]["hwnas_over_cublas"] = round(r["tflops"] / rep["sgemm"]["tflops"], 3)
    # Issue 6's acceptance: LeNet-5 batch 1 ≥1.5× faster than PyTorch's CUDA
    # graph (goal; faster at all is the bar), batch 256 within 1.5×, SGEMM ≥30%.
    acc = {}
    for row in rep["models"]:
        if row["arch"] == "lenet5" and "hwnas_us" in row:
            if row["batch"] == 1:
                acc["lenet5_b1_faster_than_graph"] = row["hwnas_us"] < row["graph_us"]
                acc["lenet5_b1_goal_1.5x"] = row["graph_us"] >= 1.5 * row["hwnas_us"]
            if row["batch"] == 256:
                acc["lenet5_b256_within_1.5x"] = row["hwnas_us"] <= 1.5 * row["graph_us"]
    if "hwnas_over_cublas" in rep["sgemm"]:
        acc["sgemm_at_least_30pct"] = rep["sgemm"]["hwnas_over_cublas"] >= 0.30
    rep["acceptance"] = acc
    if args.json:
        json.dump(rep, sys.stdout, indent=1)
        print()
        return 0
    print_report(rep)
    return 0


def print_report(rep):
    print("device %s, torch %s" % (rep["device"], rep["torch"]))
    print("%-11s %5s %11s %11s %11s" % ("model", "batch", "eager µs", "graph µs", "hwnas µs"))
    for r in rep["models"]:
        print("%-11s %5d %11.1f %11.1f %11s" % (r["arch"], r["batch"], r["eager_us"], r["graph_us"],
                                               "%.1f" % r["hwnas_us"] if "hwnas_us" in r else "-"))
    s = rep["sgemm"]
    print("sgemm %d³: cuBLAS fp32 %.2f TFLOP/s, hwnas %s" % (s["n"], s["tflops"], s.get("hwnas_tflops", "-")))
    for k, v in rep.get("acceptance", {}).items():
        print("%-32s %s" % (k, "yes" if v else "NO"))

if __name__ == "__main__":
    sys.exit(main())
