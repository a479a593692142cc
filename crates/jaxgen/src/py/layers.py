# ---------------------------------------------------------------------------------------------
# Core-layer helpers, written from the doc comments of netspec's spec::Layer (crates/spec/src/core.rs);
# blocks arrive expanded, and residual sums and parallel joins are plain Python in forward().
# Layout: activations NCHW, tokens [B, T, D], conv kernels OIHW, dense kernels [in, out].
# Every helper reads its parameters from the context `c` by their ABI name (prefix + suffix).
# ---------------------------------------------------------------------------------------------

BN_EPS = 1e-5  # batch norm and instance norm
LN_EPS = 1e-6  # layer norm
BN_MOMENTUM = 0.1  # running = 0.9 * running + 0.1 * batch

# Mixed precision (RECIPE["precision"], netspec's --precision), as netspec's code generator applies
# it: the images and every parameter are cast to COMPUTE where the forward pass reads them; matrix
# products and convolutions take COMPUTE operands and accumulate in f32 (preferred_element_type),
# rounded back to COMPUTE; sums and means, normalisation statistics, softmax and the loss are f32.
# A value broadcast into an activation (biases, the SE gate, layer scale, CLS token and position
# table) is applied in f32 and rounded once, so that its gradient, a sum over the broadcast axes,
# also accumulates in f32 (netspec's sums do; JAX would sum a bf16 broadcast's cotangent in bf16).
# Parameters, gradients, optimizer state and BN running statistics stay f32.
F32 = jnp.float32
COMPUTE = jnp.bfloat16 if RECIPE.get("precision") == "bf16" else jnp.float32


def set_precision(name):
    global COMPUTE
    COMPUTE = jnp.bfloat16 if name == "bf16" else jnp.float32


def mm(a, b):
    """a·b over a's last and b's first axis, accumulated in f32, in a's type."""
    return jnp.dot(a, b, precision=lax.Precision.HIGHEST, preferred_element_type=F32).astype(a.dtype)


def add_f32(x, b):
    """x + b (b broadcast), computed in f32 and rounded to x's type once."""
    return (x.astype(F32) + b.astype(F32)).astype(x.dtype)


def mul_f32(x, b):
    """x · b (b broadcast), computed in f32 and rounded to x's type once."""
    return (x.astype(F32) * b.astype(F32)).astype(x.dtype)


def relu(x):
    """max(x, 0) with derivative 0 at the kink, as netspec's select (jnp.maximum would give 1/2 there;
    exact ties are rare in f32 but common in bf16)."""
    return jnp.where(x > 0.0, x, jnp.zeros_like(x))


def relu6(x):
    """clip(x, 0, 6) with derivative 0 at both kinks, as netspec's selects."""
    return jnp.where(x > 0.0, jnp.where(x < 6.0, x, jnp.full_like(x, 6.0)), jnp.zeros_like(x))


def hard_sigmoid(x):
    return relu6(x + 3.0) / 6.0


ACTS = {
    "identity": lambda x: x,
    "relu": relu,
    "relu6": relu6,
    "swish": lambda x: x * jax.nn.sigmoid(x),
    "hswish": lambda x: x * hard_sigmoid(x),
    "hsigmoid": hard_sigmoid,
    # tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    "gelu": lambda x: 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x))),
    "sigmoid": jax.nn.sigmoid,
    # exact GELU: 0.5·x·(1 + erf(x/√2))
    "geluErf": lambda x: 0.5 * x * (1.0 + lax.erf(x / math.sqrt(2.0))),
}


class Ctx:
    """Parameters, BN running statistics and the mode of one forward pass.

    `train=True`: BN uses batch statistics and records the updated running statistics in
    `new_stats`; dropout draws masks from `key`. `train=False`: running statistics, no dropout.
    `used` collects the parameter names read, so a run can check that the forward pass and the
    ABI list agree exactly.
    """

    def __init__(self, params, stats, train, key=None):
        self.params = params
        self.stats = stats
        self.train = train
        self.key = key
        self.new_stats = {}
        self.used = set()

    def __getitem__(self, name):
        self.used.add(name)
        return self.params[name].astype(COMPUTE)


def conv(x, w, stride, pad, groups=1):
    """2-D cross-correlation, OIHW kernel, symmetric zero padding, `groups` feature groups."""
    return lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
        precision=lax.Precision.HIGHEST, preferred_element_type=F32).astype(x.dtype)


def batch_norm(c, prefix, x):
    """BN over (N, H, W) for images, over N for flat input; biased variance. In f32; y in x's type."""
    dt, x = x.dtype, x.astype(F32)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    bshape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    if c.train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean.reshape(bshape)), axis=axes)
        keep = 1.0 - BN_MOMENTUM
        c.new_stats[prefix + ".mean"] = keep * c.stats[prefix + ".mean"] + BN_MOMENTUM * lax.stop_gradient(mean)
        c.new_stats[prefix + ".var"] = keep * c.stats[prefix + ".var"] + BN_MOMENTUM * lax.stop_gradient(var)
    else:
        mean, var = c.stats[prefix + ".mean"], c.stats[prefix + ".var"]
    y = (x - mean.reshape(bshape)) * lax.rsqrt(var.reshape(bshape) + BN_EPS)
    y = y * c[prefix + ".gamma"].astype(F32).reshape(bshape) + c[prefix + ".beta"].astype(F32).reshape(bshape)
    return y.astype(dt)


