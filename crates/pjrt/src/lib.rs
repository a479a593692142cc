//! `pjrt`: run StableHLO through the PJRT C API of an XLA plugin (the only crate with `unsafe`).
//!
//! ```no_run
//! let client = pjrt::Client::cpu()?;
//! let exe = client.compile(r#"
//!   func.func @main(%a: tensor<2xf32>, %b: tensor<2xf32>) -> tensor<2xf32> {
//!     %0 = stablehlo.add %a, %b : tensor<2xf32>
//!     return %0 : tensor<2xf32>
//!   }"#)?;
//! let a = client.buffer(&[1.0f32, 2.0], &[2])?;
//! let b = client.buffer(&[10.0f32, 20.0], &[2])?;
//! let out = exe.run(&[&a, &b])?;
//! assert_eq!(out[0].to_vec::<f32>()?, [11.0, 22.0]);
//! # Ok::<(), pjrt::Error>(())
//! ```
//!
//! Layers:
//! - `ffi`: hand-written `repr(C)` structs for the subset of `pjrt_c_api.h` we call, checked against the
//!   header by `tests/abi.rs`;
//! - `api`: the loaded function table (entries read only below the plugin's table size), error and event
//!   handling;
//! - the safe API: [`Plugin`], [`Client`], [`Buffer`], [`Executable`], [`find_plugin`].
//!
//! Rules the safe API enforces: plugins are never unloaded; every struct's `struct_size` is the header's
//! `*_STRUCT_SIZE`; compile options are always passed (empty ones abort the plugin); every event is
//! awaited and destroyed; buffers, executables and clients are destroyed on drop, and a client lives
//! until its last buffer and executable are gone.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod buffer;
mod client;
pub mod cuda;
mod elf;
mod error;
mod executable;
#[doc(hidden)]
pub mod ffi;
mod kernels;
pub mod kv;
pub mod onednn;
mod plugin;
mod proto;
pub mod selftest;
mod signature;

pub use buffer::{Buffer, Element, ElementType};
pub use client::{Client, ClientOptions, DeviceInfo};
pub use error::{Error, ErrorKind, Result};
pub use executable::{Arg, Executable, OutputShape};
pub use kv::{KeyValueStore, KvError, KvStore, MemoryStore};
pub use plugin::{abi_header_path, cache_dir, check_plugin, find_plugin, Device, Plugin};
pub use proto::{CompileOptions, OptionValue};
pub use signature::{parse_main_signature, Param, Sharding, Signature, TensorType};

/// The oldest PJRT C API a plugin may implement: major version 0 (the only one so far), minor 81, the
/// header the bindings are written against and tested with. Older plugins may lack table entries or
/// struct fields we rely on, so they are refused with a clear error instead of half-working.
pub const MIN_API_VERSION: (u32, u32) = ffi::BINDINGS_API_VERSION;
