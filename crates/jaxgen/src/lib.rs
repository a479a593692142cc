//! jaxgen: see ARCHITECTURE.md.
