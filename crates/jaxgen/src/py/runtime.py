# ---------------------------------------------------------------------------------------------
# Loss, optimizer, schedule, data order, data loading, init, safetensors, traces, main.
# Everything below is independent of the network; `forward` above is the network.
# ---------------------------------------------------------------------------------------------

def run_forward(c, x):
    """`forward`, then a check that it read exactly the parameters of the ABI list."""
    logits = forward(c, x.astype(COMPUTE)).astype(F32)  # the loss and softmax in f32
    expected = {name for name, _, _, _ in PARAMS}
    if c.used != expected:
        raise RuntimeError("forward and the parameter ABI disagree: read but not listed %s, listed but not read %s"
                           % (sorted(c.used - expected), sorted(expected - c.used)))
    return logits


def loss_fn(params, stats, x, y, label_smoothing, key=None):
    """Mean softmax cross-entropy with targets (1 − ls)·onehot + ls/K, in train mode."""
    c = Ctx(params, stats, True, key)
    logits = run_forward(c, x)
    k = logits.shape[-1]
    targets = (1.0 - label_smoothing) * jax.nn.one_hot(y, k, dtype=jnp.float32) + label_smoothing / k
    loss = -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1))
    correct = jnp.sum((jnp.argmax(logits, axis=-1) == y).astype(jnp.int32))
    return loss, (c.new_stats, correct)


# ---- optimizers (netspec's nn::Optimizer; weight decay only on `decay` parameters) ----------
DECAY = {name: decay for name, _, _, decay in PARAMS}


def init_opt_state(params, optimizer):
    """SGD: none; momentum: m; Adam/AdamW: m and v (all zeros)."""
    zeros = {n: jnp.zeros_like(p) for n, p in params.items()}
    if optimizer == "sgd":
        return {}
    if optimizer == "momentum":
        return {"m": zeros}
    return {"m": zeros, "v": {n: jnp.zeros_like(p) for n, p in params.items()}}


def apply_optimizer(params, grads, opt, step, lr, cfg):
    """One update. `step` counts completed steps; bias correction uses t = step + 1."""
    kind, wd = cfg["optimizer"], cfg["weight_decay"]
    new_p, new_m, new_v = {}, {}, {}
    t = (step + 1).astype(jnp.float32)
    for n, p in params.items():
        g = grads[n]
        decay = wd if DECAY[n] else 0.0
        if kind == "sgd":  # p ← p − lr·(g + wd·p)
            new_p[n] = p - lr * (g + decay * p)
        elif kind == "momentum":  # m ← μ·m + (g + wd·p), p ← p − lr·m
            m = cfg["mu"] * opt["m"][n] + (g + decay * p)
            new_m[n] = m
            new_p[n] = p - lr * m
        elif kind in ("adam", "adamw"):
            b1, b2, eps = cfg["beta1"], cfg["beta2"], cfg["eps"]
            if kind == "adam":  # L2 coupled into the gradient
                g = g + decay * p
            m = b1 * opt["m"][n] + (1.0 - b1) * g
            v = b2 * opt["v"][n] + (1.0 - b2) * g * g
            m_hat = m / (1.0 - b1 ** t)
            v_hat = v / (1.0 - b2 ** t)
            update = m_hat / (jnp.sqrt(v_hat) + eps)
            if kind == "adamw":  # decoupled: p ← p − lr·(m̂/(√v̂ + ε) + wd·p)
                update = update + decay * p
            new_m[n], new_v[n] = m, v
            new_p[n] = p - lr * update
        else:
            raise ValueError("unknown optimizer %r" % kind)
    if kind == "sgd":
        return new_p, {}
    if kind == "momentum":
        return new_p, {"m": new_m}
    return new_p, {"m": new_m, "v": new_v}


def make_train_step(cfg):
    ls = cfg["label_smoothing"]

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(params, opt, stats, step, x, y, lr, key):
        (loss, (new_stats, correct)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, stats, x, y, ls, key)
        params, opt = apply_optimizer(params, grads, opt, step, lr, cfg)
        return params, opt, new_stats, loss, correct

    return train_step


@jax.jit
def eval_batch(params, stats, x, y):
    """Sum of (unsmoothed) losses and correct count with the running statistics."""
    logits = run_forward(Ctx(params, stats, False), x)
    logp = jax.nn.log_softmax(logits, axis=-1)
    loss_sum = -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=-1))
    correct = jnp.sum((jnp.argmax(logits, axis=-1) == y).astype(jnp.int32))
    return loss_sum, correct


