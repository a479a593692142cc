"""Reference logits of the torchvision/timm models behind netspec's zoo, in one Python process.

Usage: python torch_parity.py JOBS.json RESULTS.json

JOBS.json is a list of objects {"model", "classes", "batch", "weights", "x", "logits", "logits32"}.
For each job this script builds the reference model (REFERENCES), gives it random weights, writes its
`state_dict()` to `weights` with `safetensors.torch.save_file` (exactly what a PyTorch user hands over),
draws N(0, 1) images to `x` and writes the reference's eval-mode logits on them, computed in float64
(`logits`, the exact value of the model on these weights) and in float32 (`logits32`, what PyTorch
gives), all raw little-endian (f32, f64, f32). crates/train/tests/parity.rs then reads the weights as
`netspec train --init` does, runs netspec's predict program and compares.

Random weights: PyTorch's own initialisation, then every bias, BN/LN affine and ViT token random; the
BN running statistics are calibrated on random images (one training-mode pass, so that activations
keep unit scale through the whole depth, as in a trained network) and then perturbed (means shifted
by up to 0.2 standard deviations, variances scaled by 0.7-1.4), so that eval-mode BN is neither the
identity nor the batch statistics. Without calibration the deep models' activations grow to 1e8 and
their logits are too ill-conditioned for a 1e-5 comparison (PyTorch's own float32 logits then differ
from float64 by 1e-4 to 1e-3).

REFERENCES is the only per-model table: the reference constructor and what the zoo's doc says netspec
knowingly does differently, applied to the reference so that the rest is compared exactly.
Used by crates/train/tests/parity.rs (run by scripts/parity.sh); nothing here is needed at run time.
"""
import json
import sys
import time
import traceback

import numpy as np
import torch
import torchvision
import timm
from safetensors.torch import save_file

# model -> (library, constructor, differences from netspec applied to the reference)
REFERENCES = {
    "resnet18": ("torchvision", "resnet18", {}),
    "resnet34": ("torchvision", "resnet34", {}),
    "resnet50": ("torchvision", "resnet50", {}),
    "squeezenet-1.1": ("torchvision", "squeezenet1_1", {}),
    "mobilenet-v2": ("torchvision", "mobilenet_v2", {}),
    # torchvision builds MobileNetV3 and EfficientNetV2 with BN eps 1e-3; netspec's BN eps is 1e-5.
    "mobilenet-v3-large": ("torchvision", "mobilenet_v3_large", {"bn_eps": 1e-5}),
    "efficientnet-b0": ("torchvision", "efficientnet_b0", {}),
    "efficientnet-v2-s": ("torchvision", "efficientnet_v2_s", {"bn_eps": 1e-5}),
    "mobilenet-v4-medium": ("timm", "mobilenetv4_conv_medium", {}),
    # timm's ViT uses the erf GELU; netspec's GELU is the tanh form.
    "vit-tiny": ("timm", "vit_tiny_patch16_224", {"act_layer": "gelu_tanh"}),
}

BN = torch.nn.modules.batchnorm._BatchNorm


def build(model, classes):
    lib, ctor, diff = REFERENCES[model]
    if lib == "torchvision":
        m = getattr(torchvision.models, ctor)(num_classes=classes)
    else:
        kw = {"act_layer": diff["act_layer"]} if "act_layer" in diff else {}
        m = timm.create_model(ctor, pretrained=False, num_classes=classes, **kw)
    if "bn_eps" in diff:
        for mod in m.modules():
            if isinstance(mod, BN):
                mod.eps = diff["bn_eps"]
    return m


def randomize(m, shape, gen):
    """Random biases, affines and tokens; calibrated, then perturbed BN running statistics."""
    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) * (hi - lo) + lo)

    with torch.no_grad():
        for name, p in m.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                uniform(p, -0.2, 0.2)
            elif p.dim() == 1 and leaf == "weight":  # BN / LN gamma
                uniform(p, 0.5, 1.5)
            elif leaf in ("cls_token", "pos_embed"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
        bns = [mod for mod in m.modules() if isinstance(mod, BN)]
        if bns:
            for mod in bns:
                mod.reset_running_stats()
                mod.momentum = None  # a cumulative average over the calibration pass
            m.train()
            m(torch.randn([8] + shape, generator=gen))
            for mod in bns:
                std = (mod.running_var + mod.eps).sqrt()
                mod.running_mean.add_((torch.rand(std.shape, generator=gen) * 0.4 - 0.2) * std)
                mod.running_var.mul_(torch.rand(std.shape, generator=gen) * 0.7 + 0.7)
                mod.num_batches_tracked.fill_(7)
                mod.momentum = 0.1
    return m.eval()


def run(job):
    t0 = time.time()
    torch.manual_seed(20261201)  # the library's own initialisation draws from the global generator
    gen = torch.Generator().manual_seed(20261201)
    shape = job["input"]
    model = randomize(build(job["model"], job["classes"]), shape, gen)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, job["weights"])
    x = torch.randn([job["batch"]] + shape, generator=gen)
    x.numpy().astype("<f4").tofile(job["x"])
    with torch.no_grad():
        y32 = model(x)
        y64 = model.double()(x.double())
    y64.numpy().astype("<f8").tofile(job["logits"])
    y32.numpy().astype("<f4").tofile(job["logits32"])
    ref_max = float(y64.abs().max())
    return {
        "ref_max": ref_max,
        "torch32_rel": float((y32.double() - y64).abs().max()) / ref_max,
        "tensors": len(model.state_dict()),
        "seconds": time.time() - t0,
    }


def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for job in jobs:
        try:
            r = run(job)
            r["ok"] = True
        except Exception:
            r = {"ok": False, "error": traceback.format_exc()}
        r["model"] = job["model"]
        results.append(r)
    json.dump(
        {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "threads": torch.get_num_threads(),
            "results": results,
        },
        open(sys.argv[2], "w"),
        indent=1,
    )


if __name__ == "__main__":
    main()
