//! A module in MLIR's generic op form has no `@main(` header to read, so Rust cannot check arguments;
//! the plugin's own checks must still give clean errors (count, byte size), not crashes.

mod common;
use common::client;
use pjrt::ErrorKind;

const GENERIC: &str = r#"
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>, sym_name = "main"}> ({
  ^bb0(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>):
    %0 = "stablehlo.add"(%a, %b) : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
    "func.return"(%0) : (tensor<2x2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
"#;

#[test]
fn generic_form_compiles_and_runs_without_a_parsed_signature() {
    let c = client();
    let exe = c.compile(GENERIC).unwrap();
    assert!(
        exe.params().is_none(),
        "no signature is read from the generic form"
    );
    let a = c.buffer(&[1f32, 2., 3., 4.], &[2, 2]).unwrap();
    let out = exe.run(&[&a, &a]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2., 4., 6., 8.]);
}

#[test]
fn the_plugin_rejects_a_wrong_count_or_byte_size_cleanly() {
    let c = client();
    let exe = c.compile(GENERIC).unwrap();
    let a = c.buffer(&[1f32, 2., 3., 4.], &[2, 2]).unwrap();
    let err = exe.run(&[&a]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Plugin, "{err}");
    eprintln!("count: {err}");
    let small = c.buffer(&[1f32, 2.], &[2]).unwrap();
    let err = exe.run(&[&a, &small]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Plugin, "{err}");
    eprintln!("size: {err}");
    // Still usable afterwards.
    assert_eq!(
        exe.run(&[&a, &a]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![2., 4., 6., 8.]
    );
}