# ---- learning-rate schedule (netspec train::schedule, per step) -----------------------------
def learning_rate(s, peak, schedule, warmup_steps, total_steps):
    """Rate of update s (0-based), computed in f64 and rounded to f32 once."""
    if schedule == "constant":
        v = peak
    elif s < warmup_steps:
        v = peak * (s + 1) / warmup_steps
    elif s < total_steps:
        v = peak * 0.5 * (1.0 + math.cos(math.pi * (s - warmup_steps) / (total_steps - warmup_steps)))
    else:
        v = 0.0
    return float(np.float32(v))


# ---- data order (netspec train::order: SplitMix64, Fisher–Yates, per-sample streams) --------
M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, state):
        self.s = state & M64

    def next(self):
        self.s = (self.s + GAMMA) & M64
        return mix64(self.s)

    def below(self, m):
        """Uniform in 0..m, unbiased by rejection."""
        limit = (1 << 64) - ((1 << 64) % m)
        while True:
            x = self.next()
            if x < limit:
                return x % m

    def unit(self):
        """Uniform in [−1, 1) from 53 random bits (spec::init)."""
        return 2.0 * (float(self.next() >> 11) * (1.0 / float(1 << 53))) - 1.0


def epoch_order(n, seed, epoch, shuffle):
    if not shuffle:
        return list(range(n))
    r = SplitMix64(mix64(mix64(seed ^ 0x5348) ^ epoch))
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def augment_rng(seed, epoch, position):
    return SplitMix64(mix64(mix64(mix64(seed ^ 0x4155) ^ epoch) ^ position))


# ---- initialisation (spec::init, bit for bit) -----------------------------------------------
LN2 = float.fromhex("0x1.62e42fefa39efp-1")


def exact_ln(x):
    """ln from +, −, ×, ÷ only (as spec::init does): x = m·2^e, ln x = e·ln 2 + 2·atanh(t)."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    e = ((bits >> 52) & 0x7FF) - 1023
    m = struct.unpack("<d", struct.pack("<Q", (bits & 0xFFFFFFFFFFFFF) | (1023 << 52)))[0]
    if m > math.sqrt(2.0):
        m *= 0.5
        e += 1
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    s = 0.0
    for n in range(14, -1, -1):
        s = s * t2 + 1.0 / float(2 * n + 1)
    return float(e) * LN2 + 2.0 * t * s


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def init_tensor(name, shape, init, seed):
    """One tensor of spec::init: normals by Marsaglia's polar method from a per-name stream."""
    n = int(np.prod(shape, dtype=np.int64))
    kind = init[0]
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "ones":
        return np.ones(shape, np.float32)
    if kind == "constant":
        return np.full(shape, init[1], np.float32)
    std = math.sqrt(2.0 / init[1]) if kind == "he" else init[1]
    rng = SplitMix64(seed ^ fnv1a64(name.encode("utf-8")))
    out = []
    while len(out) < n:
        u, v = rng.unit(), rng.unit()
        s = u * u + v * v
        if 0.0 < s < 1.0:
            f = math.sqrt(-2.0 * exact_ln(s) / s)
            out.append(std * (u * f))
            out.append(std * (v * f))
    return np.array(out[:n], np.float64).astype(np.float32).reshape(shape)


def init_state(seed):
    params = {name: init_tensor(name, shape, init, seed) for name, shape, init, _ in PARAMS}
    stats = {name: init_tensor(name, shape, init, 0) for name, shape, init in BUFFERS}
    return params, stats


# ---- safetensors (F32 and I32 only) ----------------------------------------------------------
ST_DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4")}


