"""Rewrites the weight-gradient convolutions of a netspec train-step module (an experiment).

netspec's generic VJP of a convolution gives the kernel cotangent as another convolution,
`convolution(x, ct) dim_numbers = [f, b, 0, 1]x[i, o, 0, 1]->[f, b, 0, 1]`, whose "window" is the
whole feature map (28×28 for mnist-cnn). XLA:CPU runs that form slowly. This script replaces each such
op (stride 1, no dilation, no groups) by an explicit patch matrix and one matrix product:

    dW[o, c, i, j] = Σ_{b,h,w} xpad[b, c, h + i, w + j] · ct[b, o, h, w]
    patches = concatenate_{i,j} reshape(slice(xpad, i, j), [B, C, 1, H, W])   # [B, C, k², H, W]
    dW = reshape(dot_general(ct, patches, contracting (b, h, w)), [O, C, k, k])

or, with --form taps, by k² separate dot_generals (no k²-sized copy of x). The result has the same
signature, so it runs with `netspec bench MODEL --mlir OUT`.

    python bench/experiments/wgrad_rewrite.py IN.mlir OUT.mlir [--form im2col|taps]
"""
import re
import sys

CONV = re.compile(
    r"^(\s*)(%\S+) = stablehlo\.convolution\((%[^,]+), (%[^)]+)\) dim_numbers = \[f, b, 0, 1\]x\[i, o, 0, 1\]->\[f, b, 0, 1\], "
    r"window = \{stride = \[1, 1\], pad = \[\[(\d+), (\d+)\], \[(\d+), (\d+)\]\], lhs_dilate = \[1, 1\], rhs_dilate = \[1, 1\]\} "
    r"\{batch_group_count = 1 : i64, feature_group_count = 1 : i64\} : "
    r"\(tensor<(\d+)x(\d+)x(\d+)x(\d+)xf32>, tensor<(\d+)x(\d+)x(\d+)x(\d+)xf32>\) -> tensor<(\d+)x(\d+)x(\d+)x(\d+)xf32>$")


def t(*dims):
    return "tensor<" + "x".join(str(d) for d in dims) + "xf32>"


def rewrite(line, n, form):
    m = CONV.match(line)
    if not m:
        return None
    ind, res, x, ct = m.group(1), m.group(2), m.group(3), m.group(4)
    pt, pb, pl, pr = (int(m.group(i)) for i in range(5, 9))
    B, C, H, W = (int(m.group(i)) for i in range(9, 13))
    B2, O, Ho, Wo = (int(m.group(i)) for i in range(13, 17))
    O2, C2, kh, kw = (int(m.group(i)) for i in range(17, 21))
    assert (B, O, C) == (B2, O2, C2), line
    p = f"%wg{n}_"
    out = [f"{ind}{p}z = stablehlo.constant dense<0.0> : tensor<f32>"]
    Hp, Wp = H + pt + pb, W + pl + pr
    out.append(f"{ind}{p}xp = stablehlo.pad {x}, {p}z, low = [0, 0, {pt}, {pl}], high = [0, 0, {pb}, {pr}], "
               f"interior = [0, 0, 0, 0] : ({t(B, C, H, W)}, tensor<f32>) -> {t(B, C, Hp, Wp)}")
    taps = []
    for i in range(kh):
        for j in range(kw):
            s = f"{p}s{i}_{j}"
            out.append(f"{ind}{s} = stablehlo.slice {p}xp [0:{B}, 0:{C}, {i}:{i + Ho}, {j}:{j + Wo}] : "
                       f"({t(B, C, Hp, Wp)}) -> {t(B, C, Ho, Wo)}")
            taps.append(s)
    if form == "im2col":
        rs = []
        for s in taps:
            out.append(f"{ind}{s}r = stablehlo.reshape {s} : ({t(B, C, Ho, Wo)}) -> {t(B, C, 1, Ho, Wo)}")
            rs.append(s + "r")
        K = kh * kw
        out.append(f"{ind}{p}pm = stablehlo.concatenate {', '.join(rs)}, dim = 2 : "
                   f"({', '.join([t(B, C, 1, Ho, Wo)] * K)}) -> {t(B, C, K, Ho, Wo)}")
        out.append(f"{ind}{p}d = stablehlo.dot_general {ct}, {p}pm, contracting_dims = [0, 2, 3] x [0, 3, 4] : "
                   f"({t(B, O, Ho, Wo)}, {t(B, C, K, Ho, Wo)}) -> {t(O, C, K)}")
        out.append(f"{ind}{res} = stablehlo.reshape {p}d : ({t(O, C, K)}) -> {t(O, C, kh, kw)}")
    else:
        ds = []
        for s in taps:
            out.append(f"{ind}{s}d = stablehlo.dot_general {ct}, {s}, contracting_dims = [0, 2, 3] x [0, 2, 3] : "
                       f"({t(B, O, Ho, Wo)}, {t(B, C, Ho, Wo)}) -> {t(O, C)}")
            out.append(f"{ind}{s}e = stablehlo.reshape {s}d : ({t(O, C)}) -> {t(O, C, 1)}")
            ds.append(s + "e")
        K = kh * kw
        out.append(f"{ind}{p}d = stablehlo.concatenate {', '.join(ds)}, dim = 2 : "
                   f"({', '.join([t(O, C, 1)] * K)}) -> {t(O, C, K)}")
        out.append(f"{ind}{res} = stablehlo.reshape {p}d : ({t(O, C, K)}) -> {t(O, C, kh, kw)}")
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    form = "im2col"
    if "--form" in sys.argv:
        form = sys.argv[sys.argv.index("--form") + 1]
    lines, n = [], 0
    for line in open(src).read().splitlines():
        r = rewrite(line, n, form)
        if r is None:
            lines.append(line)
        else:
            lines.extend(r)
            n += 1
    open(dst, "w").write("\n".join(lines) + "\n")
    print(f"rewrote {n} weight-gradient convolutions ({form})", file=sys.stderr)


if __name__ == "__main__":
    main()
