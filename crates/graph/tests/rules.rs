//! Shape-rule errors, autodiff errors, folding / DCE / FLOPs, and modules that must compile and run.

mod common;
mod harness;

use graph::{
    grad, print_module, vjp, CmpDir, ConvDims, ConvSpec, DType, DotDims, Graph, Prim, ReduceOp,
    RngAlgorithm, TensorType, Window,
};
use harness::{buffer, run, to_f64};

fn t(dtype: DType, dims: &[usize]) -> TensorType {
    TensorType::new(dtype, dims)
}

fn f32s(dims: &[usize]) -> TensorType {
    t(DType::F32, dims)
}

/// The error message of a failed build step; panics if it succeeded.
fn err<T: std::fmt::Debug>(r: graph::Result<T>) -> String {
    r.expect_err("expected a shape/dtype error").to_string()
}

#[test]
fn shape_errors_name_the_op_and_the_shapes() {
    let mut g = Graph::new("bad");
    let a = g.parameter(f32s(&[2, 3]));
    let b = g.parameter(f32s(&[3, 2]));
    let i = g.parameter(t(DType::I32, &[2, 3]));
    let e = err(g.add(a, b));
    assert!(
        e.starts_with("add:") && e.contains("tensor<2x3xf32>") && e.contains("tensor<3x2xf32>"),
        "{e}"
    );
    let e = err(g.add(a, i));
    assert!(e.contains("tensor<2x3xi32>"), "{e}");
    let e = err(g.exp(i));
    assert!(e.starts_with("exponential:") && e.contains("i32"), "{e}");

    let e = err(g.dot_general(a, a, &DotDims::matmul()));
    assert!(
        e.starts_with("dot_general:")
            && e.contains("dot_general_c10")
            && e.contains("tensor<2x3xf32>"),
        "{e}"
    );
    let bad = DotDims {
        lhs_batch: vec![0],
        rhs_batch: vec![],
        lhs_contract: vec![1],
        rhs_contract: vec![0],
    };
    assert!(err(g.dot_general(a, b, &bad)).contains("dot_general_c1"));

    let e = err(g.reshape(a, &[4, 2]));
    assert!(
        e.starts_with("reshape:") && e.contains("tensor<4x2xf32>") && e.contains("reshape_c1"),
        "{e}"
    );
    let e = err(g.transpose(a, &[0, 0]));
    assert!(e.starts_with("transpose:") && e.contains("twice"), "{e}");
    let e = err(g.broadcast_in_dim(a, &[2, 4], &[0, 1]));
    assert!(
        e.starts_with("broadcast_in_dim:") && e.contains("tensor<2x4xf32>"),
        "{e}"
    );
    let e = err(g.broadcast_in_dim(a, &[3, 2], &[1, 0]));
    assert!(e.contains("strictly increasing"), "{e}");
    let e = err(g.slice(a, &[0, 2], &[2, 1], &[1, 1]));
    assert!(e.starts_with("slice:") && e.contains("slice_c3"), "{e}");
    let z = g.scalar(0.0, DType::F64).unwrap();
    let e = err(g.pad(a, z, &[0, 0], &[0, 0], &[0, 0]));
    assert!(e.starts_with("pad:") && e.contains("tensor<f64>"), "{e}");
    let e = err(g.concatenate(&[a, b], 0));
    assert!(
        e.starts_with("concatenate:") && e.contains("tensor<3x2xf32>"),
        "{e}"
    );
    let e = err(g.reduce(a, ReduceOp::Sum, &[2]));
    assert!(
        e.starts_with("reduce:") && e.contains("out of range"),
        "{e}"
    );
    let e = err(g.select(a, a, a));
    assert!(e.starts_with("select:") && e.contains("select_c1"), "{e}");
    let e = err(g.iota(&f32s(&[3]), 1));
    assert!(e.contains("iota_c1"), "{e}");

    let x = g.parameter(f32s(&[1, 4, 5, 5]));
    let w = g.parameter(f32s(&[8, 3, 3, 3]));
    let e = err(g.convolution(x, w, &ConvSpec::new(ConvDims::nchw(2))));
    assert!(
        e.starts_with("convolution:")
            && e.contains("tensor<1x4x5x5xf32>")
            && e.contains("tensor<8x3x3x3xf32>"),
        "{e}"
    );
    let w6 = g.parameter(f32s(&[8, 4, 6, 6]));
    let e = err(g.convolution(x, w6, &ConvSpec::new(ConvDims::nchw(2))));
    assert!(e.contains("smaller than the dilated window"), "{e}");
    let e = err(g.reduce_window(x, ReduceOp::Max, &Window::new(&[1, 1, 2])));
    assert!(e.starts_with("reduce_window:"), "{e}");
    let src = g.parameter(f32s(&[1, 4, 3, 3]));
    let e = err(g.select_and_scatter(x, src, &Window::new(&[1, 1, 2, 2]).strides(&[1, 1, 2, 2])));
    assert!(
        e.starts_with("select_and_scatter:") && e.contains("tensor<1x4x2x2xf32>"),
        "{e}"
    );
    let s = g.parameter(t(DType::U32, &[2]));
    let e = err(g.rng_bit_generator(s, RngAlgorithm::ThreeFry, &t(DType::U32, &[4])));
    assert!(
        e.starts_with("rng_bit_generator:") && e.contains("tensor<2xui32>"),
        "{e}"
    );
    let e = err(g.scalar(0.5, DType::I32));
    assert!(e.contains("not representable"), "{e}");
}

