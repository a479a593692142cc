//! `netspec bench-data DATA`: decode + augment throughput of the batch producers over an image folder or
//! array files (no model, no device), per thread and in all, with the memory the stream held against its
//! stated bound. One JSON line per thread count on stdout, a readable line each on stderr.
//! `--generate N` first writes N synthetic 320-pixel JPEGs (an Imagenette-like folder) at DATA.
//! `bench/data_compare.py` puts the figures beside PyTorch's DataLoader on the same files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use train::augment::{Augment, Preprocess, IMAGENET_MEAN, IMAGENET_STD};
use train::bench_data::{self, Options};
use train::data::write::{ImageFormat, Synthetic};
use train::data::{arrays, folder, Source};

/// Time the batch producers on an image folder or array files (decode + augment, no model).
#[derive(clap::Args)]
pub struct Args {
    /// An image folder (ROOT/<class>/… or ROOT/train/<class>/…) or array files (see README).
    pub data: PathBuf,
    /// Producer thread counts to measure, in this order (e.g. 1,2).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Timed batches per thread count.
    #[arg(long, default_value_t = 32)]
    pub batches: usize,
    /// Untimed batches before them.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// The output's side (the network input is SIZE×SIZE).
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Channels the images become (1 or 3).
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// none, flip, crop-flip or random-resized-crop.
    #[arg(long, default_value = "random-resized-crop")]
    pub augment: String,
    /// Resize the shorter side to this before cropping.
    #[arg(long)]
    pub resize: Option<usize>,
    /// Time the evaluation preprocessing (resize, centre crop) instead of the training one.
    #[arg(long)]
    pub eval: bool,
    /// Skip ImageNet mean/std normalisation (values x/255).
    #[arg(long)]
    pub no_normalize: bool,
    /// Leave bad files out (and count them) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// First write this many synthetic images at DATA (which must not exist yet).
    #[arg(long)]
    pub generate: Option<usize>,
    /// With --generate: jpeg, png or bmp.
    #[arg(long, default_value = "jpeg")]
    pub format: String,
    /// With --generate: the images' shorter side.
    #[arg(long, default_value_t = 320)]
    pub short_side: usize,
    /// With --generate: per-pixel noise amplitude (more noise: more detail, larger JPEGs).
    #[arg(long, default_value_t = 5)]
    pub noise: u8,
    /// With --generate: classes (folders).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Seed of the data order and augmentation (and of --generate).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.threads.is_empty() && args.threads.iter().all(|&t| t > 0),
        "--threads: counts of at least 1"
    );
    let augment: Augment = args.augment.parse().map_err(anyhow::Error::msg)?;
    if let Some(n) = args.generate {
        anyhow::ensure!(
            !args.data.exists(),
            "--generate: {} exists; give a new directory",
            args.data.display()
        );
        let format = match args.format.as_str() {
            "jpeg" | "jpg" => ImageFormat::Jpeg { quality: 90 },
            "png" => ImageFormat::Png,
            "bmp" => ImageFormat::Bmp,
            f => bail!("--format {f}: expected jpeg, png or bmp"),
        };
        let t = Instant::now();
        let synth = Synthetic {
            count: n,
            classes: args.classes,
            short_side: args.short_side,
            format,
            seed: args.seed,
            noise: args.noise,
            ..Synthetic::default()
        };
        let bytes = synth.write(&args.data.join("train"))?;
        note!(
            "wrote {n} {} images ({:.1} MB, {:.1} KB each) under {} in {:.1} s",
            format.extension(),
            bytes as f64 / 1e6,
            bytes as f64 / n.max(1) as f64 / 1e3,
            args.data.join("train").display(),
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let source: Source = if arrays::is_array_path(&args.data) {
        arrays::open(&args.data, args.channels)?.train.into()
    } else {
        let opts = folder::ScanOptions {
            channels: args.channels,
            skip_bad: args.skip_bad,
            ..folder::ScanOptions::default()
        };
        let splits = folder::scan(&args.data, &opts)
            .with_context(|| format!("reading the image folder {}", args.data.display()))?;
        let f = splits.train;
        note!(
            "scanned {} images in {} classes ({:.1} MB, largest file {:.1} KB, largest image {:.2} Mpx) in {:.2} s{}",
            f.len(),
            f.classes().len(),
            f.total_bytes() as f64 / 1e6,
            f.max_file_bytes() as f64 / 1e3,
            f.max_pixels() as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            if f.skipped().is_empty() { String::new() } else { format!("; skipped {} bad files", f.skipped().len()) }
        );
        f.into()
    };
    let mut pre = Preprocess::for_images(augment, args.size, args.size, args.resize, !args.eval);
    if !args.no_normalize {
        anyhow::ensure!(
            args.channels == 3,
            "ImageNet normalisation needs 3 channels: pass --no-normalize"
        );
        pre = pre.with_mean_std(&IMAGENET_MEAN, &IMAGENET_STD);
    }
    source.check(&pre)?;
    note!(
        "{}; {} preprocessing, {augment}, output {}x{}",
        source.describe(),
        if args.eval { "evaluation" } else { "training" },
        args.size,
        args.size
    );
    for &threads in &args.threads {
        let report = bench_data::run(
            &source,
            &pre,
            &Options {
                batch_size: args.batch_size,
                batches: args.batches,
                warmup: args.warmup,
                threads,
                seed: args.seed,
            },
        )?;
        note!("{}", report.line());
        let mut j = report.to_json();
        j["augment"] = augment.name().into();
        j["size"] = args.size.into();
        j["eval"] = args.eval.into();
        outln!("{j}");
    }
    Ok(())
}
