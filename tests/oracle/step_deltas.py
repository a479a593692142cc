"""Per-step loss deltas of two JSONL traces: python step_deltas.py A.jsonl B.jsonl [window]
Prints |A−B| of the loss (and of lr) summarised per window of steps: max, mean, first step above 1e-4."""
import json
import sys


def steps(path):
    return [json.loads(l) for l in open(path) if l.strip() and json.loads(l).get("kind") == "step"]


a, b = steps(sys.argv[1]), steps(sys.argv[2])
w = int(sys.argv[3]) if len(sys.argv) > 3 else 50
n = min(len(a), len(b))
d = [abs(x["loss"] - y["loss"]) for x, y in zip(a, b)]
lr = max(abs(x["lr"] - y["lr"]) for x, y in zip(a, b))
print("steps %d, max |lr delta| %.3e" % (n, lr))
print("| steps | max abs loss delta | mean abs loss delta | max rel loss delta |")
print("|---|---|---|---|")
for s in range(0, n, w):
    seg = d[s:s + w]
    rel = max(di / abs(y["loss"]) for di, y in zip(seg, b[s:s + w]))
    print("| %d-%d | %.2e | %.2e | %.2e |" % (s + 1, min(s + w, n), max(seg), sum(seg) / len(seg), rel))
first = next((i + 1 for i, di in enumerate(d) if di > 1e-4), None)
print("first step with |delta| > 1e-4: %s; step 1..5 deltas: %s" % (first, " ".join("%.1e" % x for x in d[:5])))
