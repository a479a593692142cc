//! Tiny modules in every supported element type give exact expected values.

mod common;
use common::client;
use half::bf16;

#[test]
fn f32_matmul_and_reduce() {
    let c = client();
    let exe = c
        .compile(
            r#"
module @tiny {
  func.func public @main(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> (tensor<2x2xf32>, tensor<f32>) {
    %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %1 = stablehlo.reduce(%0 init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<2x2xf32>, tensor<f32>) -> tensor<f32>
    return %0, %1 : tensor<2x2xf32>, tensor<f32>
  }
}"#,
        )
        .expect("compile");
    assert_eq!(exe.num_outputs(), 2);
    let a = c.buffer(&[0f32, 1., 2., 3., 4., 5.], &[2, 3]).unwrap();
    let b = c.buffer(&[0f32, 1., 2., 3., 4., 5.], &[3, 2]).unwrap();
    let out = exe.run(&[&a, &b]).expect("run");
    assert_eq!(out.len(), 2);
    // [[0,1,2],[3,4,5]] @ [[0,1],[2,3],[4,5]] = [[10,13],[28,40]]; sum = 91
    assert_eq!(out[0].dims(), vec![2, 2]);
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![10., 13., 28., 40.]);
    assert_eq!(out[1].dims(), Vec::<i64>::new());
    assert_eq!(out[1].scalar::<f32>().unwrap(), 91.);
    // Inputs are kept: still readable and unchanged.
    assert_eq!(a.to_vec::<f32>().unwrap(), vec![0., 1., 2., 3., 4., 5.]);
}
