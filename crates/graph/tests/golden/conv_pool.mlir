module @conv_pool attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<2x3x8x8xf32>, %arg1: tensor<4x3x3x3xf32>) -> (tensor<2x4x2x2xf32>) {
    %0 = stablehlo.convolution(%arg0, %arg1) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {stride = [1, 1], pad = [[1, 1], [1, 1]], lhs_dilate = [1, 1], rhs_dilate = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<2x4x8x8xf32>
    %1 = stablehlo.constant dense<0.0> : tensor<2x4x8x8xf32>
    %2 = stablehlo.maximum %0, %1 : tensor<2x4x8x8xf32>
    %3 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %4 = "stablehlo.reduce_window"(%2, %3) ({
    ^bb0(%rw4a: tensor<f32>, %rw4b: tensor<f32>):
      %rw4r = stablehlo.maximum %rw4a, %rw4b : tensor<f32>
      stablehlo.return %rw4r : tensor<f32>
    }) {window_dimensions = array<i64: 1, 1, 2, 2>, window_strides = array<i64: 1, 1, 2, 2>, base_dilations = array<i64: 1, 1, 1, 1>, window_dilations = array<i64: 1, 1, 1, 1>, padding = dense<[[0, 0], [0, 0], [0, 0], [0, 0]]> : tensor<4x2xi64>} : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x4x4xf32>
    %5 = stablehlo.constant dense<0.0> : tensor<f32>
    %6 = "stablehlo.reduce_window"(%4, %5) ({
    ^bb0(%rw6a: tensor<f32>, %rw6b: tensor<f32>):
      %rw6r = stablehlo.add %rw6a, %rw6b : tensor<f32>
      stablehlo.return %rw6r : tensor<f32>
    }) {window_dimensions = array<i64: 1, 1, 2, 2>, window_strides = array<i64: 1, 1, 2, 2>, base_dilations = array<i64: 1, 1, 1, 1>, window_dilations = array<i64: 1, 1, 1, 1>, padding = dense<[[0, 0], [0, 0], [0, 0], [0, 0]]> : tensor<4x2xi64>} : (tensor<2x4x4x4xf32>, tensor<f32>) -> tensor<2x4x2x2xf32>
    %7 = stablehlo.constant dense<0.25> : tensor<2x4x2x2xf32>
    %8 = stablehlo.multiply %6, %7 : tensor<2x4x2x2xf32>
    return %8 : tensor<2x4x2x2xf32>
  }
}
