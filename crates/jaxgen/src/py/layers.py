# ---------------------------------------------------------------------------------------------
# Layer helpers, written from the block definitions in netspec's crates/spec/src/layer.rs.
# Layout: activations NCHW, tokens [B, T, D], conv kernels OIHW, dense kernels [in, out].
# Every helper reads its parameters from the context `c` by their ABI name (prefix + suffix).
# ---------------------------------------------------------------------------------------------

BN_EPS = 1e-5  # batch norm and instance norm
LN_EPS = 1e-6  # layer norm
BN_MOMENTUM = 0.1  # running = 0.9 * running + 0.1 * batch


def relu6(x):
    return jnp.clip(x, 0.0, 6.0)


def hard_sigmoid(x):
    return relu6(x + 3.0) / 6.0


ACTS = {
    "identity": lambda x: x,
    "relu": lambda x: jnp.maximum(x, 0.0),
    "relu6": relu6,
    "swish": lambda x: x * jax.nn.sigmoid(x),
    "hswish": lambda x: x * hard_sigmoid(x),
    "hsigmoid": hard_sigmoid,
    # tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    "gelu": lambda x: 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x))),
    "sigmoid": jax.nn.sigmoid,
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
        return self.params[name]


def conv(x, w, stride, pad, groups=1):
    """2-D cross-correlation, OIHW kernel, symmetric zero padding, `groups` feature groups."""
    return lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
        precision=lax.Precision.HIGHEST)


def batch_norm(c, prefix, x):
    """BN over (N, H, W) for images, over N for flat input; biased variance."""
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
    return y * c[prefix + ".gamma"].reshape(bshape) + c[prefix + ".beta"].reshape(bshape)


def layer_norm(c, prefix, x, axis):
    """LN over one feature axis (the last for [B, N] and [B, T, D], C for images); affine."""
    mean = jnp.mean(x, axis=axis, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axis, keepdims=True)
    bshape = [1] * x.ndim
    bshape[axis] = -1
    y = (x - mean) * lax.rsqrt(var + LN_EPS)
    return y * c[prefix + ".gamma"].reshape(bshape) + c[prefix + ".beta"].reshape(bshape)


def instance_norm(c, prefix, x):
    """Per example and channel over (H, W), ε = 1e-5, biased variance, affine."""
    mean = jnp.mean(x, axis=(2, 3), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(2, 3), keepdims=True)
    y = (x - mean) * lax.rsqrt(var + BN_EPS)
    return y * c[prefix + ".gamma"].reshape(1, -1, 1, 1) + c[prefix + ".beta"].reshape(1, -1, 1, 1)


def dense(c, prefix, x, act):
    """y = act(x·w + b), w: [in, out]."""
    y = jnp.dot(x, c[prefix + ".w"], precision=lax.Precision.HIGHEST) + c[prefix + ".b"]
    return ACTS[act](y)


def conv_bias(c, prefix, x, stride, pad, act):
    """conv with bias, then act."""
    y = conv(x, c[prefix + ".w"], stride, pad) + c[prefix + ".b"].reshape(1, -1, 1, 1)
    return ACTS[act](y)


def conv_bn(c, prefix, x, stride, pad, act, groups=1):
    """conv (no bias) → BN → act; parameters `prefix.conv.w`, `prefix.bn.*`."""
    y = conv(x, c[prefix + ".conv.w"], stride, pad, groups)
    return ACTS[act](batch_norm(c, prefix + ".bn", y))


