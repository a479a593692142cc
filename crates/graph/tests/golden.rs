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
