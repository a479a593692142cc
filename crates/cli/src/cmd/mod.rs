//! One module per subcommand.
pub mod bench;
pub mod diff_traces;
pub mod emit;
pub mod export_jax;
pub mod plot;
pub mod summary;
pub mod zoo;
pub mod doctor;
pub mod train;
pub mod eval;