def depthwise_bn(c, prefix, x, kernel, stride, act):
    """Depthwise convBN: groups = channels, kernel [C, 1, k, k], 'same' padding (k − 1)/2."""
    return conv_bn(c, prefix, x, stride, (kernel - 1) // 2, act, groups=x.shape[1])


def max_pool(x, size, stride, pad):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, size, size), (1, 1, stride, stride),
                             ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def avg_pool(x, size, stride, pad):
    """Zero padding; always divides by size² (padding counts)."""
    s = lax.reduce_window(x, 0.0, lax.add, (1, 1, size, size), (1, 1, stride, stride),
                          ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return s / float(size * size)


def global_avg_pool(x):
    return jnp.mean(x, axis=(2, 3))


def flatten(x):
    return x.reshape(x.shape[0], -1)


def dropout(c, x, rate, index):
    """Inverted dropout; the mask comes from JAX's PRNG (it cannot match netspec's masks)."""
    if not c.train or rate == 0.0 or c.key is None:
        return x
    keep = jax.random.bernoulli(jax.random.fold_in(c.key, index), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def squeeze_excite(c, prefix, x, inner, gate):
    """SE: mean over (H, W), 1×1 'convs' as matmuls (kernels stored OIHW), gate, rescale."""
    s = jnp.mean(x, axis=(2, 3))  # [B, C]
    w1 = c[prefix + ".reduce.w"]
    w1 = w1.reshape(w1.shape[0], w1.shape[1])  # [r, C]
    s = ACTS[inner](jnp.dot(s, w1.T, precision=lax.Precision.HIGHEST) + c[prefix + ".reduce.b"])
    w2 = c[prefix + ".expand.w"]
    w2 = w2.reshape(w2.shape[0], w2.shape[1])  # [C, r]
    s = ACTS[gate](jnp.dot(s, w2.T, precision=lax.Precision.HIGHEST) + c[prefix + ".expand.b"])
    return x * s[:, :, None, None]


def basic_block(c, prefix, x, stride, down):
    """ResNet BasicBlock: relu(BN2(conv2(relu(BN1(conv1 3×3/s)))) + shortcut)."""
    h = conv(x, c[prefix + ".conv1.w"], stride, 1)
    h = ACTS["relu"](batch_norm(c, prefix + ".bn1", h))
    h = conv(h, c[prefix + ".conv2.w"], 1, 1)
    h = batch_norm(c, prefix + ".bn2", h)
    sc = conv_bn(c, prefix + ".down", x, stride, 0, "identity") if down else x
    return ACTS["relu"](h + sc)


def bottleneck_block(c, prefix, x, stride, down):
    """ResNet v1.5 bottleneck: 1×1 → 3×3/s → 1×1 (×4), each with BN; relu after the addition."""
    h = ACTS["relu"](batch_norm(c, prefix + ".bn1", conv(x, c[prefix + ".conv1.w"], 1, 0)))
    h = ACTS["relu"](batch_norm(c, prefix + ".bn2", conv(h, c[prefix + ".conv2.w"], stride, 1)))
    h = batch_norm(c, prefix + ".bn3", conv(h, c[prefix + ".conv3.w"], 1, 0))
    sc = conv_bn(c, prefix + ".down", x, stride, 0, "identity") if down else x
    return ACTS["relu"](h + sc)


def inverted_residual(c, prefix, x, expand, stride, skip):
    """MobileNetV2: [expand 1×1 + relu6] → depthwise 3×3/s + relu6 → project 1×1 (linear)."""
    h = conv_bn(c, prefix + ".expand", x, 1, 0, "relu6") if expand else x
    h = depthwise_bn(c, prefix + ".dw", h, 3, stride, "relu6")
    h = conv_bn(c, prefix + ".project", h, 1, 0, "identity")
    return x + h if skip else h


def mbconv(c, prefix, x, expand, kernel, stride, se, act, skip):
    """EfficientNet MBConv: [expand] → depthwise k/s → [SE(inner act, sigmoid)] → project."""
    h = conv_bn(c, prefix + ".expand", x, 1, 0, act) if expand else x
    h = depthwise_bn(c, prefix + ".dw", h, kernel, stride, act)
    if se:
        h = squeeze_excite(c, prefix + ".se", h, act, "sigmoid")
    h = conv_bn(c, prefix + ".project", h, 1, 0, "identity")
    return x + h if skip else h


def mbconv_v3(c, prefix, x, expand, kernel, stride, se, act, skip):
    """MobileNetV3 block: [expand] → depthwise k/s → [SE(relu, hsigmoid)] → project."""
    h = conv_bn(c, prefix + ".expand", x, 1, 0, act) if expand else x
    h = depthwise_bn(c, prefix + ".dw", h, kernel, stride, act)
    if se:
        h = squeeze_excite(c, prefix + ".se", h, "relu", "hsigmoid")
    h = conv_bn(c, prefix + ".project", h, 1, 0, "identity")
    return x + h if skip else h


def fused_mbconv(c, prefix, x, expand, kernel, stride, se, act, skip):
    """EfficientNetV2 Fused-MBConv: fused k/s convBN + act, then (if expanding) [SE] and project."""
    h = conv_bn(c, prefix + ".fused", x, stride, (kernel - 1) // 2, act)
    if expand:
        if se:
            h = squeeze_excite(c, prefix + ".se", h, act, "sigmoid")
        h = conv_bn(c, prefix + ".project", h, 1, 0, "identity")
    return x + h if skip else h


def uib(c, prefix, x, start_kernel, mid_kernel, stride, act, skip):
    """MobileNetV4 UIB: [dw_start (linear)] → expand 1×1 + act → [dw_mid + act] → project."""
    h = x
    if start_kernel > 0:
        h = depthwise_bn(c, prefix + ".dw_start", h, start_kernel, stride if mid_kernel == 0 else 1, "identity")
    h = conv_bn(c, prefix + ".expand", h, 1, 0, act)
    if mid_kernel > 0:
        h = depthwise_bn(c, prefix + ".dw_mid", h, mid_kernel, stride, act)
    h = conv_bn(c, prefix + ".project", h, 1, 0, "identity")
    return x + h if skip else h


def fire(c, prefix, x):
    """SqueezeNet fire: squeeze 1×1 + relu, then concat(expand 1×1 + relu, expand 3×3 + relu)."""
    s = conv_bias(c, prefix + ".squeeze", x, 1, 0, "relu")
    e1 = conv_bias(c, prefix + ".expand1", s, 1, 0, "relu")
    e3 = conv_bias(c, prefix + ".expand3", s, 1, 1, "relu")
    return jnp.concatenate([e1, e3], axis=1)


def patch_embed(c, prefix, x, patch):
    """Patchify conv (stride = patch, no padding) → tokens in row-major (h, w) order, CLS first, + pos."""
    y = conv(x, c[prefix + ".w"], patch, 0) + c[prefix + ".b"].reshape(1, -1, 1, 1)  # [B, D, H/p, W/p]
    b, d = y.shape[0], y.shape[1]
    tokens = y.reshape(b, d, -1).transpose(0, 2, 1)  # [B, N, D]
    cls = jnp.broadcast_to(c[prefix + ".cls"].reshape(1, 1, d), (b, 1, d))
    return jnp.concatenate([cls, tokens], axis=1) + c[prefix + ".pos"][None]


def attention(c, prefix, x, heads):
    """Multi-head self-attention; qkv columns [q | k | v], each split into contiguous heads."""
    b, t, d = x.shape
    hd = d // heads
    qkv = jnp.dot(x, c[prefix + ".qkv.w"], precision=lax.Precision.HIGHEST) + c[prefix + ".qkv.b"]

    def split(z):  # [B, T, D] → [B, heads, T, hd]
        return z.reshape(b, t, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = split(qkv[..., :d]), split(qkv[..., d:2 * d]), split(qkv[..., 2 * d:])
    scores = jnp.einsum("bhqe,bhke->bhqk", q, k, precision=lax.Precision.HIGHEST) / math.sqrt(hd)
    att = jax.nn.softmax(scores, axis=-1)
    o = jnp.einsum("bhqk,bhke->bhqe", att, v, precision=lax.Precision.HIGHEST)
    o = o.transpose(0, 2, 1, 3).reshape(b, t, d)
    return jnp.dot(o, c[prefix + ".proj.w"], precision=lax.Precision.HIGHEST) + c[prefix + ".proj.b"]


def encoder_block(c, prefix, x, heads):
    """Pre-LN: x + proj(MHSA(LN1(x))), then x + fc2(gelu(fc1(LN2(x))))."""
    x = x + attention(c, prefix + ".attn", layer_norm(c, prefix + ".ln1", x, -1), heads)
    h = layer_norm(c, prefix + ".ln2", x, -1)
    h = dense(c, prefix + ".mlp.fc1", h, "gelu")
    h = dense(c, prefix + ".mlp.fc2", h, "identity")
    return x + h
