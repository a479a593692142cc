//! The prelude: block definitions written in the spec language (`prelude.ns`), visible to every
//! spec. The zoo's composite blocks live here as text, not as Rust.

use std::sync::OnceLock;

use crate::ast::BlockDef;

/// The prelude's source text.
pub const SOURCE: &str = include_str!("prelude.ns");

/// The prelude's blocks, parsed once. (A prelude that does not parse is a bug of this crate; the
/// tests parse it.)
pub fn blocks() -> &'static [BlockDef] {
    static BLOCKS: OnceLock<Vec<BlockDef>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        crate::text::parse_library(SOURCE, &[], true)
            .unwrap_or_else(|e| panic!("crates/spec/src/prelude.ns:{e}"))
    })
}
