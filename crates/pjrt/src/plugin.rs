//! Finding and loading PJRT plugins.

use crate::api::{call, Api};
use crate::error::{Error, ErrorKind, Result};
use crate::ffi::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which kind of plugin to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }

    /// The environment variable that names this device's plugin file.
    pub fn env_var(self) -> &'static str {
        match self {
            Device::Cpu => "NETSPEC_PJRT_PLUGIN",
            Device::Cuda => "NETSPEC_PJRT_CUDA_PLUGIN",
        }
    }

    /// The command that installs this device's plugin into the cache.
    pub fn setup_command(self) -> &'static str {
        match self {
            Device::Cpu => "./scripts/setup.sh plugin",
            Device::Cuda => "./scripts/setup.sh cuda",
        }
    }

    /// Plugin files inside the cache, relative to `<cache>/pjrt/<device>/`, in order of preference.
    /// These are where `scripts/setup/plugin.sh` and `scripts/setup/cuda-plugin.sh` install them.
    fn cache_candidates(self) -> &'static [&'static str] {
        match self {
            Device::Cpu => &[
                "lammps-jax-pjrt-cpu-0.11.2/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so",
                "xla-cpu-pjrt-0.0.1/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so",
            ],
            Device::Cuda => &[
                "cuda12/jax_plugins/xla_cuda12/xla_cuda_plugin.so",
                "cuda13/jax_plugins/xla_cuda13/xla_cuda_plugin.so",
            ],
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Device, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(format!(
                "unknown device `{other}` (expected `cpu` or `cuda`)"
            )),
        }
    }
}

/// The netspec cache root: `$NETSPEC_HOME`, else `$XDG_CACHE_HOME/netspec`, else `~/.cache/netspec`.
/// (Empty variables count as unset.) `None` only when not even `$HOME` is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("NETSPEC_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("netspec")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("netspec")))
}

/// The PJRT C header the bindings are checked against, as installed by `scripts/setup/plugin.sh`.
pub fn abi_header_path() -> Option<PathBuf> {
    cache_dir().map(|d| {
        d.join("pjrt/cpu/xla-cpu-pjrt-0.0.1/xla_plugins/xla_cpu_pjrt/include/pjrt_c_api.h")
    })
}

/// Finds the plugin file for `device`. Order: `explicit` (a `--plugin` flag), then the environment
/// variable ([`Device::env_var`]), then the cache ([`cache_dir`]`/pjrt/<device>/…`). An explicit path or
/// variable that names a missing file is an error rather than a silent fallback. The error lists every
/// path tried and the command that installs the plugin.
pub fn find_plugin(device: Device, explicit: Option<&Path>) -> Result<PathBuf> {
    let ctx = format!("finding the PJRT {device} plugin");
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::new(
            ErrorKind::PluginNotFound,
            ctx,
            format!(
                "the plugin path given explicitly does not exist or is not a file: {}",
                p.display()
            ),
        ));
    }
    let var = device.env_var();
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::new(
            ErrorKind::PluginNotFound,
            ctx,
            format!(
                "${var} names {}, which does not exist or is not a file (unset it to use the cache, \
                 or run `{}`)",
                p.display(),
                device.setup_command()
            ),
        ));
    }
    let mut tried = Vec::new();
    if let Some(root) = cache_dir() {
        let dir = root.join("pjrt").join(device.name());
        for rel in device.cache_candidates() {
            let p = dir.join(rel);
            if p.is_file() {
                return Ok(p);
            }
            tried.push(p);
        }
    }
    let mut msg = format!("no plugin found. ${var} is not set");
    if tried.is_empty() {
        msg.push_str(", and no cache directory is known (set $NETSPEC_HOME or $HOME)");
    } else {
        msg.push_str("; tried:");
        for p in &tried {
            msg.push_str(&format!("\n  {}", p.display()));
        }
    }
    msg.push_str(&format!(
        "\nfix: run `{}` (or pass --plugin PATH / set ${var})",
        device.setup_command()
    ));
    Err(Error::new(ErrorKind::PluginNotFound, ctx, msg))
}

/// Checks a plugin file without loading it (what [`Plugin::load`] does before `dlopen`, and what a
/// training run does before loading any data): it exists, it is a 64-bit ELF shared library of this
/// machine's architecture whose loadable segments lie inside the file, and it defines `GetPjrtApi`.
/// The error names the file and what is wrong with it.
pub fn check_plugin(path: &Path) -> Result<()> {
    crate::elf::check_plugin_file(path).map_err(|msg| {
        Error::new(
            ErrorKind::PluginLoad,
            format!("checking PJRT plugin {}", path.display()),
            format!("{msg}; reinstall it (`./scripts/setup.sh plugin`, or `cuda`) or pass another --plugin"),
        )
    })
}

/// A loaded PJRT plugin. Cheap to clone; the library stays loaded for the rest of the process
/// (plugins must never be unloaded: XLA's static destructors and threads crash on `dlclose`).
#[derive(Clone)]
pub struct Plugin {
    api: &'static Api,
    path: PathBuf,
}