#[test]
fn autodiff_refuses_what_it_cannot_differentiate() {
    let mut g = Graph::new("ad");
    let x = g.parameter(f32s(&[4]));
    let n = g.parameter(t(DType::I32, &[4]));
    let loss = g.sum(x, &[0]).unwrap();
    // w.r.t. an integer
    let e = grad(&mut g, loss, &[n]).unwrap_err().to_string();
    assert!(e.contains("integer") && e.contains("tensor<4xi32>"), "{e}");
    // a non-scalar / non-float loss
    assert!(grad(&mut g, x, &[x])
        .unwrap_err()
        .to_string()
        .contains("float scalar"));
    let ni = g.sum(n, &[0]).unwrap();
    assert!(grad(&mut g, ni, &[x]).is_err());
    // through the random bits: the state is an integer, so it cannot be a `wrt`, and the bits carry no
    // cotangent, so a loss built from converted bits has a zero gradient w.r.t. x only through x's own path.
    let s = g.parameter(t(DType::U64, &[2]));
    let (_, bits) = g
        .rng_bit_generator(s, RngAlgorithm::ThreeFry, &t(DType::U32, &[4]))
        .unwrap();
    assert!(grad(&mut g, loss, &[s]).is_err());
    let fb = g.convert(bits, DType::F32).unwrap();
    let y = g.mul(fb, x).unwrap();
    let l2 = g.sum(y, &[0]).unwrap();
    let gx = grad(&mut g, l2, &[x]).unwrap();
    assert_eq!(gx[0], fb, "d/dx Σ bits·x = bits (the bits are a constant)");
    // a convolution with batch groups has no VJP rule: an error, not a wrong gradient
    let a = g.parameter(f32s(&[4, 2, 5, 5]));
    let k = g.parameter(f32s(&[4, 2, 3, 3]));
    let c = g
        .convolution(a, k, &ConvSpec::new(ConvDims::nchw(2)).batch_groups(2))
        .unwrap();
    let l3 = g.sum(c, &[0, 1, 2, 3]).unwrap();
    let e = grad(&mut g, l3, &[k]).unwrap_err().to_string();
    assert!(e.contains("batch_group_count"), "{e}");
    // a mismatched cotangent
    let c4 = g.parameter(f32s(&[3]));
    assert!(vjp(&mut g, &[x], &[c4], &[x]).is_err());
}

