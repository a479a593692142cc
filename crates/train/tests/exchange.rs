//! `train::exchange` without PyTorch: the name maps of the zoo's torchvision/timm models as golden
//! files (`tests/exchange/<model>.txt`; checked once against the libraries' own `state_dict()` keys and
//! shapes by `scripts/parity.sh`; `UPDATE_EXPECT=1` rewrites), the export → `read_init` round trip,
//! and `read_init`'s errors and classifier handling.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{msg, TempDir};
use train::checkpoint::{self, Checkpoint, TensorData};
use train::exchange::{self, Convention, Family};

/// Every zoo model that has a family, and which.
fn families() -> BTreeMap<&'static str, Family> {
    let mut m = BTreeMap::new();
    for &name in spec::zoo::names() {
        let s = spec::zoo::get(name).unwrap();
        for f in Family::ALL {
            if exchange::name_map(&s, f).unwrap().is_some() {
                assert!(m.insert(name, f).is_none(), "{name}: two families fit");
            }
        }
    }
    m
}

#[test]
fn zoo_name_maps_match_the_golden_files() {
    let fams = families();
    let names: Vec<&str> = fams.keys().copied().collect();
    assert_eq!(
        names,
        [
            "efficientnet-b0",
            "efficientnet-v2-s",
            "mobilenet-v2",
            "mobilenet-v3-large",
            "mobilenet-v4-medium",
            "resnet18",
            "resnet34",
            "resnet50",
            "squeezenet-1.1",
            "vit-tiny"
        ]
    );
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exchange");
    let mut stale = Vec::new();
    for (name, f) in fams {
        let map = exchange::name_map(&spec::zoo::get(name).unwrap(), f)
            .unwrap()
            .unwrap();
        let mut text = format!("# {name}: {}\n", f.name());
        for e in map.params.iter().chain(&map.buffers) {
            text.push_str(&format!(
                "{} {:?} -> {} {:?}\n",
                e.netspec,
                e.shape,
                e.torch,
                e.torch_shape()
            ));
        }
        for n in &map.batches_tracked {
            text.push_str(&format!("{n} []\n"));
        }
        let path = dir.join(format!("{name}.txt"));
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "differ (UPDATE_EXPECT=1 rewrites): {stale:?}"
    );
}

fn as_checkpoint(w: BTreeMap<String, checkpoint::Tensor>) -> Checkpoint {
    Checkpoint {
        tensors: w.into_values().collect(),
        metadata: Default::default(),
    }
}

#[test]
fn export_and_read_init_round_trip_in_every_convention() {
    let d = TempDir::new("exchange");
    for (name, f) in [
        ("resnet18", Family::TvResNet),
        ("vit-tiny", Family::TimmVit),
    ] {
        let s = spec::zoo::get(name).unwrap();
        let w = exchange::check_weights(&s, 3).unwrap();
        let ck = as_checkpoint(w.clone());
        for conv in [Convention::Netspec, f.convention()] {
            let out = exchange::export(&s, &ck, Path::new("x"), conv, 5).unwrap();
            let p = d.join(&format!("{name}.{conv}.safetensors"));
            out.write(&p).unwrap();
            let back = exchange::read_init(&s, &p).unwrap();
            assert_eq!(back.convention, conv, "{name}");
            assert!(back.fresh_head.is_empty());
            assert_eq!(back.tensors, w, "{name} in {conv} names");
        }
    }
}

#[test]
fn read_init_names_what_is_wrong_and_refreshes_a_resized_classifier() {
    let d = TempDir::new("exchange-bad");
    let s = spec::zoo::get("resnet18").unwrap();
    let w = exchange::check_weights(&s, 3).unwrap();
    let out = exchange::export(
        &s,
        &as_checkpoint(w.clone()),
        Path::new("x"),
        Convention::Torchvision,
        0,
    )
    .unwrap();
    let good = d.join("tv.safetensors");
    out.write(&good).unwrap();

    // A 1000-class torchvision file for the 10-class model: the head stays fresh, the rest is read.
    let s1000 = spec::zoo::get_with_classes("resnet18", 1000).unwrap();
    let w1000 = exchange::check_weights(&s1000, 4).unwrap();
    let big = d.join("tv1000.safetensors");
    exchange::export(
        &s1000,
        &as_checkpoint(w1000.clone()),
        Path::new("x"),
        Convention::Torchvision,
        0,
    )
    .unwrap()
    .write(&big)
    .unwrap();
    let init = exchange::read_init(&s, &big).unwrap();
    assert_eq!(init.fresh_head, ["l7.w", "l7.b"]);
    assert_eq!(init.tensors["l0.conv.w"], w1000["l0.conv.w"]);
    assert!(!init.tensors.contains_key("l7.w"));
    assert!(init
        .describe(&big)
        .contains("classifier l7.w, l7.b freshly initialised"));

    // A tensor of the wrong shape elsewhere is an error naming both names.
    let mut bad = out.tensors.clone();
    let i = bad
        .iter()
        .position(|t| t.0 == "layer1.0.conv1.weight")
        .unwrap();
    bad[i].1 = vec![64, 64, 3, 1];
    bad[i].2 = exchange::ExportData::F32(vec![0.0; 64 * 64 * 3]);
    let p = d.join("bad-shape.safetensors");
    exchange::Exported {
        tensors: bad,
        metadata: Default::default(),
    }
    .write(&p)
    .unwrap();
    let e = msg(exchange::read_init(&s, &p));
    assert!(
        e.contains("layer1.0.conv1.weight has shape [64, 64, 3, 1]") && e.contains("l2.b0.conv1.w"),
        "{e}"
    );

    // A missing tensor: the closest naming and the first missing name.
    let mut missing = out.tensors.clone();
    missing.retain(|t| t.0 != "layer2.1.bn2.weight");
    let p = d.join("missing.safetensors");
    exchange::Exported {
        tensors: missing,
        metadata: Default::default(),
    }
    .write(&p)
    .unwrap();
    let e = msg(exchange::read_init(&s, &p));
    assert!(
        e.contains("torchvision names as a torchvision ResNet")
            && e.contains("layer2.1.bn2.weight"),
        "{e}"
    );

    // An unknown extra tensor is refused, not ignored.
    let mut extra = out.tensors.clone();
    extra.push((
        "fc2.weight".into(),
        vec![1],
        exchange::ExportData::F32(vec![0.0]),
    ));
    let p = d.join("extra.safetensors");
    exchange::Exported {
        tensors: extra,
        metadata: Default::default(),
    }
    .write(&p)
    .unwrap();
    let e = msg(exchange::read_init(&s, &p));
    assert!(e.contains("tensor fc2.weight is not a parameter"), "{e}");

    // Not a torchvision model.
    let mlp = spec::zoo::get("mnist-mlp").unwrap();
    let mw = exchange::check_weights(&mlp, 1).unwrap();
    let e = msg(exchange::export(
        &mlp,
        &as_checkpoint(mw),
        Path::new("x"),
        Convention::Torchvision,
        0,
    ));
    assert!(e.contains("is not a torchvision model"), "{e}");

    // Exports never carry optimizer state; PyTorch's step counters are i64.
    let names: Vec<&str> = out.tensors.iter().map(|t| t.0.as_str()).collect();
    assert!(names.contains(&"bn1.num_batches_tracked"));
    let raw = checkpoint::read_skipping(&good, &|n| n.ends_with("num_batches_tracked")).unwrap();
    assert!(raw
        .tensors
        .iter()
        .all(|t| matches!(t.data, TensorData::F32(_))));
}
