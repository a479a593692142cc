//! ABI check: every struct in `pjrt::ffi` against `pjrt_c_api.h` from the pinned `xla-cpu-pjrt` wheel.
//!
//! A C program generated from the Rust declarations prints, as the C compiler sees them, each struct's
//! `sizeof` and `<name>_STRUCT_SIZE` and each field's offset and size; the test compares them with Rust's
//! `size_of`/`offset_of`. A misspelt field fails to compile; a missing, extra or mistyped field shifts an
//! offset or size; a missing trailing field changes `STRUCT_SIZE`. Enum values we hard-code are checked too.

use pjrt::ffi::{self, StructLayout};
use pjrt::ElementType;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

fn header() -> PathBuf {
    let h = pjrt::abi_header_path().expect("no cache directory ($HOME unset?)");
    assert!(
        h.is_file(),
        "the PJRT C header is missing at {}\n(install it with ./scripts/setup.sh plugin, or scripts/setup/plugin.sh)",
        h.display()
    );
    h
}

/// `PJRT_Buffer_Type` enumerator names for the element types netspec hard-codes.
const BUFFER_TYPES: &[(&str, ElementType)] = &[
    ("PJRT_Buffer_Type_PRED", ElementType::Pred),
    ("PJRT_Buffer_Type_S8", ElementType::S8),
    ("PJRT_Buffer_Type_S16", ElementType::S16),
    ("PJRT_Buffer_Type_S32", ElementType::S32),
    ("PJRT_Buffer_Type_S64", ElementType::S64),
    ("PJRT_Buffer_Type_U8", ElementType::U8),
    ("PJRT_Buffer_Type_U16", ElementType::U16),
    ("PJRT_Buffer_Type_U32", ElementType::U32),
    ("PJRT_Buffer_Type_U64", ElementType::U64),
    ("PJRT_Buffer_Type_F16", ElementType::F16),
    ("PJRT_Buffer_Type_F32", ElementType::F32),
    ("PJRT_Buffer_Type_F64", ElementType::F64),
    ("PJRT_Buffer_Type_BF16", ElementType::Bf16),
    ("PJRT_Buffer_Type_C64", ElementType::C64),
    ("PJRT_Buffer_Type_C128", ElementType::C128),
];

/// Other enumerators and macros the bindings hard-code, with the Rust value.
fn constants() -> Vec<(&'static str, i64)> {
    let mut v: Vec<(&str, i64)> = vec![
        (
            "PJRT_NamedValue_kString",
            ffi::PJRT_NamedValue_kString.into(),
        ),
        ("PJRT_NamedValue_kInt64", ffi::PJRT_NamedValue_kInt64.into()),
        (
            "PJRT_NamedValue_kInt64List",
            ffi::PJRT_NamedValue_kInt64List.into(),
        ),
        ("PJRT_NamedValue_kFloat", ffi::PJRT_NamedValue_kFloat.into()),
        ("PJRT_NamedValue_kBool", ffi::PJRT_NamedValue_kBool.into()),
        (
            "PJRT_HostBufferSemantics_kImmutableOnlyDuringCall",
            ffi::PJRT_HostBufferSemantics_kImmutableOnlyDuringCall.into(),
        ),
        ("PJRT_Error_Code_OK", ffi::PJRT_Error_Code_OK.into()),
        (
            "PJRT_Error_Code_UNKNOWN",
            ffi::PJRT_Error_Code_UNKNOWN.into(),
        ),
        (
            "PJRT_Error_Code_INVALID_ARGUMENT",
            ffi::PJRT_Error_Code_INVALID_ARGUMENT.into(),
        ),
        (
            "PJRT_Error_Code_DEADLINE_EXCEEDED",
            ffi::PJRT_Error_Code_DEADLINE_EXCEEDED.into(),
        ),
        (
            "PJRT_Error_Code_NOT_FOUND",
            ffi::PJRT_Error_Code_NOT_FOUND.into(),
        ),
        (
            "PJRT_Error_Code_ALREADY_EXISTS",
            ffi::PJRT_Error_Code_ALREADY_EXISTS.into(),
        ),
        (
            "PJRT_Error_Code_INTERNAL",
            ffi::PJRT_Error_Code_INTERNAL.into(),
        ),
        (
            "PJRT_Error_Code_UNAVAILABLE",
            ffi::PJRT_Error_Code_UNAVAILABLE.into(),
        ),
        ("PJRT_API_MAJOR", ffi::BINDINGS_API_VERSION.0.into()),
        ("PJRT_API_MINOR", ffi::BINDINGS_API_VERSION.1.into()),
    ];
    v.extend(
        BUFFER_TYPES
            .iter()
            .map(|(n, t)| (*n, i64::from(t.to_raw()))),
    );
    v
}