#[test]
fn grad_of_unused_and_integer_paths() {
    let mut g = Graph::new("paths");
    let x = g.parameter(f32s(&[3]));
    let unused = g.parameter(f32s(&[2]));
    // relu via select(x > 0, x, 0): the predicate path carries no cotangent
    let z = g.zeros_like(x).unwrap();
    let p = g.compare(x, z, CmpDir::Gt).unwrap();
    let r = g.select(p, x, z).unwrap();
    let loss = g.sum(r, &[0]).unwrap();
    let gs = grad(&mut g, loss, &[x, unused]).unwrap();
    assert_eq!(
        g.splat_value(gs[1]),
        Some(0.0),
        "an unused parameter gets a zero constant"
    );
    g.set_outputs(&[gs[0], gs[1]]).unwrap();
    let text = print_module(&g).unwrap();
    let out = run(
        &text,
        &[
            buffer(&f32s(&[3]), &[-1.0, 2.0, 0.5]),
            buffer(&f32s(&[2]), &[1.0, 1.0]),
        ],
    );
    assert_eq!(to_f64(&out[0], DType::F32), vec![0.0, 1.0, 1.0]);
    assert_eq!(to_f64(&out[1], DType::F32), vec![0.0, 0.0]);
}

#[test]
fn custom_vjp_rule_replaces_the_derivative_of_the_internals() {
    // forward: y = x·x; rule: deliberately 3·ct (not 2x·ct), so we can see that the rule was used.
    let mut g = Graph::new("custom");
    let x = g.parameter(f32s(&[2]));
    let y = g
        .custom_vjp(
            "square",
            &[x],
            |g, xs| Ok((vec![g.mul(xs[0], xs[0])?], vec![])),
            |g, c| Ok(vec![Some(g.scale(c.cotangents[0], 3.0)?)]),
        )
        .unwrap();
    let loss = g.sum(y[0], &[0]).unwrap();
    let gx = grad(&mut g, loss, &[x]).unwrap();
    g.set_outputs(&[y[0], gx[0]]).unwrap();
    let text = print_module(&g).unwrap();
    let out = run(&text, &[buffer(&f32s(&[2]), &[5.0, -1.0])]);
    assert_eq!(to_f64(&out[0], DType::F32), vec![25.0, 1.0]);
    assert_eq!(to_f64(&out[1], DType::F32), vec![3.0, 3.0]);
    // a rule with the wrong arity is an error at generation time
    let mut g = Graph::new("custom_bad");
    let x = g.parameter(f32s(&[2]));
    let y = g
        .custom_vjp(
            "bad",
            &[x],
            |g, xs| Ok((vec![g.exp(xs[0])?], vec![])),
            |_, _| Ok(vec![]),
        )
        .unwrap();
    let loss = g.sum(y[0], &[0]).unwrap();
    assert!(grad(&mut g, loss, &[x])
        .unwrap_err()
        .to_string()
        .contains("returned 0 cotangents"));
}

