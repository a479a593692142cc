//! The zoo (being written).
