//! One module per subcommand.
pub mod bench;
pub mod bench_data;
pub mod config;
pub mod diff_traces;
pub mod doctor;
pub mod emit;
pub mod eval;
pub mod export;
pub mod export_jax;
pub mod export_onnx;
pub mod layers;
pub mod memory;
pub mod plot;
pub mod predict;
pub mod summary;
pub mod train;
pub mod zoo;
