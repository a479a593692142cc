//! Writes Fashion-MNIST (or any IDX pair in a directory) as a PNG image folder, `OUT/train/<class>/…` and
//! `OUT/test/<class>/…`, classes named `0-t-shirt` … `9-ankle-boot` (so they sort in label order):
//!
//! ```sh
//! cargo run --release -p train --example idx_to_folder -- OUT [N_TRAIN] [N_TEST] [IDX_DIR]
//! ```
//!
//! All 70,000 images by default (about 30 s); the folder-vs-IDX comparisons read it.

use std::path::PathBuf;

use train::data::write::{dataset_as_folder, FASHION_MNIST_CLASSES};
use train::data::{self, DatasetKind, Split};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1)
            .expect("usage: idx_to_folder OUT [N_TRAIN] [N_TEST] [IDX_DIR]"),
    );
    let src = args
        .get(4)
        .map(PathBuf::from)
        .or_else(|| DatasetKind::FashionMnist.default_dir())
        .expect("an IDX directory");
    for (split, name, n) in [
        (Split::Train, "train", args.get(2)),
        (Split::Test, "test", args.get(3)),
    ] {
        let ds =
            data::load(&src, DatasetKind::FashionMnist, split).unwrap_or_else(|e| panic!("{e}"));
        let n = n.map_or(ds.len(), |s| {
            s.parse::<usize>().expect("a count").min(ds.len())
        });
        let t = std::time::Instant::now();
        dataset_as_folder(&ds, 0..n, &out.join(name), &FASHION_MNIST_CLASSES)
            .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{n} {name} images -> {} in {:.1} s",
            out.join(name).display(),
            t.elapsed().as_secs_f64()
        );
    }
}