/// Plugins loaded so far, by canonical path: loading the same file twice returns the same table and
/// runs `PJRT_Plugin_Initialize` only once.
static LOADED: Mutex<Vec<(PathBuf, &'static Api)>> = Mutex::new(Vec::new());

impl Plugin {
    /// Loads a plugin: (for CUDA plugins) preloads NVIDIA's libraries, `dlopen`s the file, calls
    /// `GetPjrtApi`, checks the API version and table, and runs `PJRT_Plugin_Initialize`.
    pub fn load(path: &Path) -> Result<Plugin> {
        let ctx = || format!("loading PJRT plugin {}", path.display());
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            Error::new(
                ErrorKind::PluginNotFound,
                ctx(),
                format!("cannot open the plugin file: {e}"),
            )
        })?;
        if !canonical.is_file() {
            return Err(Error::new(
                ErrorKind::PluginNotFound,
                ctx(),
                "not a regular file",
            ));
        }
        // Hold the lock while loading so that two threads do not initialise the same plugin twice.
        let mut loaded = LOADED.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, api)) = loaded.iter().find(|(p, _)| *p == canonical) {
            return Ok(Plugin {
                api,
                path: canonical,
            });
        }
        check_plugin(&canonical)?;
        crate::cuda::preload_for_plugin(&canonical);
        let api = open(&canonical)?;
        let api: &'static Api = Box::leak(Box::new(api));
        let mut init = PJRT_Plugin_Initialize_Args::new();
        call!(api, PJRT_Plugin_Initialize, &mut init, ctx())?;
        loaded.push((canonical.clone(), api));
        Ok(Plugin {
            api,
            path: canonical,
        })
    }

    /// The plugin's PJRT C API version (major, minor).
    pub fn api_version(&self) -> (u32, u32) {
        self.api.version()
    }

    /// The plugin file (canonicalised).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's self-description (`PJRT_Plugin_Attributes`), e.g. its XLA and StableHLO versions,
    /// as (name, value) strings. Empty if the plugin does not provide them.
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut a = PJRT_Plugin_Attributes_Args::new();
        if call!(
            self.api,
            PJRT_Plugin_Attributes,
            &mut a,
            "reading plugin attributes"
        )
        .is_err()
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 0..a.num_attributes {
            // SAFETY: the plugin returns an array of num_attributes named values that it owns.
            let nv = unsafe { &*a.attributes.add(i) };
            // SAFETY: name/name_size and the member selected by `type` are valid per the C API.
            let name = unsafe { crate::api::lossy(nv.name, nv.name_size) };
            let value = unsafe { named_value_to_string(nv) };
            out.push((name, value));
        }
        out
    }

    pub(crate) fn api(&self) -> &'static Api {
        self.api
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (maj, min) = self.api_version();
        write!(f, "Plugin({}, PJRT API {maj}.{min})", self.path.display())
    }
}

/// dlopen + GetPjrtApi + table validation. The library handle is leaked on success and on failure
/// after a successful dlopen (a half-initialised plugin is not safe to unload either).
fn open(path: &Path) -> Result<Api> {
    let ctx = || format!("loading PJRT plugin {}", path.display());
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading a shared object runs its initialisers; PJRT plugins are designed to be dlopen'ed.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| Error::new(ErrorKind::PluginLoad, ctx(), format!("dlopen failed: {e}")))?;
    let lib = std::mem::ManuallyDrop::new(lib);
    // SAFETY: `GetPjrtApi` has this signature in every PJRT plugin.
    let get = unsafe { lib.get::<GetPjrtApiFn>(GET_PJRT_API) }.map_err(|e| {
        Error::new(
            ErrorKind::PluginLoad,
            ctx(),
            format!("the file has no `GetPjrtApi` symbol, so it is not a PJRT plugin ({e})"),
        )
    })?;
    // SAFETY: calling the plugin's entry point, which takes no arguments.
    let raw = unsafe { get() };
    if raw.is_null() {
        return Err(Error::new(
            ErrorKind::PluginLoad,
            ctx(),
            "GetPjrtApi returned a null table",
        ));
    }
    // SAFETY: raw is the plugin's table; the library is never unloaded.
    unsafe { Api::from_raw(raw, &path.display().to_string()) }
}

/// Renders a named value for display.
///
/// # Safety
/// `nv` must be a valid named value returned by the plugin.
#[allow(non_upper_case_globals)]
pub(crate) unsafe fn named_value_to_string(nv: &PJRT_NamedValue) -> String {
    match nv.r#type {
        PJRT_NamedValue_kString => crate::api::lossy(nv.value.string_value, nv.value_size),
        PJRT_NamedValue_kInt64 => nv.value.int64_value.to_string(),
        PJRT_NamedValue_kInt64List => {
            let p = nv.value.int64_array_value;
            let v: &[i64] = if p.is_null() || nv.value_size == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p, nv.value_size)
            };
            format!("{v:?}")
        }
        PJRT_NamedValue_kFloat => nv.value.float_value.to_string(),
        PJRT_NamedValue_kBool => nv.value.bool_value.to_string(),
        other => format!("(value of unknown type {other})"),
    }
}
