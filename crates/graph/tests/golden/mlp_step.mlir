module @mlp_step attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<6x5xf32> {tf.aliasing_output = 0 : i32}, %arg1: tensor<5xf32> {tf.aliasing_output = 1 : i32}, %arg2: tensor<5x3xf32> {tf.aliasing_output = 2 : i32}, %arg3: tensor<3xf32> {tf.aliasing_output = 3 : i32}, %arg4: tensor<4x6xf32>, %arg5: tensor<4xi32>, %arg6: tensor<f32>) -> (tensor<6x5xf32>, tensor<5xf32>, tensor<5x3xf32>, tensor<3xf32>, tensor<f32>) {
    %0 = stablehlo.dot_general %arg4, %arg0, contracting_dims = [1] x [0] : (tensor<4x6xf32>, tensor<6x5xf32>) -> tensor<4x5xf32>
    %1 = stablehlo.broadcast_in_dim %arg1, dims = [1] : (tensor<5xf32>) -> tensor<4x5xf32>
    %2 = stablehlo.add %0, %1 : tensor<4x5xf32>
    %3 = stablehlo.constant dense<0.0> : tensor<4x5xf32>
    %4 = stablehlo.maximum %2, %3 : tensor<4x5xf32>
    %5 = stablehlo.dot_general %4, %arg2, contracting_dims = [1] x [0] : (tensor<4x5xf32>, tensor<5x3xf32>) -> tensor<4x3xf32>
    %6 = stablehlo.broadcast_in_dim %arg3, dims = [1] : (tensor<3xf32>) -> tensor<4x3xf32>
    %7 = stablehlo.add %5, %6 : tensor<4x3xf32>
    %8 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %9 = stablehlo.reduce(%7 init: %8) applies stablehlo.maximum across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32>
    %10 = stablehlo.broadcast_in_dim %9, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32>
    %11 = stablehlo.subtract %7, %10 : tensor<4x3xf32>
    %12 = stablehlo.exponential %11 : tensor<4x3xf32>
    %13 = stablehlo.constant dense<0.0> : tensor<f32>
    %14 = stablehlo.reduce(%12 init: %13) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32>
    %15 = stablehlo.log %14 : tensor<4xf32>
    %16 = stablehlo.broadcast_in_dim %15, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32>
    %17 = stablehlo.subtract %11, %16 : tensor<4x3xf32>
    %18 = stablehlo.iota dim = 1 : tensor<4x3xi32>
    %19 = stablehlo.broadcast_in_dim %arg5, dims = [0] : (tensor<4xi32>) -> tensor<4x3xi32>
    %20 = stablehlo.compare EQ, %18, %19, SIGNED : (tensor<4x3xi32>, tensor<4x3xi32>) -> tensor<4x3xi1>
    %21 = stablehlo.convert %20 : (tensor<4x3xi1>) -> tensor<4x3xf32>
    %22 = stablehlo.multiply %21, %17 : tensor<4x3xf32>
    %23 = stablehlo.reduce(%22 init: %13) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<f32>
    %24 = stablehlo.constant dense<-0.25> : tensor<f32>
    %25 = stablehlo.multiply %23, %24 : tensor<f32>
    %26 = stablehlo.constant dense<-0.25> : tensor<4x3xf32>
    %27 = stablehlo.multiply %26, %21 : tensor<4x3xf32>
    %28 = stablehlo.negate %27 : tensor<4x3xf32>
    %29 = stablehlo.reduce(%28 init: %13) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32>
    %30 = stablehlo.divide %29, %14 : tensor<4xf32>
    %31 = stablehlo.broadcast_in_dim %30, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32>
    %32 = stablehlo.multiply %31, %12 : tensor<4x3xf32>
    %33 = stablehlo.add %27, %32 : tensor<4x3xf32>
    %34 = stablehlo.negate %33 : tensor<4x3xf32>
    %35 = stablehlo.reduce(%34 init: %13) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32>
    %36 = stablehlo.broadcast_in_dim %35, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32>
    %37 = stablehlo.compare EQ, %7, %10, FLOAT : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xi1>
    %38 = stablehlo.convert %37 : (tensor<4x3xi1>) -> tensor<4x3xf32>
    %39 = stablehlo.reduce(%38 init: %13) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32>
    %40 = stablehlo.broadcast_in_dim %39, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32>
    %41 = stablehlo.divide %36, %40 : tensor<4x3xf32>
    %42 = stablehlo.multiply %38, %41 : tensor<4x3xf32>
    %43 = stablehlo.add %33, %42 : tensor<4x3xf32>
    %44 = stablehlo.reduce(%43 init: %13) applies stablehlo.add across dimensions = [0] : (tensor<4x3xf32>, tensor<f32>) -> tensor<3xf32>
    %45 = stablehlo.dot_general %43, %arg2, contracting_dims = [1] x [1] : (tensor<4x3xf32>, tensor<5x3xf32>) -> tensor<4x5xf32>
    %46 = stablehlo.dot_general %4, %43, contracting_dims = [0] x [0] : (tensor<4x5xf32>, tensor<4x3xf32>) -> tensor<5x3xf32>
    %47 = stablehlo.compare GT, %2, %3, FLOAT : (tensor<4x5xf32>, tensor<4x5xf32>) -> tensor<4x5xi1>
    %48 = stablehlo.compare EQ, %2, %3, FLOAT : (tensor<4x5xf32>, tensor<4x5xf32>) -> tensor<4x5xi1>
    %49 = stablehlo.convert %47 : (tensor<4x5xi1>) -> tensor<4x5xf32>
    %50 = stablehlo.convert %48 : (tensor<4x5xi1>) -> tensor<4x5xf32>
    %51 = stablehlo.constant dense<0.5> : tensor<4x5xf32>
    %52 = stablehlo.multiply %50, %51 : tensor<4x5xf32>
    %53 = stablehlo.add %49, %52 : tensor<4x5xf32>
    %54 = stablehlo.multiply %45, %53 : tensor<4x5xf32>
    %55 = stablehlo.reduce(%54 init: %13) applies stablehlo.add across dimensions = [0] : (tensor<4x5xf32>, tensor<f32>) -> tensor<5xf32>
    %56 = stablehlo.dot_general %arg4, %54, contracting_dims = [0] x [0] : (tensor<4x6xf32>, tensor<4x5xf32>) -> tensor<6x5xf32>
    %57 = stablehlo.broadcast_in_dim %arg6, dims = [] : (tensor<f32>) -> tensor<6x5xf32>
    %58 = stablehlo.multiply %57, %56 : tensor<6x5xf32>
    %59 = stablehlo.subtract %arg0, %58 : tensor<6x5xf32>
    %60 = stablehlo.broadcast_in_dim %arg6, dims = [] : (tensor<f32>) -> tensor<5xf32>
    %61 = stablehlo.multiply %60, %55 : tensor<5xf32>
    %62 = stablehlo.subtract %arg1, %61 : tensor<5xf32>
    %63 = stablehlo.broadcast_in_dim %arg6, dims = [] : (tensor<f32>) -> tensor<5x3xf32>
    %64 = stablehlo.multiply %63, %46 : tensor<5x3xf32>
    %65 = stablehlo.subtract %arg2, %64 : tensor<5x3xf32>
    %66 = stablehlo.broadcast_in_dim %arg6, dims = [] : (tensor<f32>) -> tensor<3xf32>
    %67 = stablehlo.multiply %66, %44 : tensor<3xf32>
    %68 = stablehlo.subtract %arg3, %67 : tensor<3xf32>
    return %59, %62, %65, %68, %25 : tensor<6x5xf32>, tensor<5xf32>, tensor<5x3xf32>, tensor<3xf32>, tensor<f32>
  }
}
