//! The reference models: the spec files `zoo/<name>.ns` at the repository root, built into the
//! crate. Adding a model is its spec file, one row of `MODELS` and one arm of [`recipe`].
//!
//! References and parameter counts with a 10-class head (tests check every figure; where a
//! reference publishes a 1000-class count the tests check that too):
//!
//! | model | reference | params (10 classes) | 1000-class reference |
//! |---|---|---|---|
//! | mnist-mlp | lean4-mlir `MainMnistMlpTrain` | 669,706 | |
//! | mnist-cnn | lean4-mlir `MainMnistCnnTrain` (4 convBn, 2 pools, dense 3136→512→10) | 1,676,458 | |
//! | cifar-cnn | lean4-mlir `MainCifarCnnTrain` (conv+bias+ReLU) | 2,431,018 | |
//! | cifar-cnn-bn | lean4-mlir `MainCifarCnnBnTrain` | 2,431,210 | |
//! | resnet18 | torchvision `resnet18` | 11,181,642 | 11,689,512 |
//! | resnet34 | torchvision `resnet34` | 21,289,802 | 21,797,672 |
//! | resnet50 | torchvision `resnet50` (v1.5) | 23,528,522 | 25,557,032 |
//! | vgg16-bn | lean4-mlir `MainVggTrain`: torchvision `vgg16_bn` features with bias-free convs (BN follows), GAP + one dense | 14,724,042 | |
//! | squeezenet-1.1 | torchvision `squeezenet1_1` | 727,626 | 1,235,496 |
//! | mobilenet-v1 | MobileNet v1 1.0 (Howard et al. 2017; Keras `MobileNet` trainable count), ReLU | 3,217,226 | 4,231,976 |
//! | mobilenet-v2 | torchvision `mobilenet_v2` | 2,236,682 | 3,504,872 |
//! | mobilenet-v3-large | torchvision `mobilenet_v3_large` (BN ε 1e-5 instead of 1e-3) | 4,214,842 | 5,483,032 |
//! | mobilenet-v4-medium | timm `mobilenetv4_conv_medium` | 8,447,322 | 9,715,512 (timm lists 9.7M) |
//! | efficientnet-b0 | torchvision `efficientnet_b0` | 4,020,358 | 5,288,548 |
//! | efficientnet-v2-s | torchvision `efficientnet_v2_s` (BN ε 1e-5 instead of 1e-3) | 20,190,298 | 21,458,488 |
//! | vit-tiny | timm `vit_tiny_patch16_224` (GELU-tanh instead of erf) | 5,526,346 | 5,717,416 |
//! | convnext-tiny | torchvision `convnext_tiny` | 27,827,818 | 28,589,128 |
//!
//! Deviations from the references that do not change parameter counts: BN momentum/ε follow
//! ARCHITECTURE.md (ε = 1e-5 everywhere: torchvision builds MobileNetV3 and EfficientNetV2 with ε = 1e-3,
//! the other references use 1e-5); no stochastic depth except ConvNeXt's (identity in eval on both
//! sides); ViT uses the tanh GELU (timm: erf). The MobileNetV4 head pools first (`avgPool 7` on the 7×7 map), then a bias-free 1×1
//! conv + BN + ReLU to 1280, as timm does.
//!
//! Logit parity (`scripts/parity.sh`, `crates/train/tests/parity.rs`): each of the ten torchvision/timm
//! models above before convnext-tiny (`train::exchange` has no name map for it yet), with the listed
//! differences applied to the reference (ε set to 1e-5, timm's `act_layer="gelu_tanh"`) and everything else as the library builds it, gives eval logits within 1e-5
//! (relative to the largest logit) of the reference evaluated in float64 on the same weights and images,
//! except resnet50, whose float32 round-off alone is 1e-5 to 2.2e-5 in PyTorch too (there: within twice
//! PyTorch's own float32 error);
//! the weights are the reference's own `state_dict()` read as `--init` reads it (`train::exchange`).

use crate::ast::{Expr, NetSpec};
use crate::config::{Dataset, Optimizer, RunConfig, Schedule};

