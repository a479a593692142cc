//! The zoo: parameter counts against the reference definitions, spec files equal to the Rust
//! values, shape inference, the parameter ABI, init determinism, the summary table.

use spec::{zoo, Init, Shape};
use std::path::PathBuf;

/// (model, params with 10 classes, params with 1000 classes where a reference publishes it).
const COUNTS: &[(&str, usize, Option<usize>)] = &[
    ("mnist-mlp", 669_706, None),
    ("mnist-cnn", 1_676_458, None),
    ("cifar-cnn", 2_431_018, None),
    ("cifar-cnn-bn", 2_431_210, None),
    ("resnet18", 11_181_642, Some(11_689_512)),
    ("resnet34", 21_289_802, Some(21_797_672)),
    ("resnet50", 23_528_522, Some(25_557_032)),
    ("vgg16-bn", 14_724_042, None),
    ("squeezenet-1.1", 727_626, Some(1_235_496)),
    ("mobilenet-v1", 3_217_226, Some(4_231_976)),
    ("mobilenet-v2", 2_236_682, Some(3_504_872)),
    ("mobilenet-v3-large", 4_214_842, Some(5_483_032)),
    ("mobilenet-v4-medium", 8_447_322, Some(9_715_512)),
    ("efficientnet-b0", 4_020_358, Some(5_288_548)),
    ("efficientnet-v2-s", 20_190_298, Some(21_458_488)),
    ("vit-tiny", 5_526_346, Some(5_717_416)),
    // torchvision convnext_tiny: 28,589,128 with 1000 classes (its documented count).
    ("convnext-tiny", 27_827_818, Some(28_589_128)),
];

fn zoo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../zoo")
        .join(format!("{name}.ns"))
}

#[test]
fn counts_cover_the_whole_zoo() {
    let listed: Vec<&str> = COUNTS.iter().map(|c| c.0).collect();
    assert_eq!(listed, zoo::names());
    assert_eq!(zoo::names().len(), 17);
    assert!(zoo::get("no-such-model").is_none());
}

#[test]
fn param_counts_match_the_references() {
    for &(name, p10, p1000) in COUNTS {
        let spec = zoo::get(name).unwrap();
        assert_eq!(spec::param_count(&spec).unwrap(), p10, "{name}, 10 classes");
        if let Some(p) = p1000 {
            let spec = zoo::get_with_classes(name, 1000).unwrap();
            assert_eq!(spec::param_count(&spec).unwrap(), p, "{name}, 1000 classes");
        }
    }
}

#[test]
fn every_zoo_model_checks_and_ends_in_logits() {
    for name in zoo::names() {
        let spec = zoo::get(name).unwrap();
        let shapes = spec.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(shapes.len(), spec.layers.len());
        assert_eq!(*shapes.last().unwrap(), Shape::Flat { n: 10 }, "{name}");
    }
}

#[test]
fn zoo_files_are_the_zoo() {
    for name in zoo::names() {
        let path = zoo_file(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            bytes,
            zoo::text(name).unwrap().as_bytes(),
            "{}",
            path.display()
        );
        let parsed =
            spec::parse_checked(&bytes).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
        assert_eq!(parsed, zoo::get(name).unwrap(), "{}", path.display());
    }
}

#[test]
fn print_then_parse_is_identity_for_the_zoo() {
    for name in zoo::names() {
        for classes in [10, 1000] {
            let spec = zoo::get_with_classes(name, classes).unwrap();
            let text = spec::print(&spec);
            assert_eq!(
                spec::parse(text.as_bytes()).unwrap(),
                spec,
                "{name}:\n{text}"
            );
        }
    }
}

#[test]
fn resnet34_fits_in_about_fifteen_lines() {
    let text = std::fs::read_to_string(zoo_file("resnet34")).unwrap();
    let statements = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    assert!(statements <= 15, "{statements} statements");
}

