//! `RunConfig`'s JSON form (trace headers and checkpoint metadata) and the one optimizer parser.

use spec::{Dataset, Optimizer, RunConfig, Schedule};

#[test]
fn json_form_is_one_key_per_field() {
    let text = serde_json::to_string(&RunConfig::default()).unwrap();
    expect_test::expect![[r#"{"optimizer":"adamw","lr":0.001,"batch_size":128,"epochs":12,"weight_decay":0.0001,"label_smoothing":0.0,"warmup_epochs":1,"schedule":"cosine","seed":314159,"shuffle":true,"augment":false,"dataset":"fashion-mnist"}"#]]
        .assert_eq(&text);
    let m = RunConfig {
        optimizer: Optimizer::Momentum { mu: 0.95 },
        ..RunConfig::default()
    };
    let text = serde_json::to_string(&m).unwrap();
    assert!(
        text.starts_with(r#"{"optimizer":"momentum","momentum":0.95,"lr":0.001,"#),
        "{text}"
    );
    // Adam constants appear only where they differ from the usual ones.
    let a = RunConfig {
        optimizer: Optimizer::Adam {
            beta1: 0.8,
            beta2: 0.999,
            eps: 1e-6,
        },
        ..RunConfig::default()
    };
    let text = serde_json::to_string(&a).unwrap();
    assert!(
        text.starts_with(r#"{"optimizer":"adam","beta1":0.8,"eps":0.000001,"lr":"#),
        "{text}"
    );
}

#[test]
fn json_round_trips_for_every_optimizer_schedule_and_dataset() {
    let base = RunConfig::default();
    let optimizers = [
        Optimizer::Sgd,
        Optimizer::Momentum { mu: 0.95 },
        Optimizer::ADAM,
        Optimizer::ADAMW,
        Optimizer::AdamW {
            beta1: 0.5,
            beta2: 0.99,
            eps: 1e-5,
        },
    ];
    for optimizer in optimizers {
        for schedule in [Schedule::Constant, Schedule::Cosine] {
            for dataset in Dataset::ALL {
                let c = RunConfig {
                    optimizer,
                    schedule,
                    dataset,
                    lr: 3e-4,
                    label_smoothing: 0.1,
                    shuffle: false,
                    ..base.clone()
                };
                let text = serde_json::to_string(&c).unwrap();
                let back: RunConfig = serde_json::from_str(&text).unwrap();
                assert_eq!(back, c, "{text}");
            }
        }
    }
}

#[test]
fn files_written_before_the_adam_keys_read_back() {
    // The config of a checkpoint written by netspec before the Adam constants were serialized.
    let old = r#"{"augment":false,"batch_size":100,"dataset":"fashion-mnist","epochs":3,"label_smoothing":0.0,"lr":0.001,"optimizer":"adamw","schedule":"cosine","seed":314159,"shuffle":true,"warmup_epochs":1,"weight_decay":0.0001}"#;
    let c: RunConfig = serde_json::from_str(old).unwrap();
    assert_eq!(
        c,
        RunConfig {
            batch_size: 100,
            epochs: 3,
            ..RunConfig::default()
        }
    );
}

#[test]
fn bad_json_names_the_field() {
    let mut v = serde_json::to_value(RunConfig::default()).unwrap();
    v.as_object_mut().unwrap().remove("seed");
    let e = serde_json::from_value::<RunConfig>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed"), "{e}");
    let mut v = serde_json::to_value(RunConfig::default()).unwrap();
    v["optimizer"] = "lamb".into();
    let e = serde_json::from_value::<RunConfig>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lamb"), "{e}");
    let mut v = serde_json::to_value(RunConfig {
        optimizer: Optimizer::MOMENTUM,
        ..RunConfig::default()
    })
    .unwrap();
    v.as_object_mut().unwrap().remove("momentum");
    let e = serde_json::from_value::<RunConfig>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("momentum"), "{e}");
}

#[test]
fn one_parser_for_optimizer_names() {
    for name in Optimizer::NAMES {
        let o: Optimizer = name.parse().unwrap();
        assert_eq!(o.name(), name);
    }
    assert_eq!("momentum".parse(), Ok(Optimizer::Momentum { mu: 0.9 }));
    let e = "rmsprop".parse::<Optimizer>().unwrap_err();
    assert_eq!(
        e,
        "unknown optimizer 'rmsprop' (expected sgd, momentum, adam or adamw)"
    );
    assert!("linear".parse::<Schedule>().unwrap_err().contains("linear"));
    assert!("svhn".parse::<Dataset>().unwrap_err().contains("cifar10"));
}

#[test]
fn checks_name_the_flag() {
    let ok = RunConfig::default();
    assert_eq!(ok.check(), Ok(()));
    let cases = [
        (
            RunConfig {
                batch_size: 0,
                ..ok.clone()
            },
            "--batch-size",
        ),
        (
            RunConfig {
                epochs: 0,
                ..ok.clone()
            },
            "--epochs",
        ),
        (
            RunConfig {
                lr: f32::NAN,
                ..ok.clone()
            },
            "--lr",
        ),
        (
            RunConfig {
                label_smoothing: 1.0,
                ..ok.clone()
            },
            "--label-smoothing",
        ),
        (
            RunConfig {
                weight_decay: -1.0,
                ..ok.clone()
            },
            "--weight-decay",
        ),
        (
            RunConfig {
                warmup_epochs: 13,
                ..ok.clone()
            },
            "--warmup-epochs",
        ),
    ];
    for (c, flag) in cases {
        let e = c.check().unwrap_err();
        assert!(e.contains(flag), "{c:?}: {e}");
    }
    // The step part alone does not look at the schedule.
    let long_warmup = RunConfig {
        warmup_epochs: 13,
        ..ok
    };
    assert_eq!(long_warmup.check_step(), Ok(()));
}

#[test]
fn default_config_of_a_spec() {
    let mlp = spec::zoo::get("mnist-mlp").unwrap();
    assert_eq!(
        RunConfig::default_for(&mlp),
        spec::zoo::recipe("mnist-mlp").unwrap()
    );
    let mut custom = spec::zoo::get("cifar-cnn").unwrap();
    custom.name = "my-cifar-net".into();
    assert_eq!(RunConfig::default_for(&custom).dataset, Dataset::Cifar10);
    custom.input = [2, 5, 5];
    assert_eq!(
        RunConfig::default_for(&custom).dataset,
        RunConfig::default().dataset
    );
}

#[test]
fn augment_is_a_flag_for_the_datasets_own_and_a_name_otherwise() {
    use spec::Augment;
    let cifar = RunConfig {
        dataset: Dataset::Cifar10,
        augment: Augment::Flip,
        ..RunConfig::default()
    };
    let text = serde_json::to_string(&cifar).unwrap();
    assert!(
        text.contains(r#""augment":true,"dataset":"cifar10"}"#),
        "{text}"
    );
    let rrc = RunConfig {
        augment: Augment::RandomResizedCrop,
        ..cifar.clone()
    };
    let text = serde_json::to_string(&rrc).unwrap();
    assert!(
        text.contains(r#""augment":"random-resized-crop""#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<RunConfig>(&text).unwrap(), rrc);
    // Written before augmentations had names: `true` is the dataset's own.
    let old = r#"{"augment":true,"batch_size":32,"dataset":"imagenette","epochs":80,"label_smoothing":0.1,"lr":0.001,"optimizer":"adamw","schedule":"cosine","seed":314159,"shuffle":true,"warmup_epochs":3,"weight_decay":0.0001}"#;
    let c: RunConfig = serde_json::from_str(old).unwrap();
    assert_eq!(c.augment, Augment::CropFlip);
    assert_eq!(c, spec::zoo::recipe("resnet34").unwrap());
    let e = serde_json::from_str::<RunConfig>(
        &old.replace(r#""augment":true"#, r#""augment":"rotate""#),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rotate") && e.contains("crop-flip"), "{e}");
}

#[test]
fn data_options_round_trip_and_are_absent_when_unset() {
    use spec::{Augment, Normalize};
    let c = RunConfig {
        dataset: Dataset::Folder,
        augment: Augment::CropFlip,
        resize: Some(256),
        normalize: Some(Normalize::imagenet()),
        val_split: Some(0.1),
        early_stop: Some(3),
        ..RunConfig::default()
    };
    let text = serde_json::to_string(&c).unwrap();
    expect_test::expect![[r#"{"optimizer":"adamw","lr":0.001,"batch_size":128,"epochs":12,"weight_decay":0.0001,"label_smoothing":0.0,"warmup_epochs":1,"schedule":"cosine","seed":314159,"shuffle":true,"augment":"crop-flip","dataset":"folder","resize":256,"normalize":{"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},"val_split":0.1,"early_stop":3}"#]]
        .assert_eq(&text);
    assert_eq!(serde_json::from_str::<RunConfig>(&text).unwrap(), c);
    // The dataset's own normalisation is not written, and reads back as unset.
    let mut i = RunConfig {
        dataset: Dataset::Imagenette,
        ..RunConfig::default()
    };
    i.set_normalize(Normalize::imagenet());
    assert_eq!(i.normalize, None);
    assert_eq!(i.normalization(), Normalize::imagenet());
    let text = serde_json::to_string(&RunConfig {
        normalize: Some(Normalize::imagenet()),
        ..i.clone()
    })
    .unwrap();
    assert!(!text.contains("normalize"), "{text}");
    assert_eq!(serde_json::from_str::<RunConfig>(&text).unwrap(), i);
}

#[test]
fn switching_dataset_resets_the_augmentation_and_keeps_the_normalisation() {
    use spec::{Augment, Normalize};
    let mut c = spec::zoo::recipe("resnet18").unwrap();
    assert_eq!((c.augment, c.normalize.clone()), (Augment::CropFlip, None));
    c.switch_dataset(Dataset::Folder);
    assert_eq!(c.augment, Augment::None);
    assert_eq!(c.normalize, Some(Normalize::imagenet()));
    assert_eq!(c.normalization(), Normalize::imagenet());
    c.switch_dataset(Dataset::Imagenette);
    assert_eq!((c.augment, c.normalize.clone()), (Augment::None, None));
    // A named augmentation stays; `true` on CIFAR-10 (flip) is nothing on MNIST-like digits.
    c.augment = Augment::RandomResizedCrop;
    c.switch_dataset(Dataset::Folder);
    assert_eq!(c.augment, Augment::RandomResizedCrop);
    let mut c = spec::zoo::recipe("cifar-cnn").unwrap();
    c.switch_dataset(Dataset::FashionMnist);
    assert_eq!(c.augment, Augment::None);
}

#[test]
fn normalize_parses_names_and_values() {
    use spec::Normalize;
    assert_eq!("imagenet".parse(), Ok(Normalize::imagenet()));
    assert_eq!("none".parse(), Ok(Normalize::none()));
    assert_eq!(
        "0.5/0.25".parse(),
        Ok(Normalize {
            mean: vec![0.5],
            std: vec![0.25]
        })
    );
    for bad in ["0.5,0.5/0.2", "0.5/0", "x/1", "0.5"] {
        let e = bad.parse::<Normalize>().unwrap_err();
        assert!(e.contains("--normalize"), "{bad}: {e}");
    }
}

#[test]
fn data_option_checks_name_the_flag() {
    let ok = RunConfig::default();
    for (c, flag) in [
        (
            RunConfig {
                val_split: Some(1.0),
                ..ok.clone()
            },
            "--val-split",
        ),
        (
            RunConfig {
                val_split: Some(f32::NAN),
                ..ok.clone()
            },
            "--val-split",
        ),
        (
            RunConfig {
                early_stop: Some(0),
                ..ok.clone()
            },
            "--early-stop",
        ),
        (
            RunConfig {
                resize: Some(0),
                ..ok.clone()
            },
            "--resize",
        ),
    ] {
        let e = c.check().unwrap_err();
        assert!(e.contains(flag), "{c:?}: {e}");
    }
}
