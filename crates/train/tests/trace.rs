//! Traces: write/read round trip, lean4-mlir compatibility, diff in every mode, and parse errors.

mod common;

use std::path::Path;

use common::{msg, TempDir};
use serde_json::json;
use train::trace::{self, diff, DiffMode, EpochLine, Header, Step, Trace, TraceWriter};

fn header() -> Header {
    Header {
        phase: "phase3".into(),
        netspec_name: "mnist-mlp".into(),
        netspec_hash: "ab12".into(),
        config: json!({"lr": 0.001, "batch_size": 128, "epochs": 2, "use_adam": true, "seed": 1}),
        total_params: 669_706,
        dataset: "fashion-mnist".into(),
        emitter_version: "1".into(),
        extra: Default::default(),
    }
}

fn with_losses(losses: &[f64]) -> Trace {
    let steps = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| Step::new(i as u64 + 1, i as u64 / 5, l, 0.001))
        .collect();
    Trace {
        header: header(),
        steps,
        epochs: vec![],
    }
}

#[test]
fn write_then_read_round_trips() {
    let d = TempDir::new("trace");
    let p = d.join("run.jsonl");
    let mut h = header();
    h.extra
        .insert("emitted_at".into(), json!("2026-01-01T00:00:00Z"));
    let steps = [
        Step {
            grad_norm: Some(1.5),
            param_norm: Some(30.25),
            wall_ms: Some(3.5),
            ..Step::new(1, 0, 2.25, 0.0005)
        },
        Step::new(2, 0, 1.25e-7, 1e-3),
        Step::new(3, 1, f64::NAN, 1e-3),
        Step::new(4, 1, f64::INFINITY, 0.0),
    ];
    let epochs = vec![EpochLine {
        epoch: 0,
        test_acc: Some(0.8443),
        test_correct: Some(8443),
        test_total: Some(10000),
        ..Default::default()
    }];
    let mut w = TraceWriter::create(&p, &h).unwrap();
    w.step(&steps[0]).unwrap();
    w.step(&steps[1]).unwrap();
    w.epoch(&epochs[0]).unwrap();
    w.step(&steps[2]).unwrap();
    w.step(&steps[3]).unwrap();
    drop(w);

    let text = std::fs::read_to_string(&p).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("{\"kind\":\"header\",\"phase\":\"phase3\""),
        "{first}"
    );
    // Non-finite values are written as Python's json module writes them.
    assert!(
        text.contains("\"loss\":NaN") && text.contains("\"loss\":Infinity"),
        "{text}"
    );
    // Key order and number spelling, byte for byte.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        r#"{"kind":"step","step":1,"epoch":0,"loss":2.25,"lr":0.0005,"grad_norm":1.5,"param_norm":30.25,"wall_ms":3.5}"#
    );
    assert_eq!(
        lines[3],
        r#"{"kind":"epoch","epoch":0,"test_acc":0.8443,"test_correct":8443,"test_total":10000}"#
    );
    assert_eq!(
        lines[4],
        r#"{"kind":"step","step":3,"epoch":1,"loss":NaN,"lr":0.001}"#
    );
    assert!(
        first.ends_with(r#","total_params":669706,"dataset":"fashion-mnist","emitter_version":"1","emitted_at":"2026-01-01T00:00:00Z"}"#),
        "{first}"
    );

    let t = trace::read(&p).unwrap();
    assert_eq!(t.header, h);
    assert_eq!(t.epochs, epochs);
    assert_eq!(t.steps.len(), 4);
    assert_eq!(t.steps[..2], steps[..2]);
    assert!(t.steps[2].loss.is_nan() && t.steps[3].loss == f64::INFINITY);
    // The writer's text and `to_string` agree (same line formats).
    let again = trace::parse(&trace::to_string(&t), Path::new("mem")).unwrap();
    assert_eq!(again.header, t.header);
    assert_eq!(again.epochs, t.epochs);
}