#[test]
fn parameter_abi_names_follow_the_contract() {
    let spec = zoo::get("resnet18").unwrap();
    let params = spec::params(&spec).unwrap();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(&names[..3], ["l0.conv.w", "l0.bn.gamma", "l0.bn.beta"]);
    // Stage 2 (layer 3) projects in block 0: conv1, bn1, conv2, bn2, then the downsample unit.
    let b0: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("l3.b0."))
        .collect();
    assert_eq!(
        b0,
        [
            "l3.b0.conv1.w",
            "l3.b0.bn1.gamma",
            "l3.b0.bn1.beta",
            "l3.b0.conv2.w",
            "l3.b0.bn2.gamma",
            "l3.b0.bn2.beta",
            "l3.b0.down.conv.w",
            "l3.b0.down.bn.gamma",
            "l3.b0.down.bn.beta",
        ]
    );
    assert!(
        !names.iter().any(|n| n.starts_with("l2.b0.down")),
        "stage 1 keeps 64 channels: no projection"
    );
    assert_eq!(names.last(), Some(&"l7.b"));
    let w = params.iter().find(|p| p.name == "l3.b0.conv1.w").unwrap();
    assert_eq!(w.shape, [128, 64, 3, 3]);
    assert_eq!(w.init, Init::HeNormal { fan_in: 64 * 9 });
    let dense = params.iter().find(|p| p.name == "l7.w").unwrap();
    assert_eq!(dense.shape, [512, 10]);

    // Names are unique, decay is exactly the kernels.
    for name in zoo::names() {
        let params = spec::params(&zoo::get(name).unwrap()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for p in &params {
            assert!(seen.insert(p.name.clone()), "{name}: duplicate {}", p.name);
            let kernel = p.name.ends_with(".w") || p.name.split('.').next_back() == Some("w");
            assert_eq!(p.decay, kernel, "{name}: {}", p.name);
        }
    }
}