fn c_program(layouts: &[StructLayout]) -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"pjrt_c_api.h\"\nint main(void) {\n",
    );
    for s in layouts {
        let n = s.name;
        writeln!(
            c,
            "  printf(\"S {n} %zu %zu\\n\", sizeof({n}), (size_t){n}_STRUCT_SIZE);"
        )
        .unwrap();
        for f in &s.fields {
            let fld = f.name;
            writeln!(
                c,
                "  printf(\"F {n}.{fld} %zu %zu\\n\", offsetof({n}, {fld}), sizeof((({n}*)0)->{fld}));"
            )
            .unwrap();
        }
    }
    for (name, _) in constants() {
        writeln!(c, "  printf(\"C {name} %lld\\n\", (long long)({name}));").unwrap();
    }
    c.push_str("  return 0;\n}\n");
    c
}

#[test]
fn rust_bindings_match_the_pinned_header() {
    let header = header();
    let layouts = ffi::layouts();
    let dir = std::env::temp_dir().join(format!("netspec-pjrt-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, c_program(&layouts)).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-std=c11")
        .arg("-I")
        .arg(header.parent().unwrap())
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "the generated ABI program does not compile against {} (a field name in ffi.rs that the header \
         lacks?):\n{}",
        header.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the ABI program");
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let c: BTreeMap<String, Vec<i64>> = text
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace().skip(1);
            let key = it.next().unwrap().to_string();
            (key, it.map(|v| v.parse().unwrap()).collect())
        })
        .collect();

    let mut errors = Vec::new();
    let mut checked = 0;
    for s in &layouts {
        let want = &c[s.name];
        let got = [s.size as i64, s.struct_size as i64];
        if want[..] != got {
            errors.push(format!(
                "{}: C sizeof/STRUCT_SIZE = {}/{}, Rust size_of/STRUCT_SIZE = {}/{}",
                s.name, want[0], want[1], got[0], got[1]
            ));
        }
        for f in &s.fields {
            let key = format!("{}.{}", s.name, f.name);
            let want = &c[&key];
            let got = [f.offset as i64, f.size as i64];
            if want[..] != got {
                errors.push(format!(
                    "{key}: C offset/size = {}/{}, Rust = {}/{}",
                    want[0], want[1], got[0], got[1]
                ));
            }
            checked += 1;
        }
    }
    for (name, value) in constants() {
        if c[name] != [value] {
            errors.push(format!("{name}: C = {:?}, Rust = {value}", c[name]));
        }
    }
    assert!(
        errors.is_empty(),
        "ABI mismatches with {}:\n{}",
        header.display(),
        errors.join("\n")
    );
    // Guard against the check silently covering nothing.
    assert!(
        layouts.len() >= 30 && checked >= 250,
        "only {} structs / {checked} fields checked",
        layouts.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn struct_size_constants_exclude_tail_padding() {
    // PJRT_Api_Version ends in two ints: STRUCT_SIZE 24, no padding. PJRT_Buffer_IsDeleted_Args ends in a
    // bool at offset 24: STRUCT_SIZE 25 while size_of is 32 — the value PJRT expects is 25.
    assert_eq!(ffi::PJRT_Api_Version::STRUCT_SIZE, 24);
    assert_eq!(ffi::PJRT_Buffer_IsDeleted_Args::STRUCT_SIZE, 25);
    assert_eq!(std::mem::size_of::<ffi::PJRT_Buffer_IsDeleted_Args>(), 32);
}
