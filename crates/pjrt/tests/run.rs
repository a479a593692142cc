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

#[test]
fn f64_elementwise() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%x: tensor<3xf64>, %y: tensor<3xf64>) -> tensor<3xf64> {
  %0 = stablehlo.multiply %x, %y : tensor<3xf64>
  %1 = stablehlo.subtract %0, %x : tensor<3xf64>
  return %1 : tensor<3xf64>
}"#,
        )
        .unwrap();
    let x = c.buffer(&[0.5f64, -2.0, 1e300], &[3]).unwrap();
    let y = c.buffer(&[4.0f64, 0.25, 0.5], &[3]).unwrap();
    let out = exe.run(&[&x, &y]).unwrap();
    assert_eq!(out[0].element_type(), pjrt::ElementType::F64);
    // x*y - x, exact in f64 (1e300 is out of f32 range, so this really is f64 arithmetic).
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![1.5, 1.5, -0.5e300]);
}

#[test]
fn i32_integer_ops() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%a: tensor<2x2xi32>, %b: tensor<i32>) -> (tensor<2x2xi32>, tensor<2xi32>) {
  %bb = stablehlo.broadcast_in_dim %b, dims = [] : (tensor<i32>) -> tensor<2x2xi32>
  %q = stablehlo.divide %a, %bb : tensor<2x2xi32>
  %r = stablehlo.remainder %a, %bb : tensor<2x2xi32>
  %init = stablehlo.constant dense<-2147483648> : tensor<i32>
  %m = stablehlo.reduce(%r init: %init) applies stablehlo.maximum across dimensions = [1] : (tensor<2x2xi32>, tensor<i32>) -> tensor<2xi32>
  return %q, %m : tensor<2x2xi32>, tensor<2xi32>
}"#,
        )
        .unwrap();
    let a = c.buffer(&[7i32, -7, 2147483647, 9], &[2, 2]).unwrap();
    let b = c.scalar(2i32).unwrap();
    let out = exe.run(&[&a, &b]).unwrap();
    // Integer division truncates toward zero; remainder takes the dividend's sign.
    assert_eq!(out[0].to_vec::<i32>().unwrap(), vec![3, -3, 1073741823, 4]);
    assert_eq!(out[1].to_vec::<i32>().unwrap(), vec![1, 1]);
}

#[test]
fn bf16_round_trip_and_convert() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%x: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xf32>) {
  %0 = stablehlo.add %x, %x : tensor<4xbf16>
  %1 = stablehlo.convert %x : (tensor<4xbf16>) -> tensor<4xf32>
  return %0, %1 : tensor<4xbf16>, tensor<4xf32>
}"#,
        )
        .unwrap();
    // All exactly representable in bf16 (8 significant bits).
    let vals = [1.0f32, -0.15625, 256.0, 3.0e38];
    let x: Vec<bf16> = vals.iter().map(|&v| bf16::from_f32(v)).collect();
    let xb = c.buffer(&x, &[4]).unwrap();
    assert_eq!(
        xb.to_vec::<bf16>().unwrap(),
        x,
        "host -> device -> host round trip"
    );
    let out = exe.run(&[&xb]).unwrap();
    let doubled: Vec<f32> = out[0]
        .to_vec::<bf16>()
        .unwrap()
        .iter()
        .map(|v| v.to_f32())
        .collect();
    assert_eq!(doubled[..3], [2.0, -0.3125, 512.0]);
    assert!(
        doubled[3].is_infinite(),
        "3e38 + 3e38 overflows bf16 to +inf, got {}",
        doubled[3]
    );
    assert_eq!(
        out[1].to_vec::<f32>().unwrap(),
        vals.iter()
            .map(|&v| bf16::from_f32(v).to_f32())
            .collect::<Vec<_>>()
    );
}