#[test]
fn buffers_are_bn_running_statistics() {
    let spec = zoo::get("mnist-cnn").unwrap();
    let bufs = spec::buffers(&spec).unwrap();
    let names: Vec<&str> = bufs.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        ["l0.bn.mean", "l0.bn.var", "l1.bn.mean", "l1.bn.var"]
    );
    assert_eq!(bufs.len(), 8);
    let init = spec::init_buffers(&spec).unwrap();
    assert!(init[0].iter().all(|&v| v == 0.0) && init[1].iter().all(|&v| v == 1.0));
    // Models without BN have none; LN/instance norm have no running statistics.
    assert!(spec::buffers(&zoo::get("vit-tiny").unwrap())
        .unwrap()
        .is_empty());
    assert!(spec::buffers(&zoo::get("mnist-mlp").unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn vit_tiny_layout() {
    let spec = zoo::get("vit-tiny").unwrap();
    let shapes = spec.check().unwrap();
    assert_eq!(shapes[0], Shape::Tokens { t: 197, d: 192 });
    assert_eq!(shapes[1], Shape::Flat { n: 192 });
    let params = spec::params(&spec).unwrap();
    let find = |n: &str| {
        params
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(find("l0.w").shape, [192, 3, 16, 16]);
    assert_eq!(find("l0.pos").shape, [197, 192]);
    assert_eq!(find("l0.pos").init, Init::Normal { std: 0.02 });
    assert_eq!(find("l1.b11.attn.qkv.w").shape, [192, 576]);
    assert_eq!(find("l1.b0.mlp.fc2.w").shape, [768, 192]);
    assert_eq!(find("l1.ln.gamma").shape, [192]);
}

#[test]
fn efficientnet_se_squeezes_from_the_block_input() {
    // torchvision: squeeze = max(1, input_channels / 4), not expanded / 4.
    let spec = zoo::get("efficientnet-b0").unwrap();
    let params = spec::params(&spec).unwrap();
    let find = |n: &str| {
        params
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    // layer 2 = mbConv 24 (input 16 channels, expand 6 → 96): SE 96 → 4.
    assert_eq!(find("l2.b0.se.reduce.w").shape, [4, 96, 1, 1]);
    // block 1 of the same stage has input 24: SE 144 → 6.
    assert_eq!(find("l2.b1.se.reduce.w").shape, [6, 144, 1, 1]);
    assert_eq!(find("l2.b0.dw.conv.w").shape, [96, 1, 3, 3]);
    assert_eq!(find("l2.b0.dw.conv.w").init, Init::HeNormal { fan_in: 9 });
    // expand = 1 has no expand conv.
    assert!(params.iter().all(|p| !p.name.starts_with("l1.b0.expand")));
}

#[test]
fn mobilenet_v3_se_uses_make_divisible() {
    let spec = zoo::get("mobilenet-v3-large").unwrap();
    let params = spec::params(&spec).unwrap();
    let find = |n: &str| {
        params
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    // expanded 72 → make_divisible(18, 8) = 24; 120 → 32; 960 → 240.
    assert_eq!(find("l4.se.reduce.w").shape, [24, 72, 1, 1]);
    assert_eq!(find("l5.se.reduce.w").shape, [32, 120, 1, 1]);
    assert_eq!(find("l15.se.reduce.w").shape, [240, 960, 1, 1]);
    assert_eq!(spec::make_divisible(18, 8), 24);
    assert_eq!(spec::make_divisible(10, 8), 16); // 8 would lose more than 10 %
    assert_eq!(spec::make_divisible(4, 8), 8);
}

#[test]
fn uib_stride_goes_to_the_start_dw_without_a_mid_dw() {
    let spec = spec::parse(
        b"name u\ninput 3 56 56\nclasses 10\nconvBn 32 kernel=3\nconvBn 48 kernel=3\nuib 48 expand=2 start=3 stride=2\nglobalAvgPool\ndense 10\n",
    )
    .unwrap();
    let info = spec::analyze(&spec).unwrap();
    assert_eq!(
        info[2].output,
        Shape::Image {
            c: 48,
            h: 28,
            w: 28
        }
    );
    let dw = info[2]
        .params
        .iter()
        .find(|p| p.name == "l2.dw_start.conv.w")
        .unwrap();
    assert_eq!(dw.shape, [48, 1, 3, 3]);
}

#[test]
fn init_is_deterministic_and_he_scaled() {
    let spec = zoo::get("mnist-mlp").unwrap();
    let a = spec::init(&spec, 314_159).unwrap();
    let b = spec::init(&spec, 314_159).unwrap();
    let c = spec::init(&spec, 1).unwrap();
    assert_eq!(a, b);
    assert_ne!(a[0], c[0]);
    // A digest of the bits: changes only if the documented procedure changes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in &a {
        for v in t {
            for byte in v.to_bits().to_le_bytes() {
                h = (h ^ byte as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    expect_test::expect![[r#"
        first values of l1.w: [0.01780238, -0.0011178735, -0.08109479, 0.055487595]
        digest: f2253be5811ec298
    "#]]
    .assert_eq(&format!(
        "first values of l1.w: {:?}\ndigest: {h:016x}\n",
        &a[0][..4]
    ));
    // l1.w is [784, 512], He std √(2/784).
    let w = &a[0];
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let want = (2.0f64 / 784.0).sqrt();
    assert!(mean.abs() < 0.002, "mean {mean}");
    assert!((std / want - 1.0).abs() < 0.01, "std {std}, want {want}");
    assert!(a[1].iter().all(|&v| v == 0.0), "bias zero");
    // Each tensor's stream depends on its name only: a different model with the same tensor
    // name and shape gets the same values.
    let other = spec::NetSpec {
        name: "x".into(),
        ..spec.clone()
    };
    assert_eq!(spec::init(&other, 314_159).unwrap()[0], a[0]);
}

#[test]
fn summary_table() {
    let s = spec::summary(&zoo::get("mnist-cnn").unwrap()).unwrap();
    expect_test::expect![[r#"
        mnist-cnn: input [B, 1, 28, 28], 10 classes
        #  layer               output              params   FLOPs
        0  convBn 32 kernel=3  [B, 32, 28, 28]        352   577 k
        1  convBn 32 kernel=3  [B, 32, 28, 28]      9,280  14.6 M
        2  maxPool 2           [B, 32, 14, 14]          0  25.1 k
        3  convBn 64 kernel=3  [B, 64, 14, 14]     18,560  7.29 M
        4  convBn 64 kernel=3  [B, 64, 14, 14]     36,992  14.5 M
        5  maxPool 2           [B, 64, 7, 7]            0  12.5 k
        6  flatten             [B, 3136]                0       0
        7  dense 512 act=relu  [B, 512]         1,606,144  3.21 M
        8  dense 10            [B, 10]              5,130  10.2 k
        forward FLOPs per example: 40.2 M (40,214,794)
        BN running-statistics tensors: 8
        total params: 1676458"#]]
    .assert_eq(&s);
    assert_eq!(s.lines().last(), Some("total params: 1676458"));
}

#[test]
fn flops_of_known_layers() {
    // dense 784→512: 2·784·512 MAC-FLOPs + 512 bias + 512 relu.
    let spec = zoo::get("mnist-mlp").unwrap();
    let info = spec::analyze(&spec).unwrap();
    assert_eq!(info[1].flops, 2 * 784 * 512 + 512 + 512);
    // ResNet-50 is ~4.1 GMACs ⇒ ~8.2 GFLOPs.
    let total: u64 = spec::analyze(&zoo::get("resnet50").unwrap())
        .unwrap()
        .iter()
        .map(|l| l.flops)
        .sum();
    assert!((8.0e9..8.5e9).contains(&(total as f64)), "{total}");
}

#[test]
fn recipes_follow_lean4_mlir() {
    use spec::{Dataset, Optimizer, Schedule};
    let r = zoo::recipe("mnist-mlp").unwrap();
    assert_eq!(
        (r.optimizer, r.lr, r.batch_size, r.epochs, r.weight_decay),
        (Optimizer::ADAMW, 1e-3, 128, 12, 1e-4)
    );
    // lean4-mlir's recipe is for MNIST; netspec trains it on Fashion-MNIST (the same shape).
    assert_eq!(
        (r.schedule, r.warmup_epochs, r.dataset),
        (Schedule::Cosine, 1, Dataset::FashionMnist)
    );
    let r = zoo::recipe("resnet34").unwrap();
    assert_eq!(
        (r.batch_size, r.epochs, r.warmup_epochs, r.label_smoothing),
        (32, 80, 3, 0.1)
    );
    assert_eq!(r.augment, spec::Augment::CropFlip);
    let r = zoo::recipe("cifar-cnn").unwrap();
    assert_eq!(r.augment, spec::Augment::Flip);
    assert_eq!(
        zoo::recipe("mnist-cnn").unwrap().augment,
        spec::Augment::None
    );
    assert_eq!(zoo::recipe("vit-tiny").unwrap().lr, 3e-4);
    for name in zoo::names() {
        let r = zoo::recipe(name).unwrap();
        assert_eq!(
            r.dataset.input(),
            Some(zoo::get(name).unwrap().input),
            "{name}"
        );
    }
}

#[test]
fn convnext_tiny_follows_torchvision() {
    let spec = zoo::get("convnext-tiny").unwrap();
    let info = spec::analyze(&spec).unwrap();
    let params = spec::params(&spec).unwrap();
    let find = |n: &str| {
        params
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    // Stem 4×4/4 with bias, depthwise 7×7 with bias, 4× MLP as 1×1 convs, layer scale 1e-6.
    assert_eq!(find("l0.w").shape, [96, 3, 4, 4]);
    assert_eq!(find("l2.b0.dwconv.w").shape, [96, 1, 7, 7]);
    assert_eq!(find("l2.b0.pwconv1.w").shape, [384, 96, 1, 1]);
    assert_eq!(find("l11.b2.pwconv2.w").shape, [768, 3072, 1, 1]);
    assert_eq!(
        find("l8.b8.layerScale.gamma").init,
        Init::Constant { value: 1e-6 }
    );
    assert!(!find("l8.b8.layerScale.gamma").decay);
    assert_eq!(find("l4.w").shape, [192, 96, 2, 2]); // downsampling 2×2/2
    assert_eq!(info[11].output, Shape::Image { c: 768, h: 7, w: 7 });
    assert!(spec::buffers(&spec).unwrap().is_empty(), "no batch norm");
    // Stochastic depth: block k of 18 drops with probability 0.1·k/17.
    let mut rates = Vec::new();
    for l in &info {
        l.node.visit(&mut |n| {
            if let spec::Op::Layer {
                layer: spec::Layer::DropPath { rate },
                ..
            } = n.op
            {
                rates.push(rate);
            }
        });
    }
    assert_eq!(rates.len(), 18);
    for (k, r) in rates.iter().enumerate() {
        assert_eq!(*r, (0.1 * k as f64 / 17.0) as f32, "block {k}");
    }
    // Exact GELU between the two 1×1 convs.
    let mut gelus = 0;
    info[2].node.visit(&mut |n| {
        if let spec::Op::Layer {
            layer: spec::Layer::Conv2d { act, .. },
            ..
        } = n.op
        {
            gelus += usize::from(act == spec::Act::GeluErf);
        }
    });
    assert_eq!(gelus, 3);
}

#[test]
fn the_prelude_parses_and_documents_every_block() {
    let blocks = spec::prelude::blocks();
    assert!(blocks.len() >= 17, "{}", blocks.len());
    for b in blocks {
        assert!(
            !b.doc.is_empty(),
            "prelude block `{}` has no doc comment",
            b.name
        );
        assert!(
            spec::sig(&b.name).is_none(),
            "`{}` shadows a core layer",
            b.name
        );
    }
    for s in spec::CORE {
        assert!(!s.doc.is_empty(), "core `{}` has no doc", s.name);
    }
    // The zoo's composite blocks are text, not Rust.
    for name in [
        "convBn",
        "residual",
        "bottleneck",
        "separableConv",
        "invertedResidual",
        "mbConv",
        "mbConvV3",
        "fusedMbConv",
        "uib",
        "fire",
        "patchEmbed",
        "transformer",
        "convnextBlock",
    ] {
        assert!(blocks.iter().any(|b| b.name == name), "{name}");
        assert!(spec::sig(name).is_none(), "{name} is core");
    }
}
