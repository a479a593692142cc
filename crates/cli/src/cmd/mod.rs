//! One module per subcommand.
pub mod diff_traces;
pub mod plot;
