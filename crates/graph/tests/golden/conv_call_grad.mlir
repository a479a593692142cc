module @conv_call_grad attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<2x5x5x3xf32>, %arg1: tensor<3x3x3x4xf32>, %arg2: tensor<2x3x3x4xf32>) -> (tensor<2x3x3x4xf32>, tensor<2x5x5x3xf32>, tensor<3x3x3x4xf32>) {
    %0 = stablehlo.custom_call @netspec_conv2d_forward(%arg0, %arg1) {api_version = 4 : i32, backend_config = {pad_h_hi = 1 : i64, pad_h_lo = 1 : i64, pad_w_hi = 1 : i64, pad_w_lo = 1 : i64, stride_h = 2 : i64, stride_w = 2 : i64}} : (tensor<2x5x5x3xf32>, tensor<3x3x3x4xf32>) -> tensor<2x3x3x4xf32>
    %1 = stablehlo.custom_call @netspec_conv2d_backward_data(%arg2, %arg1) {api_version = 4 : i32, backend_config = {pad_h_hi = 1 : i64, pad_h_lo = 1 : i64, pad_w_hi = 1 : i64, pad_w_lo = 1 : i64, stride_h = 2 : i64, stride_w = 2 : i64}} : (tensor<2x3x3x4xf32>, tensor<3x3x3x4xf32>) -> tensor<2x5x5x3xf32>
    %2 = stablehlo.custom_call @netspec_conv2d_backward_weights(%arg0, %arg2) {api_version = 4 : i32, backend_config = {pad_h_hi = 1 : i64, pad_h_lo = 1 : i64, pad_w_hi = 1 : i64, pad_w_lo = 1 : i64, stride_h = 2 : i64, stride_w = 2 : i64}} : (tensor<2x5x5x3xf32>, tensor<2x3x3x4xf32>) -> tensor<3x3x3x4xf32>
    return %0, %1, %2 : tensor<2x3x3x4xf32>, tensor<2x5x5x3xf32>, tensor<3x3x3x4xf32>
  }
}
