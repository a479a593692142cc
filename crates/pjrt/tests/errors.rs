//! Bad input gives a clear error (never a crash): malformed MLIR, wrong argument count, shape and
//! dtype, bad host data, wrong read-back type, and plugins that are missing or not plugins at all.

mod common;
use common::client;
use pjrt::{Arg, Client, Device, ErrorKind, Plugin};
use std::path::Path;

const ADD: &str = r#"
func.func @main(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %0 = stablehlo.add %a, %b : tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}"#;

#[test]
fn malformed_mlir_is_a_compile_error_with_the_plugins_diagnostic() {
    let c = client();
    let err = c
        .compile(
            "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> { %0 = stablehlo.bogus_op %a }",
        )
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Plugin);
    let msg = err.to_string();
    assert!(msg.starts_with("compiling a StableHLO module:"), "{msg}");
    assert!(
        msg.contains("bogus_op"),
        "the plugin's MLIR diagnostic should name the bad op: {msg}"
    );

    let err = c.compile("this is not MLIR at all").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Plugin);

    // A type error the parser accepts but the verifier rejects.
    let err = c
        .compile(
            r#"func.func @main(%a: tensor<2xf32>, %b: tensor<3xf32>) -> tensor<2xf32> {
  %0 = stablehlo.add %a, %b : (tensor<2xf32>, tensor<3xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}"#,
        )
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Plugin, "{err}");
    // The client still works afterwards.
    assert!(c.compile(ADD).is_ok());
}

#[test]
fn wrong_argument_count() {
    let c = client();
    let exe = c.compile(ADD).unwrap();
    let a = c.buffer(&[1f32; 4], &[2, 2]).unwrap();
    let err = exe.run(&[&a]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("@main takes 2 arguments, 1 were given"),
        "{err}"
    );
    let err = exe.run(&[&a, &a, &a]).err().unwrap();
    assert!(
        err.to_string()
            .contains("@main takes 2 arguments, 3 were given"),
        "{err}"
    );
    // Same buffer twice is fine when it is only read.
    assert_eq!(
        exe.run(&[&a, &a]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![2.0; 4]
    );
}

#[test]
fn wrong_shape_even_with_the_same_byte_size() {
    let c = client();
    let exe = c.compile(ADD).unwrap();
    let good = c.buffer(&[1f32; 4], &[2, 2]).unwrap();
    // Same number of bytes as f32[2,2]: the plugin alone would accept it.
    let flat = c.buffer(&[1f32; 4], &[4]).unwrap();
    let err = exe.run(&[&good, &flat]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        "executing a compiled program: argument 1 of @main must be tensor<2x2xf32>, got f32[4]"
    );
    let big = c.buffer(&[1f32; 6], &[2, 3]).unwrap();
    assert!(exe
        .run(&[&big, &good])
        .err()
        .unwrap()
        .to_string()
        .contains("argument 0 of @main must be tensor<2x2xf32>"));
}

#[test]
fn wrong_dtype_even_with_the_same_byte_size() {
    let c = client();
    let exe = c.compile(ADD).unwrap();
    let good = c.buffer(&[1f32; 4], &[2, 2]).unwrap();
    let ints = c.buffer(&[1i32; 4], &[2, 2]).unwrap();
    let err = exe.run(&[&ints, &good]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("argument 0 of @main must be tensor<2x2xf32>, got i32[2, 2]"),
        "{err}"
    );
    // Donated arguments are checked the same way (and consumed).
    let err = exe
        .execute(vec![Arg::Keep(&good), Arg::Donate(ints)])
        .err()
        .unwrap();
    assert!(err.to_string().contains("argument 1"), "{err}");
}

#[test]
fn bad_host_data_and_read_back_type() {
    let c = client();
    let err = c.buffer(&[1f32, 2., 3.], &[2, 2]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("shape [2, 2] has 4 elements but 3 f32 values were given"),
        "{err}"
    );
    let err = c.buffer(&[1f32], &[-1]).err().unwrap();
    assert!(err.to_string().contains("negative"), "{err}");
    let err = c
        .buffer_from_bytes(pjrt::ElementType::Pred, &[0, 2], &[2])
        .err()
        .unwrap();
    assert!(err.to_string().contains("predicate byte 1 is 2"), "{err}");
    let b = c.buffer(&[1f32; 4], &[2, 2]).unwrap();
    let err = b.to_vec::<i32>().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("asked for i32 elements but the buffer holds f32"),
        "{err}"
    );
    let err = b.scalar::<f32>().err().unwrap();
    assert!(err.to_string().contains("not one element"), "{err}");
}

