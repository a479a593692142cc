//! Golden StableHLO text for representative graphs (regenerate with `UPDATE_EXPECT=1`), and printer
//! determinism. That these modules compile is checked in `verify.rs` through the CPU plugin.

mod common;

use expect_test::expect_file;
use graph::print_module;

#[test]
fn golden_mlp_step() {
    let g = common::mlp_step().unwrap();
    expect_file!["golden/mlp_step.mlir"].assert_eq(&print_module(&g).unwrap());
}

#[test]
fn golden_conv_pool() {
    let g = common::conv_pool().unwrap();
    expect_file!["golden/conv_pool.mlir"].assert_eq(&print_module(&g).unwrap());
}

#[test]
fn golden_conv_pool_grad() {
    let g = common::conv_pool_grad().unwrap();
    expect_file!["golden/conv_pool_grad.mlir"].assert_eq(&print_module(&g).unwrap());
}

#[test]
fn printing_is_deterministic() {
    // Two independent builds of the same graph print the same bytes.
    let a = print_module(&common::mlp_step().unwrap()).unwrap();
    let b = print_module(&common::mlp_step().unwrap()).unwrap();
    assert_eq!(a, b);
    assert!(a.contains("tf.aliasing_output = 0 : i32"));
}

#[test]
fn golden_conv_call_grad() {
    // A oneDNN convolution custom call and its VJP: the two backward products are calls too, with the
    // window in the typed-FFI attribute dictionary.
    use graph::{ConvCall, ConvPass, DType, Graph, TensorType};
    let mut g = Graph::new("conv_call_grad");
    let x = g.parameter(TensorType::new(DType::F32, &[2, 5, 5, 3]));
    let w = g.parameter(TensorType::new(DType::F32, &[3, 3, 3, 4]));
    let call = ConvCall {
        pass: ConvPass::Forward,
        input: [2, 5, 5, 3],
        kernel: [3, 3, 3, 4],
        strides: [2, 2],
        padding: [(1, 1), (1, 1)],
    };
    let y = g.conv_call(&call, x, w).unwrap();
    let ct = g.parameter(g.ty(y).clone());
    let d = graph::vjp(&mut g, &[y], &[ct], &[x, w]).unwrap();
    g.set_outputs(&[y, d[0], d[1]]).unwrap();
    expect_file!["golden/conv_call_grad.mlir"].assert_eq(&print_module(&g).unwrap());
}