// 2.302585 is lean4-mlir's example loss (ln 10 to 6 decimals), kept as written there.
#[allow(clippy::approx_constant)]
#[test]
fn reads_lean4_mlir_lines() {
    let text = concat!(
        "{\"kind\":\"header\",\"phase\":\"phase2\",\"netspec_name\":\"mnist_mlp\",\"netspec_hash\":\"\",",
        "\"config\":{\"lr\":0.1,\"batch_size\":128,\"cosine\":false},\"total_params\":669706,",
        "\"dataset\":\"mnist\",\"emitted_at\":\"x\",\"emitter_version\":\"1\"}\n",
        "{\"kind\":\"step\",\"step\":1,\"epoch\":0,\"loss\":2.302585,\"lr\":0.1}\n",
        "\n",
        "{\"kind\":\"step\",\"step\":2,\"epoch\":0,\"loss\":NaN,\"lr\":0.1,\"wall_ms\":12.0}\n",
        "{\"kind\":\"note\",\"text\":\"Infinity and NaN inside a string stay\"}\n",
    );
    let t = trace::parse(text, Path::new("lean.jsonl")).unwrap();
    assert_eq!(t.header.phase, "phase2");
    assert_eq!(t.header.extra.get("emitted_at"), Some(&json!("x")));
    assert_eq!(t.steps.len(), 2);
    assert_eq!(t.steps[0], Step::new(1, 0, 2.302585, 0.1));
    assert!(t.steps[1].loss.is_nan());
    assert_eq!(t.steps[1].wall_ms, Some(12.0));
}

#[test]
fn diff_modes_have_their_tolerances() {
    let base = with_losses(&[2.0, 1.5, 1.0]);
    for m in DiffMode::ALL {
        assert!(diff(&base, &base.clone(), m).agrees(), "{m:?}");
    }
    // |Δ| = 0.003 at step 2: strict allows 1e-4 + 1e-3·1.503 ≈ 0.0016, cross-gpu 0.016.
    let small = with_losses(&[2.0, 1.503, 1.0]);
    let r = diff(&base, &small, DiffMode::Strict);
    assert!(!r.agrees());
    assert_eq!(
        (
            r.differing,
            r.first.len(),
            r.first[0].step,
            r.first[0].fields[0].field
        ),
        (1, 1, 2, "loss")
    );
    assert_eq!(
        (r.first[0].fields[0].a, r.first[0].fields[0].b),
        (1.5, 1.503)
    );
    assert!(diff(&base, &small, DiffMode::CrossGpu).agrees());
    // |Δ| = 0.1: cross-gpu allows 1e-3 + 1e-2·1.6 = 0.017, cross-comp 1e-2 + 0.16 = 0.17.
    let medium = with_losses(&[2.0, 1.6, 1.0]);
    assert!(!diff(&base, &medium, DiffMode::CrossGpu).agrees());
    assert!(diff(&base, &medium, DiffMode::CrossComp).agrees());
    // |Δ| = 0.5 fails everywhere; NaN is never close, even to NaN.
    let large = with_losses(&[2.0, 2.0, 1.0]);
    let nan = with_losses(&[2.0, f64::NAN, 1.0]);
    for m in DiffMode::ALL {
        assert!(!diff(&base, &large, m).agrees(), "{m:?}");
        assert!(!diff(&nan, &nan, m).agrees(), "{m:?}");
    }
}

#[test]
fn tolerance_is_relative_to_b() {
    // |a − b| ≤ atol + rtol·|b| with strict (1e-4, 1e-3): b = 100 allows 0.1001.
    let a = with_losses(&[100.1]);
    let b = with_losses(&[100.0]);
    assert!(diff(&a, &b, DiffMode::Strict).agrees());
    let a = with_losses(&[100.11]);
    assert!(!diff(&a, &b, DiffMode::Strict).agrees());
}

#[test]
fn lr_and_optional_norms() {
    let a = with_losses(&[1.0, 1.0]);
    let mut b = a.clone();
    b.steps[1].lr = 0.002;
    let r = diff(&a, &b, DiffMode::Strict);
    assert_eq!(r.first[0].fields[0].field, "lr");
    // Learning rates are small: atol dominates, so cross-comp (atol 1e-2) cannot see this one.
    assert!(diff(&a, &b, DiffMode::CrossComp).agrees());

    // grad_norm only when both have it.
    let mut c = a.clone();
    c.steps[0].grad_norm = Some(5.0);
    assert!(diff(&a, &c, DiffMode::Strict).agrees());
    let mut d = a.clone();
    d.steps[0].grad_norm = Some(7.0);
    let r = diff(&c, &d, DiffMode::Strict);
    assert_eq!((r.differing, r.first[0].fields[0].field), (1, "grad_norm"));
}

