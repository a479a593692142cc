//! No plugin needed: bad arguments and unsupported operand kinds are errors that name what is wrong,
//! never panics; small hand-checked values.

use graph::{DType, DotDims, Graph, TensorType};
use interp::{Options, Precision, Tensor};

fn opts() -> Options {
    Options::new(Precision::F64)
}

#[test]
fn bad_arguments_are_errors() {
    let mut g = Graph::new("m");
    let a = g.parameter(TensorType::new(DType::F32, &[2, 3]));
    let b = g.parameter(TensorType::new(DType::F32, &[3, 2]));
    let c = g.matmul(a, b).unwrap();
    g.set_outputs(&[c]).unwrap();
    let x = Tensor::from_f32(&[2, 3], &[1.0; 6]).unwrap();
    let e = interp::run(&g, std::slice::from_ref(&x), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 arguments given for 2 parameters"), "{e}");
    let e = interp::run(&g, &[x.clone(), x.clone()], &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("argument 1 is tensor<2x3xf32> but parameter 1 is tensor<3x2xf32>"),
        "{e}"
    );
    assert!(Tensor::from_f32(&[2, 2], &[1.0; 3]).is_err());
    assert!(Tensor::new(
        TensorType::new(DType::I32, &[1]),
        interp::Data::Float(vec![1.0])
    )
    .is_err());
}

#[test]
fn integer_dot_is_an_error_naming_the_node() {
    let mut g = Graph::new("m");
    let a = g.parameter(TensorType::new(DType::I32, &[2, 2]));
    let c = g.dot_general(a, a, &DotDims::matmul()).unwrap();
    g.set_outputs(&[c]).unwrap();
    let x = Tensor::from_i32(&[2, 2], &[1, 2, 3, 4]).unwrap();
    let e = interp::run(&g, &[x], &opts()).unwrap_err();
    assert_eq!(e.node, Some(c.node()));
    assert!(e.to_string().contains("floats only"), "{e}");
}

#[test]
fn f32_mode_rounds_each_op_and_f64_mode_does_not() {
    let mut g = Graph::new("m");
    let a = g.parameter(TensorType::new(DType::F32, &[1]));
    let third = g.full_like(3.0, a).unwrap();
    let q = g.div(a, third).unwrap();
    let back = g.mul(q, third).unwrap();
    g.set_outputs(&[q, back]).unwrap();
    let x = Tensor::from_f32(&[1], &[1.0]).unwrap();
    let f64s = interp::run(&g, std::slice::from_ref(&x), &Options::new(Precision::F64)).unwrap();
    assert_eq!(f64s[0].floats().unwrap()[0], 1.0 / 3.0);
    let f32s = interp::run(&g, &[x], &Options::new(Precision::F32)).unwrap();
    assert_eq!(f32s[0].floats().unwrap()[0], (1.0f32 / 3.0) as f64);
    assert_eq!(f32s[1].floats().unwrap()[0], ((1.0f32 / 3.0) * 3.0) as f64);
}

#[test]
fn integers_wrap_like_xla() {
    let mut g = Graph::new("m");
    let a = g.parameter(TensorType::new(DType::I32, &[2]));
    let s = g.add(a, a).unwrap();
    let zero = g.full_like(0.0, a).unwrap();
    let d = g.div(a, zero).unwrap();
    g.set_outputs(&[s, d]).unwrap();
    let x = Tensor::from_i32(&[2], &[i32::MAX, -7]).unwrap();
    let r = interp::run(&g, &[x], &opts()).unwrap();
    assert_eq!(r[0].ints().unwrap(), &[-2, -14]);
    assert_eq!(r[1].ints().unwrap(), &[-1, -1]);
}
