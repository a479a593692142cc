//! Summary table (being written).
