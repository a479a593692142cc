//! pjrt: see ARCHITECTURE.md.