def read_safetensors(path):
    """{name: array} and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors header" % path)
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        if info["dtype"] not in ST_DTYPES:
            raise ValueError("%s: tensor %s has dtype %s (only F32 and I32 are read)" % (path, name, info["dtype"]))
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """`tensors`: list of (name, array) written in that order as F32/I32, header padded to 8."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, a in tensors:
        a = np.asarray(a)
        dtype = "I32" if np.issubdtype(a.dtype, np.integer) else "F32"
        raw = np.ascontiguousarray(a, ST_DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def load_init(path):
    """Parameters (and BN buffers, when present) from a netspec init/checkpoint file."""
    tensors, _ = read_safetensors(path)
    params, stats = init_state_shapes_only()
    for name, shape, _, _ in PARAMS:
        if name not in tensors:
            raise ValueError("%s: parameter %s is missing" % (path, name))
        if tuple(tensors[name].shape) != tuple(shape):
            raise ValueError("%s: %s has shape %s, the network needs %s" % (path, name, list(tensors[name].shape), list(shape)))
        params[name] = tensors[name].astype(np.float32)
    for name, shape, _ in BUFFERS:
        if name in tensors:
            stats[name] = tensors[name].astype(np.float32).reshape(shape)
    return params, stats


def init_state_shapes_only():
    """Zero parameters and default BN buffers (mean 0, var 1), to be filled from a file."""
    params = {name: np.zeros(shape, np.float32) for name, shape, _, _ in PARAMS}
    stats = {name: init_tensor(name, shape, init, 0) for name, shape, init in BUFFERS}
    return params, stats


# ---- datasets (IDX, CIFAR-10 binary, lean4-mlir's Imagenette binary) -------------------------
def read_maybe_gzip(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def find_idx(directory, name):
    for candidate in (os.path.join(directory, name + ".gz"), os.path.join(directory, name)):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError("%s(.gz) not found in %s" % (name, directory))


def load_idx(images_path, labels_path):
    img, lab = read_maybe_gzip(images_path), read_maybe_gzip(labels_path)
    magic, n, rows, cols = struct.unpack(">IIII", img[:16])
    if magic != 2051:
        raise ValueError("%s: magic %d, expected 2051" % (images_path, magic))
    magic_l, n_l = struct.unpack(">II", lab[:8])
    if magic_l != 2049 or n_l != n:
        raise ValueError("%s: magic %d / count %d, expected 2049 / %d" % (labels_path, magic_l, n_l, n))
    x = np.frombuffer(img, np.uint8, n * rows * cols, 16).reshape(n, 1, rows, cols)
    return x, np.frombuffer(lab, np.uint8, n, 8).astype(np.int32)


def load_cifar10(files):
    recs = np.concatenate([np.frombuffer(open(f, "rb").read(), np.uint8).reshape(-1, 3073) for f in files])
    return recs[:, 1:].reshape(-1, 3, 32, 32), recs[:, 0].astype(np.int32)


def load_imagenette(path, size):
    data = open(path, "rb").read()
    n = struct.unpack("<I", data[:4])[0]
    recs = np.frombuffer(data, np.uint8, n * (1 + 3 * size * size), 4).reshape(n, -1)
    return recs[:, 1:].reshape(n, 3, size, size), recs[:, 0].astype(np.int32)


def load_split(dataset, directory, train):
    if dataset in ("mnist", "fashion-mnist"):
        prefix = "train" if train else "t10k"
        return load_idx(find_idx(directory, prefix + "-images-idx3-ubyte"),
                        find_idx(directory, prefix + "-labels-idx1-ubyte"))
    if dataset == "cifar10":
        names = ["data_batch_%d.bin" % i for i in range(1, 6)] if train else ["test_batch.bin"]
        return load_cifar10([os.path.join(directory, f) for f in names])
    if dataset == "imagenette":
        return load_imagenette(os.path.join(directory, "train.bin" if train else "val.bin"), 256 if train else 224)
    raise ValueError("unknown dataset %r" % dataset)


def preprocess(images, dataset, train, seed, epoch, first_position, augment):
    """u8 CHW → f32 (train::augment): crop (random or center), flip, x/255, the recipe's mean/std."""
    n, ch, h, w = images.shape
    oh, ow = INPUT[1], INPUT[2]
    crop = train and augment["random_crop"]
    flip = train and augment["hflip"]
    out = np.empty((n, ch, oh, ow), np.float32)
    for k in range(n):
        if crop or flip:
            rng = augment_rng(seed, epoch, first_position + k)
        if crop:
            dy = rng.below(h - oh + 1)
            dx = rng.below(w - ow + 1)
        else:
            dy, dx = (h - oh) // 2, (w - ow) // 2
        img = images[k, :, dy:dy + oh, dx:dx + ow]
        if flip and (rng.next() >> 63) == 1:
            img = img[:, :, ::-1]
        out[k] = img
    out = out / np.float32(255.0)
    if augment["mean"]:
        mean = np.array(augment["mean"], np.float32).reshape(1, -1, 1, 1)
        std = np.array(augment["std"], np.float32).reshape(1, -1, 1, 1)
        out = (out - mean) / std
    return out.astype(np.float32)


# ---- traces (netspec's JSONL format) ---------------------------------------------------------
def trace_config(cfg, shuffle):
    """The header's config, key for key as `netspec train` writes it (serde of spec::RunConfig)."""
    c = {"optimizer": cfg["optimizer"], "lr": cfg["lr"], "batch_size": cfg["batch_size"], "epochs": cfg["epochs"],
         "weight_decay": cfg["weight_decay"], "label_smoothing": cfg["label_smoothing"],
         "warmup_epochs": cfg["warmup_epochs"], "schedule": cfg["schedule"], "seed": cfg["seed"], "shuffle": shuffle,
         "augment": cfg["augment"], "dataset": cfg["dataset"]}
    if cfg.get("precision", "f32") != "f32":
        c["precision"] = cfg["precision"]  # absent for f32, as netspec writes it
    if "normalize" in cfg:
        c["normalize"] = cfg["normalize"]
    if cfg["optimizer"] == "momentum":
        c["momentum"] = cfg["mu"]
    if cfg["optimizer"] in ("adam", "adamw"):
        # Adam's constants appear only where they differ from the usual ones.
        for key, usual in (("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8)):
            if cfg[key] != usual:
                c[key] = cfg[key]
    return c


class TraceWriter:
    def __init__(self, path, cfg, shuffle):
        self.f = open(path, "w") if path else None
        total = sum(int(np.prod(s, dtype=np.int64)) for _, s, _, _ in PARAMS)
        self.write({"kind": "header", "phase": "phase2", "netspec_name": NAME,
                    "netspec_hash": hashlib.sha256(SPEC_TEXT.encode("utf-8")).hexdigest(),
                    "config": trace_config(cfg, shuffle), "total_params": total,
                    "dataset": cfg["dataset"], "emitter_version": EMITTER_VERSION})

    def write(self, obj):
        if self.f:
            self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")
            self.f.flush()


# ---- training --------------------------------------------------------------------------------
def evaluate(params, stats, x_u8, y, cfg, batch_size=500):
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        x = preprocess(x_u8[i:i + batch_size], cfg["dataset"], False, 0, 0, 0, cfg)
        l, c = eval_batch(params, stats, jnp.asarray(x), jnp.asarray(y[i:i + batch_size]))
        loss_sum, correct = loss_sum + float(l), correct + int(c)
    return loss_sum / len(y), correct


def train(args, cfg):
    directory = args.data or DEFAULT_DATA_DIRS.get(cfg["dataset"])
    if not directory:
        raise SystemExit("no data directory: pass --data DIR (dataset %s)" % cfg["dataset"])
    x_train, y_train = load_split(cfg["dataset"], directory, True)
    try:
        x_test, y_test = load_split(cfg["dataset"], directory, False)
    except FileNotFoundError:
        x_test = y_test = None
    params, stats = load_init(args.init) if args.init else init_state(cfg["seed"])
    params = {n: jnp.asarray(p) for n, p in params.items()}
    stats = {n: jnp.asarray(s) for n, s in stats.items()}
    opt = init_opt_state(params, cfg["optimizer"])
    bsz = cfg["batch_size"]
    per_epoch = len(y_train) // bsz  # the partial last batch is dropped
    if per_epoch == 0:
        raise SystemExit("%d samples make no batch of %d" % (len(y_train), bsz))
    total = cfg["epochs"] * per_epoch
    warmup = cfg["warmup_epochs"] * per_epoch
    steps = total if args.max_steps is None else min(total, args.max_steps)
    shuffle = cfg["shuffle"] and not args.no_shuffle
    trace = TraceWriter(args.trace, cfg, shuffle)
    peak = float(np.float32(cfg["lr"]))  # the f32 peak rate, widened (as netspec's schedule takes it)
    train_step = make_train_step(cfg)
    base_key = jax.random.PRNGKey(cfg["seed"] & 0x7FFFFFFF)
    order, t0 = None, time.time()
    for s in range(steps):
        epoch, b = divmod(s, per_epoch)
        if b == 0:
            order = epoch_order(len(y_train), cfg["seed"], epoch, shuffle)
            t_epoch = time.time()
        idx = np.array(order[b * bsz:(b + 1) * bsz])
        x = preprocess(x_train[idx], cfg["dataset"], True, cfg["seed"], epoch, b * bsz, cfg)
        lr = learning_rate(s, peak, cfg["schedule"], warmup, total)
        t_step = time.time()
        params, opt, stats, loss, correct = train_step(
            params, opt, stats, jnp.int32(s), jnp.asarray(x), jnp.asarray(y_train[idx]), jnp.float32(lr),
            jax.random.fold_in(base_key, s))
        loss = float(loss)
        trace.write({"kind": "step", "step": s + 1, "epoch": epoch, "loss": loss, "lr": lr,
                     "wall_ms": (time.time() - t_step) * 1000.0})
        last_of_epoch = b == per_epoch - 1 or s == steps - 1
        if last_of_epoch:
            line = {"kind": "epoch", "epoch": epoch, "wall_ms": (time.time() - t_epoch) * 1000.0}
            msg = "[epoch %d] step %d lr %.6g loss %.4f" % (epoch, s + 1, lr, loss)
            if x_test is not None and not args.no_eval:
                test_loss, c = evaluate(params, stats, x_test, y_test, cfg)
                line.update(test_loss=test_loss, test_acc=c / len(y_test), test_correct=c, test_total=len(y_test))
                msg += " test acc %d/%d (%.4f)" % (c, len(y_test), c / len(y_test))
            trace.write(line)
            print(msg + " [%.1f s]" % (time.time() - t0), flush=True)
    if args.save:
        tensors = [(n, params[n]) for n, _, _, _ in PARAMS] + [(n, stats[n]) for n, _, _ in BUFFERS]
        write_safetensors(args.save, tensors, {"netspec_name": NAME})


def dump_grads(init_path, batch_path, out_path, label_smoothing, adam_lr):
    """Loss and every parameter gradient for one batch (train mode), then one Adam step
    (β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay, t = 1) and the loss after it."""
    params, stats = load_init(init_path)
    batch, _ = read_safetensors(batch_path)
    x, y = jnp.asarray(batch["x"], jnp.float32), jnp.asarray(batch["y"], jnp.int32)
    params = {n: jnp.asarray(p) for n, p in params.items()}
    stats = {n: jnp.asarray(s) for n, s in stats.items()}
    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True), static_argnums=(4,))
    (loss, (new_stats, _)), grads = grad_fn(params, stats, x, y, label_smoothing)
    adam = {"optimizer": "adam", "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    adam_step = jax.jit(functools.partial(apply_optimizer, cfg=adam))
    p2, _ = adam_step(params, grads, init_opt_state(params, "adam"), jnp.int32(0), jnp.float32(adam_lr))
    (loss2, _), _ = grad_fn(p2, new_stats, x, y, label_smoothing)
    tensors = [("loss", np.float32(loss)), ("loss2", np.float32(loss2))]
    tensors += [("grad." + n, grads[n]) for n, _, _, _ in PARAMS]
    tensors += [("stats." + n, new_stats[n]) for n, _, _ in BUFFERS]
    write_safetensors(out_path, tensors)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train %s with JAX (exported by netspec)." % NAME)
    ap.add_argument("--data", help="dataset directory (default: the dataset's standard place, if any)")
    ap.add_argument("--init", help="start from this netspec init/checkpoint (safetensors) instead of spec::init")
    ap.add_argument("--trace", help="write a JSONL trace here")
    ap.add_argument("--save", help="write the final parameters and BN buffers here (safetensors)")
    ap.add_argument("--no-shuffle", action="store_true", help="identity data order every epoch")
    ap.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation after each epoch")
    ap.add_argument("--max-steps", type=int, help="stop after this many updates (the schedule is unchanged)")
    # Recipe overrides, spelled as `netspec train` spells them (the same flags give the same config).
    ap.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10", "imagenette"])
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float, help="peak learning rate")
    ap.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "adamw"])
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--label-smoothing", type=float)
    ap.add_argument("--warmup-epochs", type=int)
    ap.add_argument("--schedule", choices=["constant", "cosine"])
    ap.add_argument("--seed", type=int, help="seed of the initial parameters and the data order")
    ap.add_argument("--precision", choices=["f32", "bf16"], help="mixed precision, as netspec's --precision")
    ap.add_argument("--grads", nargs=3, metavar=("INIT", "BATCH", "OUT"),
                    help="oracle mode: write loss, gradients and the post-Adam loss for one batch, then exit")
    ap.add_argument("--adam-lr", type=float, default=1e-3, help="learning rate of the --grads Adam step")
    args = ap.parse_args(argv)
    cfg = dict(RECIPE)
    for key in ("dataset", "epochs", "batch_size", "lr", "optimizer", "weight_decay", "label_smoothing",
                "warmup_epochs", "schedule", "seed", "precision"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.optimizer == "momentum" and RECIPE["optimizer"] != "momentum":
        cfg["mu"] = 0.9  # netspec train's `--optimizer momentum`
    set_precision(cfg["precision"])
    if args.grads:
        dump_grads(*args.grads, cfg["label_smoothing"], args.adam_lr)
    else:
        train(args, cfg)


if __name__ == "__main__":
    main()
