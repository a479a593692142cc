//! Plugin discovery order and messages. Environment variables are process-wide, so everything that
//! changes them runs in this one test, in its own test binary.

use pjrt::{find_plugin, Client, Device, ErrorKind};
use std::path::{Path, PathBuf};

fn touch(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"").unwrap();
}

fn clear_env() {
    for k in [
        "NETSPEC_HOME",
        "XDG_CACHE_HOME",
        "NETSPEC_PJRT_PLUGIN",
        "NETSPEC_PJRT_CUDA_PLUGIN",
    ] {
        std::env::remove_var(k);
    }
}

#[test]
fn discovery_order_and_errors() {
    let t: PathBuf =
        std::env::temp_dir().join(format!("netspec-pjrt-discovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&t);
    let home = t.join("home");
    clear_env();
    std::env::set_var("NETSPEC_HOME", &home);

    // Nothing installed: the error lists both cache paths and the fix.
    let err = find_plugin(Device::Cpu, None).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    let msg = err.to_string();
    let lammps = home
        .join("pjrt/cpu/lammps-jax-pjrt-cpu-0.11.2/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so");
    let alt = home.join("pjrt/cpu/xla-cpu-pjrt-0.0.1/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so");
    assert!(msg.contains(&lammps.display().to_string()), "{msg}");
    assert!(msg.contains(&alt.display().to_string()), "{msg}");
    assert!(msg.contains("$NETSPEC_PJRT_PLUGIN is not set"), "{msg}");
    assert!(
        msg.contains("fix: run `./scripts/setup.sh plugin`"),
        "{msg}"
    );
    // The same error surfaces from Client::cpu.
    assert_eq!(
        Client::cpu().err().unwrap().kind(),
        ErrorKind::PluginNotFound
    );

    // The alternate is used when it is the only one; the pinned default wins when both exist.
    touch(&alt);
    assert_eq!(find_plugin(Device::Cpu, None).unwrap(), alt);
    touch(&lammps);
    assert_eq!(find_plugin(Device::Cpu, None).unwrap(), lammps);

    // The environment variable beats the cache; a wrong one is an error, not a silent fallback.
    let env_plugin = t.join("env/plugin.so");
    touch(&env_plugin);
    std::env::set_var("NETSPEC_PJRT_PLUGIN", &env_plugin);
    assert_eq!(find_plugin(Device::Cpu, None).unwrap(), env_plugin);
    std::env::set_var("NETSPEC_PJRT_PLUGIN", t.join("env/missing.so"));
    let msg = find_plugin(Device::Cpu, None).err().unwrap().to_string();
    assert!(
        msg.contains("$NETSPEC_PJRT_PLUGIN names") && msg.contains("missing.so"),
        "{msg}"
    );

    // An explicit path beats everything, and must exist.
    let explicit = t.join("explicit.so");
    touch(&explicit);
    assert_eq!(find_plugin(Device::Cpu, Some(&explicit)).unwrap(), explicit);
    let err = find_plugin(Device::Cpu, Some(&t.join("nope.so")))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    assert!(err.to_string().contains("nope.so"), "{err}");

    // Cache root fallbacks: $XDG_CACHE_HOME/netspec, then ~/.cache/netspec.
    clear_env();
    std::env::set_var("XDG_CACHE_HOME", t.join("xdg"));
    assert_eq!(pjrt::cache_dir().unwrap(), t.join("xdg/netspec"));
    std::env::remove_var("XDG_CACHE_HOME");
    let real_home = std::env::var_os("HOME");
    std::env::set_var("HOME", t.join("h"));
    assert_eq!(pjrt::cache_dir().unwrap(), t.join("h/.cache/netspec"));
    match real_home {
        Some(h) => std::env::set_var("HOME", h),
        None => std::env::remove_var("HOME"),
    }

    // CUDA: its own variable and cache paths, and its own fix command.
    clear_env();
    std::env::set_var("NETSPEC_HOME", &home);
    let msg = find_plugin(Device::Cuda, None).err().unwrap().to_string();
    assert!(
        msg.contains("$NETSPEC_PJRT_CUDA_PLUGIN is not set"),
        "{msg}"
    );
    assert!(
        msg.contains("pjrt/cuda/cuda12/jax_plugins/xla_cuda12/xla_cuda_plugin.so"),
        "{msg}"
    );
    assert!(msg.contains("fix: run `./scripts/setup.sh cuda`"), "{msg}");
    let cuda13 = home.join("pjrt/cuda/cuda13/jax_plugins/xla_cuda13/xla_cuda_plugin.so");
    touch(&cuda13);
    assert_eq!(find_plugin(Device::Cuda, None).unwrap(), cuda13);
    // The CPU variable does not affect CUDA discovery.
    std::env::set_var("NETSPEC_PJRT_PLUGIN", &env_plugin);
    assert_eq!(find_plugin(Device::Cuda, None).unwrap(), cuda13);

    clear_env();
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn device_names_parse() {
    assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    assert_eq!("CUDA".parse::<Device>().unwrap(), Device::Cuda);
    assert!("tpu"
        .parse::<Device>()
        .unwrap_err()
        .contains("unknown device `tpu`"));
}