/// The zoo: each model's name and spec file (`zoo/<name>.ns`), in a fixed order.
const MODELS: &[(&str, &str)] = &[
    ("mnist-mlp", include_str!("../../../zoo/mnist-mlp.ns")),
    ("mnist-cnn", include_str!("../../../zoo/mnist-cnn.ns")),
    ("cifar-cnn", include_str!("../../../zoo/cifar-cnn.ns")),
    ("cifar-cnn-bn", include_str!("../../../zoo/cifar-cnn-bn.ns")),
    ("resnet18", include_str!("../../../zoo/resnet18.ns")),
    ("resnet34", include_str!("../../../zoo/resnet34.ns")),
    ("resnet50", include_str!("../../../zoo/resnet50.ns")),
    ("vgg16-bn", include_str!("../../../zoo/vgg16-bn.ns")),
    (
        "squeezenet-1.1",
        include_str!("../../../zoo/squeezenet-1.1.ns"),
    ),
    ("mobilenet-v1", include_str!("../../../zoo/mobilenet-v1.ns")),
    ("mobilenet-v2", include_str!("../../../zoo/mobilenet-v2.ns")),
    (
        "mobilenet-v3-large",
        include_str!("../../../zoo/mobilenet-v3-large.ns"),
    ),
    (
        "mobilenet-v4-medium",
        include_str!("../../../zoo/mobilenet-v4-medium.ns"),
    ),
    (
        "efficientnet-b0",
        include_str!("../../../zoo/efficientnet-b0.ns"),
    ),
    (
        "efficientnet-v2-s",
        include_str!("../../../zoo/efficientnet-v2-s.ns"),
    ),
    ("vit-tiny", include_str!("../../../zoo/vit-tiny.ns")),
    (
        "convnext-tiny",
        include_str!("../../../zoo/convnext-tiny.ns"),
    ),
];

/// Names of all zoo models, in a fixed order.
pub fn names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| MODELS.iter().map(|m| m.0).collect())
}

/// The spec file text of zoo model `name`.
pub fn text(name: &str) -> Option<&'static str> {
    MODELS.iter().find(|m| m.0 == name).map(|m| m.1)
}

/// The zoo model `name` with a 10-class head, or `None`.
pub fn get(name: &str) -> Option<NetSpec> {
    // The zoo files are tested to parse (crates/spec/tests/zoo.rs).
    crate::parse(text(name)?.as_bytes()).ok()
}

/// The zoo model `name` with `classes` outputs: the head (the last layer with an `out`) is the only
/// layer that changes.
pub fn get_with_classes(name: &str, classes: usize) -> Option<NetSpec> {
    let mut spec = get(name)?;
    spec.num_classes = classes;
    let head = spec
        .layers
        .iter_mut()
        .rev()
        .find(|l| l.arg("out").is_some())?;
    for (n, v) in &mut head.args {
        if n == "out" {
            *v = Expr::Int(classes as i64);
        }
    }
    Some(spec)
}

/// The default training recipe of a zoo model (lean4-mlir's recipes, §5 of the anchor notes):
/// MNIST/CIFAR: AdamW 1e-3, batch 128, wd 1e-4, cosine (MNIST 12/15 epochs warmup 1; CIFAR
/// 25/30 epochs warmup 2, horizontal flip). Imagenette: AdamW 1e-3, batch 32, 80 epochs, wd 1e-4,
/// cosine, warmup 3, label smoothing 0.1, random crop 256→224 + flip; ViT-Tiny lr 3e-4, warmup 5.
/// ("Adam" in lean4-mlir's phase 3 is AdamW with decay on kernels only.) lean4-mlir's MNIST
/// recipes train on MNIST; netspec's train on Fashion-MNIST, the installed dataset of that shape.
pub fn recipe(name: &str) -> Option<RunConfig> {
    let base = RunConfig::default();
    let cifar = RunConfig {
        epochs: 25,
        warmup_epochs: 2,
        augment: Dataset::Cifar10.augmentation(),
        dataset: Dataset::Cifar10,
        ..base.clone()
    };
    let imagenette = RunConfig {
        optimizer: Optimizer::ADAMW,
        lr: 1e-3,
        batch_size: 32,
        epochs: 80,
        weight_decay: 1e-4,
        warmup_epochs: 3,
        schedule: Schedule::Cosine,
        label_smoothing: 0.1,
        augment: Dataset::Imagenette.augmentation(),
        dataset: Dataset::Imagenette,
        ..base.clone()
    };
    Some(match name {
        "mnist-mlp" => base,
        "mnist-cnn" => RunConfig { epochs: 15, ..base },
        "cifar-cnn" => cifar,
        "cifar-cnn-bn" => RunConfig {
            epochs: 30,
            ..cifar
        },
        "vit-tiny" => RunConfig {
            lr: 3e-4,
            warmup_epochs: 5,
            ..imagenette
        },
        "resnet18"
        | "resnet34"
        | "resnet50"
        | "vgg16-bn"
        | "squeezenet-1.1"
        | "mobilenet-v1"
        | "mobilenet-v2"
        | "mobilenet-v3-large"
        | "mobilenet-v4-medium"
        | "efficientnet-b0"
        | "efficientnet-v2-s"
        | "convnext-tiny" => imagenette,
        _ => return None,
    })
}
