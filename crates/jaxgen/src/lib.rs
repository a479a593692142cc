//! jaxgen: a NetSpec as a readable, self-contained JAX training script (`netspec export-jax`).
//!
//! The script is the independent oracle of netspec's compiled path (ARCHITECTURE.md): it is
//! written from the elaborated spec (blocks expanded by `spec`) with helpers written from the core
//! layers' doc comments (`spec::Layer`), and never sees a `graph::Graph`; its gradients come from
//! `jax.value_and_grad`. It contains:
//! * the parameter ABI table (`PARAMS`, `BUFFERS`, from `spec::params`/`spec::buffers`) and the recipe;
//! * core-layer helpers (`py/layers.py`) and `forward(c, x)`, one statement per core layer, plain
//!   Python for residual sums and parallel joins;
//! * the loss (softmax cross-entropy with label smoothing), the optimizers (`spec::Optimizer`'s math,
//!   weight decay on `decay` parameters only, bias correction with `t = step + 1`), the per-step
//!   learning-rate schedule (`train::schedule`), the data order (`train::order`, in Python ints),
//!   preprocessing (`train::augment`), loaders for IDX / CIFAR-10 / Imagenette, `spec::init`
//!   reproduced bit for bit, a safetensors reader/writer, JSONL traces in netspec's format;
//! * `--grads INIT BATCH OUT`: the oracle mode (loss, every gradient, one Adam step, the loss after it).
//!
//! [`export`] is a pure function: the same spec and recipe give the same bytes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod compare;
mod emit;

pub use compare::{compare_tensor, compare_with_referee, Comparison, RefereeComparison, Tolerance};

use spec::{NetSpec, RunConfig, SpecError};

/// Version string written into the trace header's `emitter_version`.
pub const EMITTER_VERSION: &str = concat!("netspec-jaxgen ", env!("CARGO_PKG_VERSION"));

/// The pinned JAX version the script is written and tested against.
pub const JAX_VERSION: &str = "0.10.2";

const LAYERS_PY: &str = include_str!("py/layers.py");
const RUNTIME_PY: &str = include_str!("py/runtime.py");

/// Why a script could not be produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The spec does not type-check (the error names the layer).
    Spec(SpecError),
    /// The run configuration is invalid (`RunConfig::check`: e.g. batch size 0).
    Recipe(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Spec(e) => write!(f, "invalid spec: {e}"),
            Error::Recipe(m) => write!(f, "invalid recipe: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        Error::Spec(e)
    }
}

/// The whole script for `spec` trained with `recipe` (the run configuration `netspec train` would
/// use: its `RECIPE` dict, from which the script's trace header `config` has the same keys).
pub fn export(spec: &NetSpec, recipe: &RunConfig) -> Result<String, Error> {
    let infos = spec::analyze(spec)?;
    recipe.check().map_err(Error::Recipe)?;
    if let Some(why) = emit::unsupported(recipe) {
        return Err(Error::Recipe(why));
    }
    let params = spec::params(spec)?;
    let buffers = spec::buffers(spec)?;
    let total: usize = params.iter().map(|p| p.numel()).sum();
    let text = spec::print(spec);
    let [c, h, w] = spec.input;

    let mut s = String::new();
    s.push_str("#!/usr/bin/env python3\n");
    s.push_str(&format!(
        "\"\"\"{name}: a JAX training script exported by netspec (`netspec export-jax`).\n\n\
         {total} parameters; input [B, {c}, {h}, {w}]; {classes} classes. Generated from the NetSpec below;\n\
         do not edit by hand, re-export instead. Needs jax {JAX_VERSION} and numpy.\n\n\
         Train:   python3 this.py [--data DIR] [--init INIT.safetensors] [--trace T.jsonl] [--no-shuffle] [--max-steps N]\n\
         Oracle:  python3 this.py --grads INIT.safetensors BATCH.safetensors OUT.safetensors\n\n\
         The NetSpec:\n\n{indented}\"\"\"\n\n",
        name = spec.name,
        classes = spec.num_classes,
        indented = text
            .lines()
            .map(|l| if l.is_empty() { "\n".to_string() } else { format!("    {l}\n") })
            .collect::<String>(),
    ));
    s.push_str(IMPORTS);
    s.push('\n');
    s.push_str(&format!("NAME = {}\n", emit::py_str(&spec.name)));
    s.push_str(&format!(
        "# The trace header's netspec_hash is the SHA-256 of this text.\nSPEC_TEXT = {}\n",
        emit::py_str(&text)
    ));
    s.push_str(&format!(
        "INPUT = ({c}, {h}, {w})\nNUM_CLASSES = {}\n",
        spec.num_classes
    ));
    s.push_str(&format!(
        "EMITTER_VERSION = {}\n",
        emit::py_str(EMITTER_VERSION)
    ));
    s.push_str("DEFAULT_DATA_DIRS = {\"fashion-mnist\": \"/usr/share/datasets/fashion-mnist\"}\n");
    s.push('\n');
    s.push_str(&emit::recipe_dict(recipe));
    s.push('\n');
    s.push_str(&emit::param_tables(&params, &buffers));
    s.push_str("\n\n");
    s.push_str(LAYERS_PY);
    s.push_str("\n\n# ---- the network ------------------------------------------------------------------------------\n");
    s.push_str(&emit::forward(&infos));
    s.push_str("\n\n");
    s.push_str(RUNTIME_PY);
    Ok(s)
}

const IMPORTS: &str = "\
import argparse
import functools
import gzip
import hashlib
import json
import math
import os
import struct
import time

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

# f32 everywhere; matmuls at full f32 precision (no TF32 on GPUs), as netspec computes them.
jax.config.update(\"jax_default_matmul_precision\", \"highest\")
";