#[test]
fn u8_and_i1_round_trips() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%x: tensor<2x3xui8>, %p: tensor<3xi1>) -> (tensor<2x3xui8>, tensor<3xi1>, tensor<2x3xi1>) {
  %one = stablehlo.constant dense<1> : tensor<2x3xui8>
  %s = stablehlo.add %x, %one : tensor<2x3xui8>
  %n = stablehlo.not %p : tensor<3xi1>
  %t = stablehlo.constant dense<128> : tensor<2x3xui8>
  %g = stablehlo.compare GE, %x, %t, UNSIGNED : (tensor<2x3xui8>, tensor<2x3xui8>) -> tensor<2x3xi1>
  return %s, %n, %g : tensor<2x3xui8>, tensor<3xi1>, tensor<2x3xi1>
}"#,
        )
        .unwrap();
    let x = c.buffer(&[0u8, 1, 127, 128, 254, 255], &[2, 3]).unwrap();
    let p = c.buffer(&[true, false, true], &[3]).unwrap();
    assert_eq!(x.to_vec::<u8>().unwrap(), vec![0, 1, 127, 128, 254, 255]);
    assert_eq!(p.to_vec::<bool>().unwrap(), vec![true, false, true]);
    assert_eq!(p.element_type(), pjrt::ElementType::Pred);
    let out = exe.run(&[&x, &p]).unwrap();
    // ui8 addition wraps modulo 256.
    assert_eq!(out[0].to_vec::<u8>().unwrap(), vec![1, 2, 128, 129, 255, 0]);
    assert_eq!(out[1].to_vec::<bool>().unwrap(), vec![false, true, false]);
    assert_eq!(
        out[2].to_vec::<bool>().unwrap(),
        vec![false, false, false, true, true, true]
    );
}

#[test]
fn i64_u32_u64_round_trips() {
    let c = client();
    let i = [i64::MIN, -1, 0, i64::MAX];
    assert_eq!(c.buffer(&i, &[2, 2]).unwrap().to_vec::<i64>().unwrap(), i);
    let u = [0u32, 1, u32::MAX];
    assert_eq!(c.buffer(&u, &[3]).unwrap().to_vec::<u32>().unwrap(), u);
    let w = [u64::MAX, 7];
    let b = c.buffer(&w, &[2, 1]).unwrap();
    assert_eq!(b.dims(), vec![2, 1]);
    assert_eq!(b.element_type(), pjrt::ElementType::U64);
    assert_eq!(b.to_vec::<u64>().unwrap(), w);
    // Raw bytes in and out.
    let bytes: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let rb = c
        .buffer_from_bytes(pjrt::ElementType::F32, &bytes, &[2])
        .unwrap();
    assert_eq!(rb.to_vec::<f32>().unwrap(), vec![1.5, -2.0]);
    assert_eq!(rb.to_bytes().unwrap(), bytes);
}

#[test]
fn empty_arrays_round_trip() {
    let c = client();
    let b = c.buffer::<f32>(&[], &[0, 3]).unwrap();
    assert_eq!(b.dims(), vec![0, 3]);
    assert_eq!(b.to_vec::<f32>().unwrap(), Vec::<f32>::new());
}

#[test]
fn client_reports_platform_and_devices() {
    let c = client();
    assert_eq!(c.platform_name(), "cpu");
    let devices = c.devices();
    assert!(!devices.is_empty());
    assert_eq!(devices[0].kind.to_lowercase(), "cpu", "{devices:?}");
    let (major, minor) = c.plugin().api_version();
    assert_eq!(major, 0);
    assert!(minor >= pjrt::MIN_API_VERSION.1);
}