#[test]
fn missing_plugin_path() {
    let bogus = Path::new("/nonexistent/netspec/libbogus_pjrt_plugin.so");
    let err = pjrt::find_plugin(Device::Cpu, Some(bogus)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    assert!(
        err.to_string()
            .contains("/nonexistent/netspec/libbogus_pjrt_plugin.so"),
        "{err}"
    );
    let err = Client::open(Device::Cpu, Some(bogus)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    let err = Plugin::load(bogus).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    assert!(
        err.to_string().contains("cannot open the plugin file"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_shared_library() {
    let dir = tempdir("notlib");
    let p = dir.join("plugin.so");
    std::fs::write(&p, "not an ELF file").unwrap();
    let err = Plugin::load(&p).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginLoad);
    // Found by the header check before any dlopen.
    assert!(
        err.to_string().contains("too short for an ELF header"),
        "{err}"
    );
}

/// Builds a shared library from C source with the system C compiler.
fn build_so(name: &str, src: &str) -> std::path::PathBuf {
    let dir = tempdir(name);
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("lib{name}.so"));
    std::fs::write(&c, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = std::process::Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("netspec-pjrt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_shared_library_without_get_pjrt_api() {
    let so = build_so("nosym", "int not_a_plugin(void) { return 1; }\n");
    let err = Plugin::load(&so).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginLoad);
    // Found in the dynamic symbol table before any dlopen.
    assert!(
        err.to_string().contains("without a `GetPjrtApi` symbol"),
        "{err}"
    );
}

/// A fake plugin whose `GetPjrtApi` returns a table of `table_size` bytes with the given version and
/// every function slot null.
fn fake_plugin(name: &str, major: i32, minor: i32, table_size: &str) -> std::path::PathBuf {
    build_so(
        name,
        &format!(
            r#"#include <stddef.h>
struct version {{ size_t struct_size; void *ext; int major; int minor; }};
struct api {{ size_t struct_size; void *ext; struct version v; void *fns[200]; }};
static struct api table = {{ 0, 0, {{ 24, 0, {major}, {minor} }}, {{ 0 }} }};
const struct api *GetPjrtApi(void) {{ table.struct_size = {table_size}; return &table; }}
"#
        ),
    )
}

#[test]
fn too_old_or_wrong_major_plugins_are_refused() {
    let old = fake_plugin("old", 0, 54, "sizeof(struct api)");
    let err = Plugin::load(&old).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Version);
    assert!(
        err.to_string()
            .contains("implements PJRT C API 0.54, netspec needs 0.x with x >= 81"),
        "{err}"
    );

    let major = fake_plugin("major", 1, 0, "sizeof(struct api)");
    let err = Plugin::load(&major).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Version);
    assert!(err.to_string().contains("PJRT C API 1.0"), "{err}");

    // Right version, but a table that ends right after the version: every entry is missing.
    let short = fake_plugin("short", 0, 90, "40");
    let err = Plugin::load(&short).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Version);
    assert!(
        err.to_string()
            .contains("function table lacks PJRT_Error_Destroy"),
        "{err}"
    );

    // Full-size table with null entries.
    let null = fake_plugin("null", 0, 90, "sizeof(struct api)");
    let err = Plugin::load(&null).err().unwrap();
    assert!(
        err.to_string().contains("lacks PJRT_Error_Destroy"),
        "{err}"
    );
}
