//! Compiles `csrc/onednn_conv.c` (netspec's oneDNN convolution kernels for XLA:CPU custom calls) when
//! oneDNN 2.x's C header is installed (`scripts/setup.sh onednn`: Debian's `libdnnl-dev`), and sets
//! `cfg(netspec_onednn)`. The library itself is opened at run time, so a binary built here runs (without
//! the custom calls) where it is absent. Without the header the crate builds without the kernels.
use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netspec_onednn)");
    println!("cargo::rerun-if-changed=csrc/onednn_conv.c");
    println!("cargo::rerun-if-changed=/usr/include/oneapi/dnnl/dnnl_version.h");
    println!("cargo::rerun-if-env-changed=NETSPEC_ONEDNN_INCLUDE");
    let include = std::env::var("NETSPEC_ONEDNN_INCLUDE").unwrap_or_else(|_| "/usr/include".into());
    let version = Path::new(&include).join("oneapi/dnnl/dnnl_version.h");
    let major2 = std::fs::read_to_string(&version)
        .map(|s| s.contains("#define DNNL_VERSION_MAJOR 2"))
        .unwrap_or(false);
    if !major2 {
        println!(
            "cargo::warning=oneDNN 2.x header not found at {} (scripts/setup.sh onednn installs it): building without the oneDNN convolution custom calls",
            version.display()
        );
        return;
    }
    cc::Build::new()
        .file("csrc/onednn_conv.c")
        .include(&include)
        .flag_if_supported("-std=gnu11")
        .warnings(true)
        .compile("netspec_onednn");
    println!("cargo::rustc-link-lib=dl");
    println!("cargo::rustc-cfg=netspec_onednn");
}
