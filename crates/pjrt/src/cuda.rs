//! CUDA plugin support: preloading NVIDIA's libraries from the pip-installed wheels.
//!
//! `jax-cuda12-pjrt` / `jax-cuda13-pjrt` install `jax_plugins/xla_cuda1x/xla_cuda_plugin.so` into a
//! site-packages directory, and NVIDIA's library wheels put `nvidia/<component>/lib/lib*.so.N` beside it.
//! The plugin `dlopen`s CUDA libraries by soname at run time and its RPATH covers only some components
//! (not cusolver, nvrtc or nvshmem), so, like JAX's own loader, we load every NVIDIA library first with
//! `RTLD_NOW | RTLD_GLOBAL`; later `dlopen`s by soname then find the already-loaded copies.
//! `libcuda.so.1` itself comes from the system's NVIDIA driver and is not preloaded.

use std::path::{Path, PathBuf};

/// If `plugin` sits in a site-packages tree with an `nvidia/` directory (`<site>/jax_plugins/<x>/<so>`),
/// preloads the libraries found there. Failures are not fatal here: a library that cannot be loaded
/// shows up later as a clear plugin error at client creation, with the plugin's own message.
pub(crate) fn preload_for_plugin(plugin: &Path) {
    if let Some(nvidia) = nvidia_dir_for_plugin(plugin) {
        let failed = preload_nvidia_libraries(&nvidia);
        if !failed.is_empty() && std::env::var_os("NETSPEC_PJRT_VERBOSE").is_some() {
            for (lib, err) in failed {
                eprintln!("pjrt: could not preload {}: {err}", lib.display());
            }
        }
    }
}

/// The `nvidia/` directory of the pip tree a plugin was installed into
/// (`<site>/jax_plugins/<name>/<plugin>.so` -> `<site>/nvidia`), if there is one.
pub fn nvidia_dir_for_plugin(plugin: &Path) -> Option<PathBuf> {
    let site = plugin.parent()?.parent()?.parent()?;
    Some(site.join("nvidia")).filter(|d| d.is_dir())
}

/// All `nvidia/*/lib/*.so*` files, sorted for a deterministic order.
pub fn nvidia_libraries(nvidia: &Path) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    let Ok(components) = std::fs::read_dir(nvidia) else {
        return libs;
    };
    for component in components.flatten() {
        let Ok(files) = std::fs::read_dir(component.path().join("lib")) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("lib") && name.contains(".so") && f.path().is_file() {
                libs.push(f.path());
            }
        }
    }
    libs.sort();
    libs
}

/// Loads every NVIDIA library under `nvidia/` with `RTLD_NOW | RTLD_GLOBAL`, never unloading them.
/// The libraries depend on each other across components, and `RTLD_NOW` fails for a library whose
/// dependencies are not loaded yet, so we repeat passes over the failures until a pass makes no
/// progress (dependency order without hard-coding it). Returns the libraries that never loaded.
pub fn preload_nvidia_libraries(nvidia: &Path) -> Vec<(PathBuf, String)> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    let mut pending: Vec<(PathBuf, String)> = nvidia_libraries(nvidia)
        .into_iter()
        .map(|p| (p, String::new()))
        .collect();
    loop {
        let before = pending.len();
        pending.retain_mut(|(path, err)| {
            // SAFETY: loading NVIDIA's shared libraries runs their initialisers, which is what the
            // plugin would do itself when it dlopens them.
            match unsafe { Library::open(Some(&*path), RTLD_NOW | RTLD_GLOBAL) } {
                Ok(lib) => {
                    std::mem::forget(lib); // never dlclose
                    false
                }
                Err(e) => {
                    *err = e.to_string();
                    true
                }
            }
        });
        if pending.is_empty() || pending.len() == before {
            return pending;
        }
    }
}