#[test]
fn folding_dedupe_and_dead_code() {
    let mut g = Graph::new("fold");
    let x = g.parameter(f32s(&[2, 3]));
    let a = g.scalar(2.0, DType::F32).unwrap();
    let b = g.broadcast_in_dim(a, &[2, 3], &[]).unwrap();
    assert!(
        matches!(g.node_of(b).prim, Prim::Constant { .. }),
        "broadcast of a constant folds to a splat"
    );
    let c = g.full(2.0, &f32s(&[2, 3])).unwrap();
    assert_eq!(b, c, "equal constants are shared");
    let one = g.ones_like(x).unwrap();
    assert_eq!(g.mul(x, one).unwrap(), x, "x·1 = x");
    let h = g.scalar(0.5, DType::F32).unwrap();
    let q = g.mul(a, h).unwrap();
    assert_eq!(
        g.splat_value(q),
        Some(1.0),
        "constant arithmetic is evaluated"
    );
    let e1 = g.exp(x).unwrap();
    let e2 = g.exp(x).unwrap();
    assert_eq!(e1, e2, "common subexpressions are built once");
    let x3 = g.parameter(f32s(&[2, 3, 4]));
    let t1 = g.transpose(x3, &[1, 2, 0]).unwrap(); // [3, 4, 2]
    let t2 = g.transpose(t1, &[2, 0, 1]).unwrap();
    assert_eq!(t2, x3, "transposes that cancel leave the operand");
    let t3 = g.transpose(t1, &[1, 0, 2]).unwrap(); // [4, 3, 2] = x3 dims (2, 1, 0)
    assert_eq!(
        g.node_of(t3).inputs,
        vec![x3],
        "a transpose of a transpose is one transpose"
    );
    assert_eq!(g.dims(t3), &[4, 3, 2]);
    assert!(matches!(&g.node_of(t3).prim, Prim::Transpose { perm } if perm == &[2, 1, 0]));
    let _dead = g.tanh(x).unwrap();
    let y = g.mul(e1, c).unwrap();
    g.set_outputs(&[y]).unwrap();
    let text = print_module(&g).unwrap();
    assert!(
        !text.contains("tanh"),
        "dead nodes are not printed:\n{text}"
    );
    assert_eq!(text.matches("stablehlo.constant").count(), 1, "{text}");
}

#[test]
fn flops_count_macs_and_elements() {
    let mut g = Graph::new("flops");
    let x = g.parameter(f32s(&[8, 16]));
    let w = g.parameter(f32s(&[16, 4]));
    let y = g.matmul(x, w).unwrap(); // 2·8·16·4 = 1024
    let e = g.exp(y).unwrap(); // 32
    let s = g.sum(e, &[1]).unwrap(); // 32
    g.set_outputs(&[s]).unwrap();
    assert_eq!(g.flops(), 1024 + 32 + 32);
    let mut g = Graph::new("conv_flops");
    let x = g.parameter(f32s(&[2, 4, 8, 8]));
    let w = g.parameter(f32s(&[6, 2, 3, 3]));
    let c = g
        .convolution(
            x,
            w,
            &ConvSpec::new(ConvDims::nchw(2))
                .feature_groups(2)
                .padding(&[(1, 1), (1, 1)]),
        )
        .unwrap();
    g.set_outputs(&[c]).unwrap();
    assert_eq!(g.flops(), 2 * (2 * 6 * 8 * 8) * (2 * 3 * 3));
}

