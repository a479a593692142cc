//! The CUDA loading path without a GPU: NVIDIA library preloading (in dependency order found by
//! retrying) and plugin loading from a pip `--target` tree, using small libraries built here.

use pjrt::{cuda, ErrorKind, Plugin};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cc(args: &[&str], out: &Path, src: &str) {
    let c = out.with_extension("c");
    std::fs::write(&c, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(&c)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(&c).unwrap();
}

/// Whether a library is already loaded in this process (glibc's RTLD_NOLOAD = 4).
fn is_loaded(p: &Path) -> bool {
    const RTLD_NOLOAD: i32 = 4;
    // SAFETY: with RTLD_NOLOAD nothing is loaded or initialised.
    match unsafe {
        libloading::os::unix::Library::open(Some(p), RTLD_NOLOAD | libloading::os::unix::RTLD_NOW)
    } {
        Ok(lib) => {
            std::mem::forget(lib);
            true
        }
        Err(_) => false,
    }
}

/// site/nvidia/{aaa,zzz}/lib with libdep (in `aaa`, loaded first by name order) needing libbase (in
/// `zzz`) and no rpath between them, plus one file that is not a library.
fn fake_site(name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let site =
        std::env::temp_dir().join(format!("netspec-pjrt-cuda-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&site);
    let a = site.join("nvidia/aaa/lib");
    let z = site.join("nvidia/zzz/lib");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&z).unwrap();
    let base = z.join(format!("libnsbase_{name}.so.1"));
    cc(
        &[&format!("-Wl,-soname,libnsbase_{name}.so.1")],
        &base,
        "int ns_base(void) { return 41; }\n",
    );
    let dep = a.join(format!("libnsdep_{name}.so.1"));
    let link = z.join(format!("libnsbase_{name}.so"));
    std::os::unix::fs::symlink(&base, &link).unwrap();
    cc(
        &["-L", z.to_str().unwrap(), &format!("-lnsbase_{name}")],
        &dep,
        "int ns_base(void);\nint ns_dep(void) { return ns_base() + 1; }\n",
    );
    std::fs::remove_file(&link).unwrap();
    let broken = a.join("libbroken.so.1");
    std::fs::write(&broken, "not a library").unwrap();
    (site, base, dep, broken)
}

#[test]
fn nvidia_libraries_are_preloaded_in_dependency_order() {
    let (site, base, dep, broken) = fake_site("order");
    let libs = cuda::nvidia_libraries(&site.join("nvidia"));
    assert_eq!(
        libs,
        vec![broken.clone(), dep.clone(), base.clone()],
        "sorted, all `lib*.so*` files"
    );
    assert!(!is_loaded(&dep) && !is_loaded(&base));
    // libdep comes first but cannot load before libbase: the second pass loads it.
    let failed = cuda::preload_nvidia_libraries(&site.join("nvidia"));
    assert!(is_loaded(&base), "libbase preloaded");
    assert!(is_loaded(&dep), "libdep preloaded after its dependency");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, broken);
    let _ = std::fs::remove_dir_all(&site);
}

#[test]
fn loading_a_plugin_from_a_pip_tree_preloads_its_nvidia_libraries() {
    let (site, base, dep, _) = fake_site("plugin");
    // A fake "CUDA plugin" at site/jax_plugins/xla_cuda12/xla_cuda_plugin.so reporting API 0.54, so that
    // loading stops with a version error after the preload step.
    let dir = site.join("jax_plugins/xla_cuda12");
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("xla_cuda_plugin.so");
    cc(
        &[],
        &plugin,
        r#"#include <stddef.h>
struct version { size_t struct_size; void *ext; int major; int minor; };
struct api { size_t struct_size; void *ext; struct version v; void *fns[200]; };
static struct api table = { sizeof(struct api), 0, { 24, 0, 0, 54 }, { 0 } };
const struct api *GetPjrtApi(void) { return &table; }
"#,
    );
    let err = Plugin::load(&plugin).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Version, "{err}");
    assert!(
        is_loaded(&base) && is_loaded(&dep),
        "NVIDIA libraries beside the plugin were preloaded"
    );
    let _ = std::fs::remove_dir_all(&site);
}

#[test]
fn cuda_client_options_do_not_preallocate() {
    let o = pjrt::ClientOptions::for_device(pjrt::Device::Cuda);
    assert_eq!(o.platform_name.as_deref(), Some("cuda"));
    assert_eq!(o.preallocate, Some(false));
    assert_eq!(
        pjrt::ClientOptions::for_device(pjrt::Device::Cpu),
        pjrt::ClientOptions {
            cpu_device_count: Some(1),
            ..pjrt::ClientOptions::default()
        }
    );
}
