//! spec: see ARCHITECTURE.md.