#[test]
fn executable_reports_params_and_outputs() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func public @main(%w: tensor<2x3xf32> {tf.aliasing_output = 0 : i32}, %x: tensor<3xi32> {jax.arg_info = "x, y"}) -> (tensor<2x3xf32>, tensor<i32>) {
  %c = stablehlo.constant dense<0> : tensor<i32>
  %s = stablehlo.reduce(%x init: %c) applies stablehlo.add across dimensions = [0] : (tensor<3xi32>, tensor<i32>) -> tensor<i32>
  return %w, %s : tensor<2x3xf32>, tensor<i32>
}"#,
        )
        .unwrap();
    let params = exe.params().expect("signature parsed");
    assert_eq!(params.len(), 2);
    assert_eq!(
        params[0].ty.as_ref().unwrap().to_string(),
        "tensor<2x3xf32>"
    );
    assert_eq!(params[0].aliasing_output, Some(0));
    assert_eq!(params[1].ty.as_ref().unwrap().to_string(), "tensor<3xi32>");
    assert_eq!(params[1].aliasing_output, None);
    let outs = exe
        .output_shapes()
        .expect("the CPU plugin reports output shapes");
    assert_eq!(outs.len(), 2);
    assert_eq!(
        (outs[0].element_type, outs[0].dims.clone()),
        (pjrt::ElementType::F32, vec![2, 3])
    );
    assert_eq!(
        (outs[1].element_type, outs[1].dims.clone()),
        (pjrt::ElementType::S32, vec![])
    );
}

#[test]
fn compile_options_with_xla_overrides() {
    let c = client();
    let src = r#"
func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = stablehlo.exponential %x : tensor<2xf32>
  return %0 : tensor<2xf32>
}"#;
    let opts = pjrt::CompileOptions {
        xla_options: vec![(
            "xla_cpu_enable_fast_math".into(),
            pjrt::OptionValue::Bool(false),
        )],
        ..Default::default()
    };
    let exe = c
        .compile_with(src, &opts)
        .expect("a known XLA option compiles");
    let x = c.buffer(&[0f32, 1.0], &[2]).unwrap();
    let y = exe.run(&[&x]).unwrap()[0].to_vec::<f32>().unwrap();
    assert_eq!(y[0], 1.0);
    assert!((y[1] - std::f32::consts::E).abs() < 1e-6);
}

#[test]
fn client_and_executable_are_shared_across_threads() {
    let c = client();
    let exe = std::sync::Arc::new(
        c.compile(
            r#"
func.func @main(%x: tensor<4xi32>) -> tensor<4xi32> {
  %0 = stablehlo.multiply %x, %x : tensor<4xi32>
  return %0 : tensor<4xi32>
}"#,
        )
        .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let exe = exe.clone();
            std::thread::spawn(move || {
                let c = client();
                for k in 0..20 {
                    let v = t * 100 + k;
                    let x = c.buffer(&[v, v + 1, -v, 0], &[4]).unwrap();
                    let y = exe.run(&[&x]).unwrap().remove(0);
                    assert_eq!(
                        y.to_vec::<i32>().unwrap(),
                        vec![v * v, (v + 1) * (v + 1), v * v, 0]
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn selftests_pass() {
    let c = client();
    let r = pjrt::selftest::tiny(c, 10).unwrap();
    assert_eq!(r.runs, 10);
    let l = pjrt::selftest::donated_loop(c, 1024, 40).unwrap();
    assert_eq!(
        l.steps_in_place, 40,
        "donation keeps the loop state in place"
    );
    assert_eq!(l.state_bytes, 4096);
}

#[test]
fn outputs_come_back_row_major_after_a_transpose() {
    // Whatever layout XLA picks inside, host copies are dense row-major in the output's logical shape.
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%x: tensor<2x3xi32>) -> tensor<3x2xi32> {
  %0 = stablehlo.transpose %x, dims = [1, 0] : (tensor<2x3xi32>) -> tensor<3x2xi32>
  return %0 : tensor<3x2xi32>
}"#,
        )
        .unwrap();
    let x = c.buffer(&[1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let y = exe.run(&[&x]).unwrap().remove(0);
    assert_eq!(y.dims(), vec![3, 2]);
    assert_eq!(y.to_vec::<i32>().unwrap(), vec![1, 4, 2, 5, 3, 6]);
}
