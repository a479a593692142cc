//! nn: see ARCHITECTURE.md.