def layer_norm(c, prefix, x, axis):
    """LN over one feature axis (the last for [B, N] and [B, T, D], C for images); affine. In f32."""
    dt, x = x.dtype, x.astype(F32)
    mean = jnp.mean(x, axis=axis, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axis, keepdims=True)
    bshape = [1] * x.ndim
    bshape[axis] = -1
    y = (x - mean) * lax.rsqrt(var + LN_EPS)
    y = y * c[prefix + ".gamma"].astype(F32).reshape(bshape) + c[prefix + ".beta"].astype(F32).reshape(bshape)
    return y.astype(dt)


def instance_norm(c, prefix, x):
    """Per example and channel over (H, W), ε = 1e-5, biased variance, affine. In f32."""
    dt, x = x.dtype, x.astype(F32)
    mean = jnp.mean(x, axis=(2, 3), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(2, 3), keepdims=True)
    y = (x - mean) * lax.rsqrt(var + BN_EPS)
    y = y * c[prefix + ".gamma"].astype(F32).reshape(1, -1, 1, 1) + c[prefix + ".beta"].astype(F32).reshape(1, -1, 1, 1)
    return y.astype(dt)


def dense(c, prefix, x, act):
    """y = act(x·w + b) over the last axis, w: [in, out]."""
    y = add_f32(mm(x, c[prefix + ".w"]), c[prefix + ".b"])
    return ACTS[act](y)


def conv2d(c, prefix, x, stride, pad, groups, bias, act):
    """conv (OIHW kernel, `groups` feature groups) [+ bias], then act."""
    y = conv(x, c[prefix + ".w"], stride, pad, groups)
    if bias:
        y = add_f32(y, c[prefix + ".b"].reshape(1, -1, 1, 1))
    return ACTS[act](y)


def max_pool(x, size, stride, pad):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, size, size), (1, 1, stride, stride),
                             ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def avg_pool(x, size, stride, pad):
    """Zero padding; always divides by size² (padding counts). The window sums in f32."""
    s = lax.reduce_window(x.astype(F32), 0.0, lax.add, (1, 1, size, size), (1, 1, stride, stride),
                          ((0, 0), (0, 0), (pad, pad), (pad, pad))).astype(x.dtype)
    return s * jnp.asarray(1.0 / (size * size), x.dtype)


def global_avg_pool(x, keep):
    """Mean over (H, W), accumulated in f32, in x's type."""
    return jnp.mean(x.astype(F32), axis=(2, 3), keepdims=keep).astype(x.dtype)


def flatten(x):
    return x.reshape(x.shape[0], -1)


def dropout(c, x, rate, index):
    """Inverted dropout; the mask comes from JAX's PRNG (it cannot match netspec's masks)."""
    if not c.train or rate == 0.0 or c.key is None:
        return x
    keep = jax.random.bernoulli(jax.random.fold_in(c.key, index), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def drop_path(c, x, rate, index):
    """Stochastic depth: one keep/drop draw per example; JAX's PRNG (it cannot match netspec's)."""
    if not c.train or rate == 0.0 or c.key is None:
        return x
    keep = jax.random.bernoulli(jax.random.fold_in(c.key, index), 1.0 - rate, x.shape[:1])
    keep = keep.reshape((-1,) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def scale(c, prefix, x, axis):
    """Learned per-feature scale gamma along the feature axis."""
    bshape = [1] * x.ndim
    bshape[axis] = -1
    return mul_f32(x, c[prefix + ".gamma"].reshape(bshape))


def attention(c, prefix, x, heads):
    """Multi-head self-attention; qkv columns [q | k | v], each split into contiguous heads."""
    b, t, d = x.shape
    hd = d // heads
    qkv = add_f32(mm(x, c[prefix + ".qkv.w"]), c[prefix + ".qkv.b"])

    def split(z):  # [B, T, D] → [B, heads, T, hd]
        return z.reshape(b, t, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = split(qkv[..., :d]), split(qkv[..., d:2 * d]), split(qkv[..., 2 * d:])
    q = q * jnp.asarray(1.0 / math.sqrt(hd), q.dtype)  # scaled before the product, as netspec does
    scores = jnp.einsum("bhqe,bhke->bhqk", q, k, precision=lax.Precision.HIGHEST,
                        preferred_element_type=F32).astype(q.dtype)
    att = jax.nn.softmax(scores.astype(F32), axis=-1).astype(q.dtype)  # softmax in f32
    o = jnp.einsum("bhqk,bhke->bhqe", att, v, precision=lax.Precision.HIGHEST,
                   preferred_element_type=F32).astype(att.dtype)
    o = o.transpose(0, 2, 1, 3).reshape(b, t, d)
    return add_f32(mm(o, c[prefix + ".proj.w"]), c[prefix + ".proj.b"])


def to_tokens(x):
    """[B, C, H, W] → [B, H·W, C], positions in row-major (h, w) order."""
    b, d = x.shape[0], x.shape[1]
    return x.reshape(b, d, -1).transpose(0, 2, 1)


def cls_token(c, prefix, x):
    """Prepends the learned CLS token: [B, T, D] → [B, T + 1, D]."""
    b, d = x.shape[0], x.shape[2]
    cls = jnp.broadcast_to(c[prefix + ".cls"].astype(F32).reshape(1, 1, d), (b, 1, d)).astype(x.dtype)
    return jnp.concatenate([cls, x], axis=1)


def pos_embed(c, prefix, x):
    return add_f32(x, c[prefix + ".pos"][None])
