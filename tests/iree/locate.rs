//! Where the IREE tests find IREE: shared by `crates/interp/tests/iree.rs` and
//! `crates/train/tests/iree_trace.rs` (included with `#[path]`; test code, not a crate).

use std::path::PathBuf;

/// The IREE venv's python: `$NETSPEC_IREE_PYTHON`, else `<cache>/iree/iree-3.13.0/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NETSPEC_IREE_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NETSPEC_IREE_PYTHON={} does not exist",
            p.display()
        );
        return p;
    }
    let home = std::env::var_os("NETSPEC_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache")
                });
            cache.join("netspec")
        });
    let p = home.join("iree/iree-3.13.0/bin/python");
    assert!(
        p.is_file(),
        "the IREE interpreter is missing: {} not found.\nFix: run scripts/setup/iree.sh (or set \
         NETSPEC_IREE_PYTHON to a python with iree-base-compiler and iree-base-runtime 3.13.0)",
        p.display()
    );
    p
}

/// `tests/iree/run_iree.py`, which compiles and runs the jobs.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/iree/run_iree.py")
}
