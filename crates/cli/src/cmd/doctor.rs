//! `netspec doctor`: checks the PJRT runtime end to end and prints what it found.
//!
//! Finds and loads the plugin, creates a client, compiles and runs a tiny module whose exact result is
//! known, and reports versions, devices and timings. Any failure ends the command with a non-zero exit
//! status and a message saying which step failed and how to fix it.

use anyhow::{bail, Context};
use pjrt::selftest::{donated_loop, fmt_duration, partitioned, tiny};
use pjrt::{Client, ClientOptions, Device, Plugin};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which plugin to check: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Plugin file to use instead of searching $NETSPEC_PJRT_PLUGIN / $NETSPEC_PJRT_CUDA_PLUGIN and the cache.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Also time a donated 1,000-step loop over a 4 MiB state (a training step's shape).
    #[arg(long)]
    pub bench: bool,
    /// Open this many devices (on CPU, that many virtual CPU devices), list them, and check a
    /// data-parallel step partitioned over them (2 or more; its exact result on every device).
    #[arg(long)]
    pub devices: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device;
    outln!("netspec doctor: PJRT runtime for device `{device}`");

    let path = pjrt::find_plugin(device, args.plugin.as_deref())
        .context("step 1/4: finding the plugin")?;
    row("plugin", path.display());

    if let Some(nvidia) = pjrt::cuda::nvidia_dir_for_plugin(&path) {
        // Plugin::load preloads these too; doing it here first lets us report what failed.
        let found = pjrt::cuda::nvidia_libraries(&nvidia).len();
        let failed = pjrt::cuda::preload_nvidia_libraries(&nvidia);
        row(
            "NVIDIA libs",
            format!(
                "{} of {found} preloaded from {}",
                found - failed.len(),
                nvidia.display()
            ),
        );
        for (lib, err) in &failed {
            row("  not loaded", format!("{}: {err}", lib.display()));
        }
    }
    let t = Instant::now();
    let plugin = Plugin::load(&path).context("step 2/4: loading the plugin")?;
    let load = t.elapsed();
    let (major, minor) = plugin.api_version();
    let (min_major, min_minor) = pjrt::MIN_API_VERSION;
    row(
        "PJRT C API",
        format!("{major}.{minor} (netspec needs {min_major}.{min_minor} or newer)"),
    );
    for (name, value) in plugin.attributes() {
        row(&format!("  {name}"), value);
    }
    row("load", fmt_duration(load));

    let mut opts = ClientOptions::for_device(device);
    if let (Some(n), Device::Cpu) = (args.devices, device) {
        anyhow::ensure!(n > 0, "--devices must be at least 1");
        opts.cpu_device_count = Some(n as i64);
    }
    let t = Instant::now();
    let client = Client::new(&plugin, &opts).context("step 3/4: creating a client")?;
    row("client", fmt_duration(t.elapsed()));
    row(
        "platform",
        format!("{} {}", client.platform_name(), client.platform_version()),
    );
    row(
        "conv calls",
        match client.conv_calls_status() {
            Ok(()) if pjrt::onednn::avx512_kernels() => {
                "oneDNN (f32 convolutions, dense products and Adam updates, weight gradients inside them, of single-device steps; AVX-512 kernels)".to_string()
            }
            Ok(()) => "oneDNN (f32 convolutions and Adam updates of single-device steps; dense products left to XLA, which is faster with AVX2 kernels)".to_string(),
            Err(why) => format!("off: {why}"),
        },
    );
    let devices = client.devices();
    row("devices", devices.len());
    for d in &devices {
        let desc = if d.description.is_empty() {
            String::new()
        } else {
            format!("  ({})", d.description)
        };
        row(&format!("  [{}]", d.id), format!("{}{desc}", d.kind));
    }

    if let Some(n) = args.devices {
        if devices.len() < n {
            bail!(
                "step 3/4: {n} devices asked for (--devices), the {device} plugin has {}",
                devices.len()
            );
        }
    }

    let runs = 1000;
    let r = tiny(&client, runs).context("step 4/4: compiling and running a tiny module")?;
    row("tiny module", "a @ b and sum(a @ b): exact result ok");
    row("  compile", fmt_duration(r.compile));
    row(
        "  execute",
        format!(
            "{} first, {} median of {runs} (inputs on device)",
            fmt_duration(r.first_execute),
            fmt_duration(r.execute_median)
        ),
    );
    row(
        "  round trip",
        format!(
            "{} median (2 uploads + execute + 2 downloads)",
            fmt_duration(r.round_trip_median)
        ),
    );

    match args.devices {
        Some(n) if n >= 2 => {
            let p = partitioned(&client, n, 20)
                .with_context(|| format!("checking a step partitioned over {n} devices"))?;
            row(
                "partitioned",
                format!(
                    "a data-parallel step over devices 0..{n} (batch split, state replicated and \
                     donated): exact on every device"
                ),
            );
            row("  compile", fmt_duration(p.compile));
            row(
                "  execute",
                format!("{} median of {}", fmt_duration(p.execute_median), p.runs),
            );
        }
        Some(_) => row("partitioned", "not checked: --devices 1"),
        None => {}
    }

    if args.bench {
        let l = donated_loop(&client, 1 << 20, 1000).context("benchmark: donated loop")?;
        row(
            "donated loop",
            format!(
                "{} per step over {} steps, state {} MiB (compile {})",
                fmt_duration(l.per_step),
                l.steps,
                l.state_bytes >> 20,
                fmt_duration(l.compile)
            ),
        );
        if l.steps_in_place != l.steps {
            bail!(
                "benchmark: donation did not keep the state in place ({} of {} steps)",
                l.steps_in_place,
                l.steps
            );
        }
        row(
            "  donation",
            "state stayed at the same device address in every step",
        );
    }
    outln!("ok: the PJRT {device} runtime works");
    Ok(())
}

fn row(label: &str, value: impl std::fmt::Display) {
    outln!("  {label:<14} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_plugin_fails_at_step_one_with_the_path() {
        let args = Args {
            device: Device::Cpu,
            plugin: Some("/nonexistent/pjrt-plugin.so".into()),
            bench: false,
            devices: None,
        };
        let err = format!("{:#}", run(args).unwrap_err());
        assert!(err.starts_with("step 1/4: finding the plugin"), "{err}");
        assert!(err.contains("/nonexistent/pjrt-plugin.so"), "{err}");
    }

    #[test]
    fn the_installed_cpu_plugin_passes() {
        // Needs the pinned CPU plugin (./scripts/setup.sh plugin); fails with the fix otherwise.
        let args = Args {
            device: Device::Cpu,
            plugin: None,
            bench: false,
            devices: None,
        };
        if let Err(e) = run(args) {
            panic!("netspec doctor failed: {e:#}");
        }
    }

    #[test]
    fn two_cpu_devices_pass_the_partitioned_check() {
        let args = Args {
            device: Device::Cpu,
            plugin: None,
            bench: false,
            devices: Some(2),
        };
        if let Err(e) = run(args) {
            panic!("netspec doctor --devices 2 failed: {e:#}");
        }
    }
}