#[test]
fn headers_counts_and_listing_limit() {
    let a = with_losses(&[1.0; 30]);
    let mut b = a.clone();
    b.header.config["lr"] = json!(0.01);
    b.header.total_params += 1;
    b.header.phase = "phase2".into(); // phase is not compared
    let r = diff(&a, &b, DiffMode::CrossComp);
    assert_eq!(r.header.len(), 2, "{:?}", r.header);
    assert!(r.header[0].starts_with("config:") && r.header[1].starts_with("total_params:"));

    // Numbers compare by value in the config: 128 equals 128.0.
    let mut c = a.clone();
    c.header.config["batch_size"] = json!(128.0);
    assert!(diff(&a, &c, DiffMode::Strict).agrees());

    let short = with_losses(&[1.0; 29]);
    let r = diff(&a, &short, DiffMode::Strict);
    assert!(!r.agrees());
    assert_eq!((r.counts, r.compared), ((30, 29), 29));

    let far = with_losses(&[9.0; 30]);
    let r = diff(&a, &far, DiffMode::CrossComp);
    assert_eq!((r.differing, r.first.len()), (30, 20));
    let text = r.to_string();
    assert!(
        text.contains("traces differ")
            && text.contains("30 of 30 compared steps differ (first 20 shown)"),
        "{text}"
    );
}

#[test]
fn malformed_traces_name_the_line() {
    let p = Path::new("bad.jsonl");
    let h = "{\"kind\":\"header\",\"phase\":\"p\",\"netspec_name\":\"n\",\"netspec_hash\":\"h\",\"config\":{},\"total_params\":1,\"dataset\":\"d\",\"emitter_version\":\"1\"}\n";
    let cases = [
        (
            format!("{h}{{\"kind\":\"step\",\"step\":1,\"epoch\":0,\"lr\":0.1}}\n"),
            "bad.jsonl:2: missing field `loss`",
        ),
        (
            format!("{h}{{\"kind\":\"step\",\"step\":-1,\"epoch\":0,\"loss\":1,\"lr\":0.1}}\n"),
            "bad.jsonl:2: invalid value: integer `-1`, expected a non-negative integer",
        ),
        (
            format!("{h}\n{{\"kind\":\"step\",\n"),
            "bad.jsonl:3: not JSON",
        ),
        (format!("{h}{h}"), "bad.jsonl:2: a second header line"),
        (
            "{\"kind\":\"step\",\"step\":1,\"epoch\":0,\"loss\":1,\"lr\":0.1}\n".to_string(),
            "bad.jsonl:1: expected the header line first",
        ),
        (String::new(), "bad.jsonl:1: empty trace"),
        (
            h.replace("\"config\":{}", "\"config\":3"),
            "bad.jsonl:1: \"config\" must be an object",
        ),
    ];
    for (text, want) in cases {
        let e = msg(trace::parse(&text, p));
        assert!(e.contains(want), "got {e:?}, want {want:?}");
    }
    let e = msg(trace::read(Path::new("/nonexistent/trace.jsonl")));
    assert!(e.contains("/nonexistent/trace.jsonl"), "{e}");
}

/// A loss read back from a trace is the f64 that was written, bit for bit: serde_json's default float
/// parser can land one unit in the last place off (it read 1.9139372110366821 as …682), so the crate is
/// built with `float_roundtrip`. Rust's `{:?}` prints the shortest text that round-trips.
#[test]
fn losses_round_trip_bit_for_bit() {
    let mut text = String::from(concat!(
        "{\"kind\":\"header\",\"phase\":\"phase2\",\"netspec_name\":\"m\",\"netspec_hash\":\"\",",
        "\"config\":{},\"total_params\":1,\"dataset\":\"d\",\"emitted_at\":\"x\",\"emitter_version\":\"1\"}\n",
    ));
    let mut values = vec![1.9139372110366821_f64];
    let mut state = 0x9e3779b97f4a7c15_u64;
    for _ in 0..2000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Losses between 2^-4 and 2^4 with random mantissas.
        let exp = 1019 + (state >> 60) % 8;
        values.push(f64::from_bits((exp << 52) | (state >> 12)));
    }
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!(
            "{{\"kind\":\"step\",\"step\":{},\"epoch\":0,\"loss\":{v:?},\"lr\":0.1}}\n",
            i + 1
        ));
    }
    let t = trace::parse(&text, Path::new("mem")).unwrap();
    let off: Vec<_> = t
        .steps
        .iter()
        .zip(&values)
        .filter(|(s, v)| s.loss.to_bits() != v.to_bits())
        .collect();
    assert!(
        off.is_empty(),
        "{} of {} losses read back differently, e.g. {:?}",
        off.len(),
        values.len(),
        off.first().map(|(s, v)| (s.loss, **v))
    );
}
