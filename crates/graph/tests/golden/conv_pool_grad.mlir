module @conv_pool_grad attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<2x2x9x9xf64>, %arg1: tensor<4x2x3x3xf64>) -> (tensor<f64>, tensor<2x2x9x9xf64>, tensor<4x2x3x3xf64>) {
    %0 = stablehlo.convolution(%arg0, %arg1) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {stride = [2, 2], pad = [[1, 1], [1, 1]], lhs_dilate = [1, 1], rhs_dilate = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<2x2x9x9xf64>, tensor<4x2x3x3xf64>) -> tensor<2x4x5x5xf64>
    %1 = stablehlo.constant dense<0.0> : tensor<2x4x5x5xf64>
    %2 = stablehlo.maximum %0, %1 : tensor<2x4x5x5xf64>
    %3 = stablehlo.constant dense<0xFFF0000000000000> : tensor<f64>
    %4 = "stablehlo.reduce_window"(%2, %3) ({
    ^bb0(%rw4a: tensor<f64>, %rw4b: tensor<f64>):
      %rw4r = stablehlo.maximum %rw4a, %rw4b : tensor<f64>
      stablehlo.return %rw4r : tensor<f64>
    }) {window_dimensions = array<i64: 1, 1, 3, 3>, window_strides = array<i64: 1, 1, 2, 2>, base_dilations = array<i64: 1, 1, 1, 1>, window_dilations = array<i64: 1, 1, 1, 1>, padding = dense<[[0, 0], [0, 0], [1, 1], [1, 1]]> : tensor<4x2xi64>} : (tensor<2x4x5x5xf64>, tensor<f64>) -> tensor<2x4x3x3xf64>
    %5 = stablehlo.constant dense<0.0> : tensor<f64>
    %6 = stablehlo.reduce(%4 init: %5) applies stablehlo.add across dimensions = [0, 1, 2, 3] : (tensor<2x4x3x3xf64>, tensor<f64>) -> tensor<f64>
    %7 = stablehlo.constant dense<1.0> : tensor<2x4x3x3xf64>
    %8 = "stablehlo.select_and_scatter"(%2, %7, %5) ({
    ^bb0(%sel8a: tensor<f64>, %sel8b: tensor<f64>):
      %sel8r = stablehlo.compare GE, %sel8a, %sel8b, FLOAT : (tensor<f64>, tensor<f64>) -> tensor<i1>
      stablehlo.return %sel8r : tensor<i1>
    }, {
    ^bb0(%sct8a: tensor<f64>, %sct8b: tensor<f64>):
      %sct8r = stablehlo.add %sct8a, %sct8b : tensor<f64>
      stablehlo.return %sct8r : tensor<f64>
    }) {window_dimensions = array<i64: 1, 1, 3, 3>, window_strides = array<i64: 1, 1, 2, 2>, padding = dense<[[0, 0], [0, 0], [1, 1], [1, 1]]> : tensor<4x2xi64>} : (tensor<2x4x5x5xf64>, tensor<2x4x3x3xf64>, tensor<f64>) -> tensor<2x4x5x5xf64>
    %9 = stablehlo.compare GT, %0, %1, FLOAT : (tensor<2x4x5x5xf64>, tensor<2x4x5x5xf64>) -> tensor<2x4x5x5xi1>
    %10 = stablehlo.compare EQ, %0, %1, FLOAT : (tensor<2x4x5x5xf64>, tensor<2x4x5x5xf64>) -> tensor<2x4x5x5xi1>
    %11 = stablehlo.convert %9 : (tensor<2x4x5x5xi1>) -> tensor<2x4x5x5xf64>
    %12 = stablehlo.convert %10 : (tensor<2x4x5x5xi1>) -> tensor<2x4x5x5xf64>
    %13 = stablehlo.constant dense<0.5> : tensor<2x4x5x5xf64>
    %14 = stablehlo.multiply %12, %13 : tensor<2x4x5x5xf64>
    %15 = stablehlo.add %11, %14 : tensor<2x4x5x5xf64>
    %16 = stablehlo.multiply %8, %15 : tensor<2x4x5x5xf64>
    %17 = stablehlo.reverse %arg1, dims = [2, 3] : tensor<4x2x3x3xf64>
    %18 = stablehlo.convolution(%16, %17) dim_numbers = [b, f, 0, 1]x[i, o, 0, 1]->[b, f, 0, 1], window = {stride = [1, 1], pad = [[1, 1], [1, 1]], lhs_dilate = [2, 2], rhs_dilate = [1, 1]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<2x4x5x5xf64>, tensor<4x2x3x3xf64>) -> tensor<2x2x9x9xf64>
    %19 = stablehlo.convolution(%arg0, %16) dim_numbers = [f, b, 0, 1]x[i, o, 0, 1]->[f, b, 0, 1], window = {stride = [1, 1], pad = [[1, 1], [1, 1]], lhs_dilate = [1, 1], rhs_dilate = [2, 2]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<2x2x9x9xf64>, tensor<2x4x5x5xf64>) -> tensor<4x2x3x3xf64>
    return %6, %18, %19 : tensor<f64>, tensor<2x2x9x9xf64>, tensor<4x2x3x3xf64>
  }
}
