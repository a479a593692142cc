//! safetensors: round trip, atomic replacement, and errors on corrupt files.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{msg, TempDir};
use train::checkpoint::{self, load_f32, save_f32, write_atomic, DataRef, TensorData, View};

fn meta() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("netspec_hash".to_string(), "ab12".to_string()),
        ("position".to_string(), "{\"epoch\":1}".to_string()),
    ])
}

/// A checkpoint with a kernel, a bias and an i32 step scalar.
fn sample(path: &Path) {
    let w: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    let views = [
        View {
            name: "l0.w",
            shape: &[2, 3],
            data: DataRef::F32(&w),
        },
        View {
            name: "l0.b",
            shape: &[3],
            data: DataRef::F32(&[0.0, f32::MIN_POSITIVE, -0.0]),
        },
        View {
            name: "step",
            shape: &[],
            data: DataRef::I32(&[-7]),
        },
    ];
    checkpoint::write(path, &views, &meta()).unwrap();
}

/// Header length, JSON header and data of a file.
fn split(bytes: &[u8]) -> (usize, String, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        n,
        String::from_utf8(bytes[8..8 + n].to_vec()).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn assemble(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn round_trip_keeps_order_values_and_metadata() {
    let d = TempDir::new("ck");
    let p = d.join("a.safetensors");
    sample(&p);
    let ck = checkpoint::read(&p).unwrap();
    assert_eq!(ck.metadata, meta());
    let names: Vec<&str> = ck.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["l0.w", "l0.b", "step"]);
    assert_eq!(ck.get("l0.w").unwrap().shape, vec![2, 3]);
    assert_eq!(
        ck.get("l0.w").unwrap().data,
        TensorData::F32(vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    );
    let b = match &ck.get("l0.b").unwrap().data {
        TensorData::F32(b) => b.clone(),
        TensorData::I32(_) => panic!("l0.b is F32"),
    };
    assert_eq!(
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        [0.0f32, f32::MIN_POSITIVE, -0.0].map(f32::to_bits)
    );
    assert_eq!(
        (
            ck.get("step").unwrap().shape.len(),
            &ck.get("step").unwrap().data
        ),
        (0, &TensorData::I32(vec![-7]))
    );

    // The layout is safetensors': header padded to 8 bytes, offsets contiguous from 0.
    let (n, header, data) = split(&std::fs::read(&p).unwrap());
    assert_eq!(n % 8, 0);
    assert!(
        header.contains("\"l0.w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"),
        "{header}"
    );
    assert!(
        header.contains("\"step\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[36,40]}"),
        "{header}"
    );
    assert_eq!(data.len(), 40);
}

#[test]
fn f32_helpers_round_trip() {
    let d = TempDir::new("ck-f32");
    let p = d.join("init.safetensors");
    let (a, b) = (vec![1.0f32, 2.0, 3.0, 4.0], vec![0.25f32]);
    save_f32(&p, &[("x", &[2, 2], &a), ("y", &[1], &b)], &BTreeMap::new()).unwrap();
    let (tensors, m) = load_f32(&p).unwrap();
    assert!(m.is_empty());
    assert_eq!(
        tensors,
        vec![
            ("x".to_string(), vec![2, 2], a),
            ("y".to_string(), vec![1], b)
        ]
    );

    sample(&p);
    let e = msg(load_f32(&p));
    assert!(e.contains("\"step\" is I32"), "{e}");
}

#[test]
fn reads_files_laid_out_by_other_writers() {
    // Header keys in alphabetical order (as other writers emit them), no padding, offsets out of key
    // order: the reader returns the tensors in buffer order.
    let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"z":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut data = 5i32.to_le_bytes().to_vec();
    data.extend_from_slice(&2.5f32.to_le_bytes());
    let ck = checkpoint::parse(&assemble(header, &data), Path::new("x")).unwrap();
    assert_eq!(ck.tensors[0].name, "z");
    assert_eq!(ck.tensors[1].data, TensorData::F32(vec![2.5]));
    assert_eq!(ck.metadata.get("format").map(String::as_str), Some("pt"));
}

#[test]
fn a_failed_write_leaves_the_old_file_intact() {
    let d = TempDir::new("ck-atomic");
    let p = d.join("model.safetensors");
    sample(&p);
    let before = std::fs::read(&p).unwrap();

    // A write that fails half way (as a full disk would).
    let e = write_atomic(&p, |w| {
        w.write_all(&[1u8; 4096])?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("disk full") && e.to_string().contains("model.safetensors"),
        "{e}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), before);

    // A write rejected before any byte is written (shape does not match the data).
    let bad = [View {
        name: "w",
        shape: &[3],
        data: DataRef::F32(&[1.0, 2.0]),
    }];
    let e = msg(checkpoint::write(&p, &bad, &BTreeMap::new()));
    assert!(e.contains("shape [3] does not hold 2 values"), "{e}");
    let dup = [
        View {
            name: "w",
            shape: &[1],
            data: DataRef::F32(&[1.0]),
        },
        View {
            name: "w",
            shape: &[1],
            data: DataRef::F32(&[1.0]),
        },
    ];
    assert!(msg(checkpoint::write(&p, &dup, &BTreeMap::new())).contains("repeated"));
    assert_eq!(std::fs::read(&p).unwrap(), before);

    // No temporary file is left behind; a successful write replaces the file.
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["model.safetensors"]);
    save_f32(&p, &[("v", &[1], &[9.0])], &BTreeMap::new()).unwrap();
    assert_eq!(load_f32(&p).unwrap().0[0].2, vec![9.0]);
}

#[test]
fn corrupt_files_are_named_with_the_problem() {
    let d = TempDir::new("ck-corrupt");
    let good = d.join("good.safetensors");
    sample(&good);
    let bytes = std::fs::read(&good).unwrap();
    let (_, header, data) = split(&bytes);
    let p = d.join("bad.safetensors");
    let check = |content: &[u8], want: &[&str]| {
        std::fs::write(&p, content).unwrap();
        let e = msg(checkpoint::read(&p));
        assert!(e.contains(&p.display().to_string()), "{e}");
        for w in want {
            assert!(e.contains(w), "got {e:?}, want {w:?}");
        }
    };
    check(
        &bytes[..5],
        &["at byte 0", "fewer than the 8-byte header length"],
    );
    check(
        &bytes[..40],
        &["at byte 0", "header length", "runs past the end"],
    );
    check(&bytes[..bytes.len() - 3], &["tensor \"step\"", "truncated"]);
    check(&[bytes.clone(), vec![0; 4]].concat(), &["4 trailing bytes"]);
    check(&assemble("{\"a\":", &[]), &["at byte 8", "not valid JSON"]);
    check(
        &assemble(&header.replace("\"I32\"", "\"BF16\""), &data),
        &["tensor \"step\"", "dtype BF16 is not supported"],
    );
    check(
        &assemble(&header.replace("[2,3]", "[2,4]"), &data),
        &["tensor \"l0.w\"", "needs 32 bytes", "span 24"],
    );
    check(
        &assemble(&header.replace("[0,24]", "[0,20]"), &data),
        &["tensor \"l0.w\""],
    );
    check(
        &assemble(&header.replace("\"ab12\"", "12"), &data),
        &["__metadata__ value of \"netspec_hash\" is not a string"],
    );
    // A gap: the bias claims bytes 28..40 instead of 24..36 (and the step moves behind it).
    let gap = header
        .replace("[24,36]", "[28,40]")
        .replace("[36,40]", "[40,44]");
    check(
        &assemble(&gap, &[data.clone(), vec![0; 4]].concat()),
        &["tensor \"l0.b\" starts at buffer byte 28", "gap"],
    );
    // An overlap: the step claims bytes 32..36, inside the bias.
    let overlap = header.replace("[36,40]", "[32,36]");
    check(&assemble(&overlap, &data), &["an overlap"]);
    let e = msg(checkpoint::read(&d.join("missing.safetensors")));
    assert!(e.contains("missing.safetensors"), "{e}");
}
