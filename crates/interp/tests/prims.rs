//! The interpreter against XLA (the CPU plugin), beyond the VJP cases (every VJP module of
//! `crates/graph/tests/vjp.rs` is also evaluated by the interpreter there, sharing XLA's compilations):
//! - `rng_bit_generator` bit for bit (THREE_FRY, PHILOX, DEFAULT; 8-, 32- and 64-bit results; odd shapes);
//! - a mutated printer (a transposed dimension number in a convolution, swapped contracting dims in a
//!   dot) is caught by the same comparison.

mod common;

use common::{distance, out_types, run_xla, run_xla_text};
use graph::{ConvDims, ConvSpec, DType, DotDims, Graph, RngAlgorithm, TensorType};
use interp::{Options, Precision, Tensor};

#[test]
fn rng_bit_generator_is_bit_exact_with_xla() {
    let mut g = Graph::new("rng");
    let s2 = g.parameter(TensorType::new(DType::U64, &[2]));
    let s3 = g.parameter(TensorType::new(DType::U64, &[3]));
    let mut outs = Vec::new();
    let shapes: &[(DType, &[usize])] = &[
        (DType::U32, &[4, 6]),
        (DType::U32, &[5, 3]),
        (DType::U32, &[7]),
        (DType::U32, &[]),
        (DType::U32, &[3, 1, 5]),
        (DType::U64, &[3, 5]),
        (DType::U8, &[9]),
    ];
    for alg in [
        RngAlgorithm::ThreeFry,
        RngAlgorithm::Philox,
        RngAlgorithm::Default,
    ] {
        for &(dt, dims) in shapes {
            let state = if alg == RngAlgorithm::ThreeFry {
                s2
            } else {
                s3
            };
            let (st, bits) = g
                .rng_bit_generator(state, alg, &TensorType::new(dt, dims))
                .unwrap();
            outs.extend([st, bits]);
            if alg != RngAlgorithm::ThreeFry {
                let (st, bits) = g
                    .rng_bit_generator(s2, alg, &TensorType::new(dt, dims))
                    .unwrap();
                outs.extend([st, bits]);
            }
        }
    }
    // (i32 results are left out: XLA returns them as ui32 buffers.)
    // The dropout key netspec uses: [0x6e6574737065635f, step], chained twice.
    let (st, bits) = g
        .rng_bit_generator(
            s2,
            RngAlgorithm::ThreeFry,
            &TensorType::new(DType::U32, &[2, 8, 8, 3]),
        )
        .unwrap();
    let (st, bits2) = g
        .rng_bit_generator(
            st,
            RngAlgorithm::ThreeFry,
            &TensorType::new(DType::U32, &[2, 10]),
        )
        .unwrap();
    outs.extend([bits, bits2, st]);
    g.set_outputs(&outs).unwrap();
    for (a, b) in [
        ([0x6e65_7473_7065_635f, 17], [1, 2, 3]),
        ([u64::MAX, u64::MAX - 2], [5, u64::MAX - 1, 9]),
    ] {
        let args = vec![
            Tensor::from_u64(&[2], a.to_vec()).unwrap(),
            Tensor::from_u64(&[3], b.to_vec()).unwrap(),
        ];
        let want = run_xla(&g, &args);
        let got = interp::run(&g, &args, &Options::new(Precision::F64)).unwrap();
        for (i, (x, y)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                x, y,
                "output {i} ({}) differs for state {a:x?} / {b:x?}",
                x.ty
            );
        }
    }
}

/// A graph with one convolution (square input, asymmetric kernel) and one matrix product of square
/// operands: transposing a dimension number in the printed text still compiles, but computes
/// something else.
fn conv_and_dot() -> (Graph, Vec<Tensor>) {
    let mut g = Graph::new("mutants");
    let x = g.parameter(TensorType::new(DType::F32, &[2, 3, 6, 6]));
    let w = g.parameter(TensorType::new(DType::F32, &[4, 3, 3, 3]));
    let a = g.parameter(TensorType::new(DType::F32, &[5, 5]));
    let b = g.parameter(TensorType::new(DType::F32, &[5, 5]));
    let c = g
        .convolution(
            x,
            w,
            &ConvSpec::new(ConvDims::nchw(2)).padding(&[(1, 1), (1, 1)]),
        )
        .unwrap();
    let d = g.dot_general(a, b, &DotDims::matmul()).unwrap();
    g.set_outputs(&[c, d]).unwrap();
    let args = vec![
        Tensor::from_f32(&[2, 3, 6, 6], &common::noise(216, 1)).unwrap(),
        Tensor::from_f32(&[4, 3, 3, 3], &common::noise(108, 2)).unwrap(),
        Tensor::from_f32(&[5, 5], &common::noise(25, 3)).unwrap(),
        Tensor::from_f32(&[5, 5], &common::noise(25, 4)).unwrap(),
    ];
    (g, args)
}

#[test]
fn a_mutated_printer_is_caught() {
    let (g, args) = conv_and_dot();
    let text = graph::print_module(&g).unwrap();
    let reference = interp::run(&g, &args, &Options::new(Precision::F64)).unwrap();
    let outs = out_types(&g);
    // The true printing agrees within f32 rounding.
    let xla = run_xla_text(&text, &outs, &args);
    for i in 0..2 {
        let e = distance(&xla[i], &reference[i], 1e-30);
        assert!(
            e < 1e-6,
            "output {i}: unmutated printing differs by {e:.2e}"
        );
    }
    let mutants = [
        (
            "conv: input/output spatial dims swapped",
            "dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]",
            "dim_numbers = [b, f, 1, 0]x[o, i, 0, 1]->[b, f, 1, 0]",
            0,
        ),
        (
            "dot: rhs contracting dim 0 -> 1",
            "contracting_dims = [1] x [0]",
            "contracting_dims = [1] x [1]",
            1,
        ),
    ];
    for (what, from, to, out) in mutants {
        assert!(text.contains(from), "{what}: `{from}` not in\n{text}");
        let bad = text.replacen(from, to, 1);
        let xla = run_xla_text(&bad, &outs, &args);
        let e = distance(&xla[out], &reference[out], 1e-30);
        println!("{what}: interpreter vs mutated XLA module {e:.2e}");
        assert!(e > 1e-2, "{what}: the mutation went unnoticed ({e:.2e})");
    }
}
