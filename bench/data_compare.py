"""Data-pipeline throughput: netspec's batch producers against PyTorch's DataLoader on the same JPEG files.

    python bench/data_compare.py --data DIR [--workers 1,2] [--rounds 3] [--batches 24] [--batch-size 32]
                                 [--netspec target/release/netspec] [--json-out FILE]

Run it with the bench venv (scripts/setup/bench.sh: torch 2.15.0, torchvision 0.29.2, Pillow 13.0.0). DIR
is an image folder (DIR/train/<class>/*.jpg or DIR/<class>/*.jpg); `netspec bench-data DIR --generate N`
writes an Imagenette-like one (320-pixel shorter side). Both sides do the same work per image: read the
file, decode it to RGB, a random-resized crop (scale 0.08-1, ratio 3/4-4/3) resampled to 224x224
(bilinear, antialiased), a random horizontal flip, x/255, ImageNet mean/std, into float32 CHW batches of
--batch-size (shuffled, partial batch dropped):
- netspec: `netspec bench-data DIR --threads W` (W producer threads; zune-jpeg, fast_image_resize);
- PyTorch: `DataLoader(ImageFolder(DIR, transform), batch_size, shuffle=True, num_workers=W,
  drop_last=True)`, in two variants: the classic transforms (`RandomResizedCrop`, `RandomHorizontalFlip`,
  `ToTensor`, `Normalize` on PIL images) and transforms v2 (`RandomResizedCrop` ... `ToImage`,
  `ToDtype(float32, scale=True)`, `Normalize`, also on PIL images). PIL decodes with libjpeg-turbo.

Method: per worker count, `--rounds` rounds, each running the three pipelines in a rotating order, each in a
fresh process: `--warmup` batches untimed (worker start-up, first reads), then `--batches` batches timed:
wall time and the CPU time of every process involved (netspec: its process, all threads; PyTorch: the main
process and its workers, from /proc/PID/stat). Reported per round and worker count: img/s, img/s per
worker, CPU ms per image; ratios netspec / PyTorch are taken within a round (both saw the same machine load)
against the faster PyTorch variant, and the median over rounds is reported. `uptime` is recorded before and
after: on a shared machine only these same-round ratios mean anything.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def torch_run(args):
    """One PyTorch measurement in this process; prints one JSON line."""
    import torch
    import torchvision
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    if args.variant == "v1":
        from torchvision import transforms as T

        tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    else:
        from torchvision.transforms import v2

        tf = v2.Compose(
            [
                v2.RandomResizedCrop(224, antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )
    root = os.path.join(args.data, "train") if os.path.isdir(os.path.join(args.data, "train")) else args.data
    ds = torchvision.datasets.ImageFolder(root, transform=tf)
    dl = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True,
                    persistent_workers=False)
    it = iter(dl)
    for _ in range(args.warmup):
        next(it)
    pids = [os.getpid()] + [w.pid for w in getattr(it, "_workers", [])]
    c0 = sum(cpu_seconds(p) for p in pids)
    t0 = time.perf_counter()
    n = 0
    for _ in range(args.batches):
        try:
            x, _y = next(it)
        except StopIteration:
            it = iter(dl)
            pids = [os.getpid()] + [w.pid for w in getattr(it, "_workers", [])]
            x, _y = next(it)
        assert x.shape == (args.batch_size, 3, 224, 224) and x.dtype == torch.float32
        n += x.shape[0]
    wall = time.perf_counter() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - c0
    print(json.dumps({"img_per_s": n / wall, "cpu_ms_per_image": cpu * 1e3 / n, "images": n, "wall_s": wall}))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=24)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--netspec", default=os.path.join(ROOT, "target", "release", "netspec"))
    ap.add_argument("--json-out")
    ap.add_argument("--torch-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="v1", help=argparse.SUPPRESS)
    ap.add_argument("--workers-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_run:
        args.workers = args.workers_one
        return torch_run(args)

    import torch
    import torchvision
    import PIL

    workers = [int(w) for w in args.workers.split(",")]
    meta = {
        "uptime_before": uptime(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "nproc": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "batch_size": args.batch_size,
        "batches": args.batches,
    }
    print(f"# {meta['uptime_before']}", file=sys.stderr)
    results = []
    pipelines = ["netspec", "torch-v1", "torch-v2"]
    for w in workers:
        for r in range(args.rounds):
            order = pipelines[r % 3:] + pipelines[: r % 3]
            row = {"workers": w, "round": r}
            for p in order:
                if p == "netspec":
                    j = run_json([args.netspec, "bench-data", args.data, "--threads", str(w), "--batches",
                                  str(args.batches), "--warmup", str(args.warmup), "--batch-size",
                                  str(args.batch_size), "--seed", str(r)])
                else:
                    j = run_json([sys.executable, os.path.abspath(__file__), "--torch-run", "--data", args.data,
                                  "--variant", p.split("-")[1], "--workers-one", str(w), "--batches",
                                  str(args.batches), "--warmup", str(args.warmup), "--batch-size",
                                  str(args.batch_size)])
                row[p] = {"img_per_s": j["img_per_s"], "cpu_ms_per_image": j["cpu_ms_per_image"]}
            best = max(("torch-v1", "torch-v2"), key=lambda p: row[p]["img_per_s"])
            row["torch_best"] = best
            row["ratio_img_per_s"] = row["netspec"]["img_per_s"] / row[best]["img_per_s"]
            cheapest = min(("torch-v1", "torch-v2"), key=lambda p: row[p]["cpu_ms_per_image"])
            row["ratio_cpu_per_image"] = row[cheapest]["cpu_ms_per_image"] / row["netspec"]["cpu_ms_per_image"]
            results.append(row)
            print(
                f"workers {w} round {r}: "
                + ", ".join(
                    f"{p} {row[p]['img_per_s']:.0f} img/s ({row[p]['img_per_s'] / w:.0f}/worker, "
                    f"{row[p]['cpu_ms_per_image']:.2f} ms CPU/img)"
                    for p in pipelines
                )
                + f"; netspec/{best} {row['ratio_img_per_s']:.2f}x img/s, {row['ratio_cpu_per_image']:.2f}x less CPU/img",
                file=sys.stderr,
            )
    meta["uptime_after"] = uptime()
    print(f"# {meta['uptime_after']}", file=sys.stderr)
    summary = []
    for w in workers:
        rows = [r for r in results if r["workers"] == w]
        med = lambda f: statistics.median(f(r) for r in rows)
        s = {
            "workers": w,
            "netspec_img_per_s": med(lambda r: r["netspec"]["img_per_s"]),
            "torch_v1_img_per_s": med(lambda r: r["torch-v1"]["img_per_s"]),
            "torch_v2_img_per_s": med(lambda r: r["torch-v2"]["img_per_s"]),
            "netspec_cpu_ms_per_image": med(lambda r: r["netspec"]["cpu_ms_per_image"]),
            "torch_v1_cpu_ms_per_image": med(lambda r: r["torch-v1"]["cpu_ms_per_image"]),
            "torch_v2_cpu_ms_per_image": med(lambda r: r["torch-v2"]["cpu_ms_per_image"]),
            "median_ratio_img_per_s": med(lambda r: r["ratio_img_per_s"]),
            "median_ratio_cpu_per_image": med(lambda r: r["ratio_cpu_per_image"]),
        }
        summary.append(s)
        print(
            f"| {w} | {s['netspec_img_per_s']:.0f} ({s['netspec_img_per_s'] / w:.0f}) | "
            f"{s['torch_v1_img_per_s']:.0f} ({s['torch_v1_img_per_s'] / w:.0f}) | "
            f"{s['torch_v2_img_per_s']:.0f} ({s['torch_v2_img_per_s'] / w:.0f}) | "
            f"**{s['median_ratio_img_per_s']:.2f}x** | {s['netspec_cpu_ms_per_image']:.2f} / "
            f"{s['torch_v1_cpu_ms_per_image']:.2f} / {s['torch_v2_cpu_ms_per_image']:.2f} | "
            f"{s['median_ratio_cpu_per_image']:.2f}x |"
        )
    out = {"meta": meta, "rounds": results, "summary": summary}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