#[test]
fn printer_arguments_and_aliasing() {
    let mut g = Graph::new("sig");
    let p = g.parameter(f32s(&[2]));
    let q = g.parameter(f32s(&[3]));
    g.set_aliasing_output(p, 1).unwrap();
    g.set_sharding(q, "{replicated}").unwrap();
    g.set_partitions(1, 1);
    let two = g.full_like(2.0, p).unwrap();
    let r = g.mul(p, two).unwrap();
    g.set_outputs(&[q, r]).unwrap();
    let text = print_module(&g).unwrap();
    expect_test::expect![[r#"
        module @sig attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
          func.func public @main(%arg0: tensor<2xf32> {tf.aliasing_output = 1 : i32}, %arg1: tensor<3xf32> {mhlo.sharding = "{replicated}"}) -> (tensor<3xf32>, tensor<2xf32>) {
            %0 = stablehlo.constant dense<2.0> : tensor<2xf32>
            %1 = stablehlo.multiply %arg0, %0 : tensor<2xf32>
            return %arg1, %1 : tensor<3xf32>, tensor<2xf32>
          }
        }
    "#]]
    .assert_eq(&text);
    // aliasing an output of another type is refused
    g.set_aliasing_output(p, 0).unwrap();
    assert!(print_module(&g)
        .unwrap_err()
        .to_string()
        .contains("aliases output 0"));
    assert!(
        g.set_aliasing_output(r, 0).is_err(),
        "only parameters can be donated"
    );
}

#[test]
fn golden_modules_compile_and_run() {
    // mlp_step: run one SGD step and check the loss is finite and the parameters moved.
    let g = common::mlp_step().unwrap();
    let text = print_module(&g).unwrap();
    let mut rng = harness::Rng(7);
    let args: Vec<_> = g
        .parameters()
        .iter()
        .map(|&p| {
            let ty = g.ty(p).clone();
            let data: Vec<f64> = match ty.dtype {
                DType::I32 => (0..ty.numel()).map(|_| rng.range(0, 2) as f64).collect(),
                _ if ty.rank() == 0 => vec![0.1],
                _ => (0..ty.numel()).map(|_| rng.normal() * 0.5).collect(),
            };
            buffer(&ty, &data)
        })
        .collect();
    let out = run(&text, &args);
    let loss = to_f64(&out[4], DType::F32)[0];
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    let w1 = to_f64(&out[0], DType::F32);
    let w1_before = args[0].to_vec::<f32>().unwrap();
    assert!(w1
        .iter()
        .zip(&w1_before)
        .any(|(a, b)| (a - *b as f64).abs() > 1e-6));
    // the conv/pool graphs compile
    for g in [
        common::conv_pool().unwrap(),
        common::conv_pool_grad().unwrap(),
    ] {
        harness::client()
            .compile(&print_module(&g).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", g.name()));
    }
}

#[test]
fn rng_bit_generator_and_batch_groups_run() {
    let mut g = Graph::new("rng");
    let s = g.parameter(t(DType::U64, &[2]));
    let (s2, bits) = g
        .rng_bit_generator(s, RngAlgorithm::ThreeFry, &t(DType::U32, &[2, 3]))
        .unwrap();
    let x = g.parameter(f32s(&[4, 2, 5, 5]));
    let k = g.parameter(f32s(&[4, 2, 3, 3]));
    let c = g
        .convolution(x, k, &ConvSpec::new(ConvDims::nchw(2)).batch_groups(2))
        .unwrap();
    assert_eq!(g.dims(c), &[2, 4, 3, 3]);
    g.set_outputs(&[s2, bits, c]).unwrap();
    let text = print_module(&g).unwrap();
    assert!(
        text.contains("%0:2 = stablehlo.rng_bit_generator"),
        "{text}"
    );
    let out = run(
        &text,
        &[
            buffer(&t(DType::U64, &[2]), &[1.0, 2.0]),
            buffer(&f32s(&[4, 2, 5, 5]), &[1.0; 200]),
            buffer(&f32s(&[4, 2, 3, 3]), &[1.0; 72]),
        ],
    );
    assert_eq!(out[1].to_vec::<u32>().unwrap().len(), 6);
    assert_eq!(to_f64(&out[2], DType::F32), vec![18.0; 72]);
}

#[test]
fn float_constants_round_trip_through_the_plugin() {
    // Values that need care: tiny, huge, non-terminating decimals, ±inf, bf16-rounded; f32 and f64.
    let vals = [
        0.1,
        -1e-45,
        3.4028234663852886e38,
        1.0 / 3.0,
        1e-300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
    ];
    for dt in [DType::F32, DType::F64, DType::BF16] {
        let mut g = Graph::new("consts");
        let ty = t(dt, &[vals.len()]);
        let c = g.constant_f64(&vals, &ty).unwrap();
        // bf16 is read back through an exact conversion to f32.
        let read = if dt == DType::BF16 { DType::F32 } else { dt };
        let c = g.convert(c, read).unwrap();
        g.set_outputs(&[c]).unwrap();
        let out = run(&print_module(&g).unwrap(), &[]);
        let got = to_f64(&out[0], read);
        for (v, got) in vals.iter().zip(got) {
            let want = graph::round_to(*v, dt);
            assert_eq!(
                want.to_bits(),
                got.to_bits(),
                "{dt}: {v} came back as {got}"
            );
        }
    }
}
