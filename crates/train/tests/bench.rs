//! `train::bench` through the CPU plugin: a real compiled step is timed, the report is consistent.

use spec::{Optimizer, RunConfig};
use train::bench::{self, DataSource, Options};
use train::device::Executor;

fn client() -> Executor {
    Executor::open(pjrt::Device::Cpu, None).unwrap_or_else(|e| {
        panic!("these tests need the PJRT CPU plugin (install it: scripts/setup.sh plugin): {e}")
    })
}

fn config(batch_size: usize, optimizer: Optimizer) -> RunConfig {
    RunConfig {
        batch_size,
        optimizer,
        ..RunConfig::default()
    }
}

fn tiny_cnn() -> spec::NetSpec {
    let text =
        "name tiny-bn\ninput 1 8 8\nclasses 3\nconvBn 4 kernel=3\nmaxPool 2\nflatten\ndense 3\n";
    spec::parse_checked(text.as_bytes()).unwrap()
}

fn check_report(r: &bench::Report, cfg: &RunConfig, net: &spec::NetSpec) {
    let s = r.step;
    assert!(
        s.min > 0.0 && s.min <= s.p10 && s.p10 <= s.median && s.median <= s.p90 && s.p90 <= s.max,
        "{s:?}"
    );
    assert!(r.last_loss.is_finite(), "loss {}", r.last_loss);
    assert_eq!(r.flops_per_step, nn::train_step(net, cfg).unwrap().flops);
    assert!(r.flops_per_step > 0);
    let expect_gflops = r.flops_per_step as f64 / s.median / 1e6;
    assert!((r.gflops - expect_gflops).abs() <= 1e-9 * expect_gflops.max(1.0));
    assert!((r.img_per_s - cfg.batch_size as f64 * 1e3 / s.median).abs() < 1e-6 * r.img_per_s);
    assert!(r.compile_s > 0.0 && r.codegen_ms > 0.0);
    assert_eq!(r.platform, "cpu");
    let j = r.to_json();
    for k in [
        "model",
        "batch_size",
        "codegen_ms",
        "compile_s",
        "ms_per_step_median",
        "img_per_s",
        "flops_per_step",
        "gflops",
    ] {
        assert!(j.get(k).is_some(), "key {k} missing from {j}");
    }
    assert_eq!(j["model"], net.name.as_str());
    assert_eq!(j["batch_size"], cfg.batch_size);
}

#[test]
fn times_a_bn_cnn_step_and_end_to_end() {
    let net = tiny_cnn();
    let cfg = config(16, Optimizer::ADAMW);
    let opts = Options {
        steps: 4,
        warmup: 1,
        e2e: true,
        data: DataSource::Synthetic(100),
        ..Options::default()
    };
    let r = bench::run(&net, &cfg, &client(), &opts).unwrap();
    check_report(&r, &cfg, &net);
    // Parameters + m + v (AdamW) + BN mean/var + the step counter, 4 bytes each.
    let p = spec::param_count(&net).unwrap() as u64;
    assert_eq!(r.state_bytes, 4 * (3 * p + 2 * 4 + 1));
    let e = r.e2e.as_ref().expect("e2e phase");
    assert_eq!(e.source, "synthetic");
    assert!(e.img_per_s > 0.0 && e.step.median > 0.0);
    let j = r.to_json();
    assert!(j["e2e_img_per_s"].as_f64().unwrap() > 0.0);
    assert!(r.table().contains("end to end"));
}

#[test]
fn every_optimizer_runs() {
    let net = spec::zoo::get("mnist-mlp").unwrap();
    for o in Optimizer::NAMES {
        let cfg = config(8, o.parse().unwrap());
        let opts = Options {
            steps: 2,
            warmup: 1,
            ..Options::default()
        };
        let r = bench::run(&net, &cfg, &client(), &opts).unwrap();
        check_report(&r, &cfg, &net);
        assert_eq!(r.optimizer, o);
    }
}

#[test]
fn bad_options_are_errors() {
    let net = tiny_cnn();
    let cfg = config(4, Optimizer::ADAMW);
    let c = client();
    let zero = Options {
        steps: 0,
        ..Options::default()
    };
    assert!(bench::run(&net, &cfg, &c, &zero)
        .unwrap_err()
        .to_string()
        .contains("steps"));
    let e = bench::run(&net, &config(0, Optimizer::Sgd), &c, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch size"), "{e}");
    // Fashion-MNIST images do not fit a 1×8×8 network.
    let fm = Options {
        steps: 1,
        warmup: 0,
        e2e: true,
        data: DataSource::FashionMnist("/nonexistent".into()),
        ..Options::default()
    };
    let e = bench::run(&net, &cfg, &c, &fm).unwrap_err().to_string();
    assert!(e.contains("1×28×28") && e.contains("tiny-bn"), "{e}");
    // Fewer synthetic images than one batch.
    let few = Options {
        steps: 1,
        warmup: 0,
        e2e: true,
        data: DataSource::Synthetic(2),
        ..Options::default()
    };
    let e = bench::run(&net, &cfg, &c, &few).unwrap_err().to_string();
    assert!(e.contains("fewer than one batch"), "{e}");
}
