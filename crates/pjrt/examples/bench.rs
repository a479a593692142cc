//! Timings of the PJRT path on the CPU plugin (or `--plugin PATH`):
//! `cargo run --release -p pjrt --example bench [-- --plugin PATH] [--state-mib N] [--steps N]`
//!
//! Prints load/client/compile/execute times of the tiny module and the per-step time of a donated
//! loop (state fed back from outputs to inputs with no host copies).

use pjrt::selftest::{donated_loop, fmt_duration, tiny};
use pjrt::{Client, ClientOptions, Device, Plugin};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut plugin = None;
    let mut state_mib = 4i64;
    let mut steps = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--plugin" => plugin = Some(std::path::PathBuf::from(value()?)),
            "--state-mib" => state_mib = value()?.parse()?,
            "--steps" => steps = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let path = pjrt::find_plugin(Device::Cpu, plugin.as_deref())?;
    let t = Instant::now();
    let plugin = Plugin::load(&path)?;
    let load = t.elapsed();
    let t = Instant::now();
    let client = Client::new(&plugin, &ClientOptions::default())?;
    let create = t.elapsed();
    let (maj, min) = plugin.api_version();
    println!("plugin      {} (PJRT API {maj}.{min})", path.display());
    println!("load        {}", fmt_duration(load));
    println!("client      {}", fmt_duration(create));
    let r = tiny(&client, 2000)?;
    println!(
        "tiny        compile {}, first execute {}",
        fmt_duration(r.compile),
        fmt_duration(r.first_execute)
    );
    println!(
        "tiny        execute {} (median of {}, inputs on device)",
        fmt_duration(r.execute_median),
        r.runs
    );
    println!(
        "tiny        H2D x2 + execute + D2H x2 {} (median)",
        fmt_duration(r.round_trip_median)
    );
    let n = state_mib * (1 << 20) / 4;
    let l = donated_loop(&client, n, steps)?;
    println!(
        "donated     state {} MiB, {} steps: {} per step (compile {}), state kept in place in {}/{} steps",
        l.state_bytes >> 20,
        l.steps,
        fmt_duration(l.per_step),
        fmt_duration(l.compile),
        l.steps_in_place,
        l.steps
    );
    Ok(())
}
