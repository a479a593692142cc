//! Graph → StableHLO text. Pure and deterministic: the same graph gives the same bytes. Only nodes the
//! outputs depend on are printed (dead-code elimination); values are numbered in node order.

use std::fmt::Write;

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{self, OpText, Prim};

/// Printing options (the default prints everything the graph says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Print the `tf.aliasing_output` argument attributes (IREE 3.13 mishandles them: it writes an
    /// aliased result over its argument while a later dispatch still reads the argument).
    pub aliasing: bool,
}

impl Default for PrintOptions {
    fn default() -> PrintOptions {
        PrintOptions { aliasing: true }
    }
}

/// Prints `g` as a module with one public `@main` function taking the parameters (with their argument
/// attributes) and returning the outputs. Fails if an aliasing attribute names a missing output or one of
/// another type, or if two arguments alias the same output.
pub fn print_module(g: &Graph) -> Result<String> {
    print_module_with(g, &PrintOptions::default())
}

/// [`print_module`] with options (without aliasing attributes, aliases are not checked either).
pub fn print_module_with(g: &Graph, opts: &PrintOptions) -> Result<String> {
    if opts.aliasing {
        check_aliases(g)?;
    }
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.';
    if !g
        .name
        .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || !g.name.chars().all(bare)
    {
        bail!(
            "print_module",
            "module name `{}` is not an MLIR bare identifier ([A-Za-z_][A-Za-z0-9_$.]*)",
            g.name
        );
    }
    let live = g.live_nodes();
    let mut names: Vec<String> = vec![String::new(); g.nodes.len()];
    let mut counter = 0usize;
    let mut body = String::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        match &node.prim {
            Prim::Parameter { index, .. } => {
                names[i] = format!("%arg{index}");
                continue;
            }
            Prim::CustomVjp(_) => continue, // results alias the composite's outputs (see `name`)
            _ => {}
        }
        let id = counter;
        counter += 1;
        names[i] = format!("%{id}");
        let res = if node.outs.len() == 1 {
            names[i].clone()
        } else {
            format!("%{id}:{}", node.outs.len())
        };
        let args: Vec<String> = node.inputs.iter().map(|&v| name(g, &names, v)).collect();
        let ins = node.inputs.iter().map(|&v| g.ty(v)).collect();
        let text = prims::print(
            &node.prim,
            &OpText {
                id,
                res,
                args,
                ins,
                outs: &node.outs,
            },
        );
        for line in text.lines() {
            let _ = writeln!(body, "    {line}");
        }
    }
    let args: Vec<String> = g
        .params
        .iter()
        .zip(&g.arg_attrs)
        .enumerate()
        .map(|(i, (&p, attrs))| {
            let mut a = Vec::new();
            if let (Some(o), true) = (attrs.aliasing_output, opts.aliasing) {
                a.push(format!("tf.aliasing_output = {o} : i32"));
            }
            if let Some(s) = &attrs.sharding {
                a.push(format!(
                    "mhlo.sharding = \"{}\"",
                    s.replace('\\', "\\\\").replace('"', "\\\"")
                ));
            }
            let attrs = if a.is_empty() {
                String::new()
            } else {
                format!(" {{{}}}", a.join(", "))
            };
            format!("%arg{i}: {}{attrs}", g.ty(p))
        })
        .collect();
    let out_tys: Vec<String> = g.outputs.iter().map(|&v| g.ty(v).to_string()).collect();
    let out_names: Vec<String> = g.outputs.iter().map(|&v| name(g, &names, v)).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "module @{} attributes {{mhlo.num_partitions = {} : i32, mhlo.num_replicas = {} : i32}} {{",
        g.name, g.num_partitions, g.num_replicas
    );
    let _ = writeln!(
        s,
        "  func.func public @main({}) -> ({}) {{",
        args.join(", "),
        out_tys.join(", ")
    );
    s.push_str(&body);
    if g.outputs.is_empty() {
        let _ = writeln!(s, "    return");
    } else {
        let _ = writeln!(
            s,
            "    return {} : {}",
            out_names.join(", "),
            out_tys.join(", ")
        );
    }
    s.push_str("  }\n}\n");
    Ok(s)
}

/// The SSA name of a value; results of a custom-VJP node are the composite's outputs.
fn name(g: &Graph, names: &[String], v: Value) -> String {
    let node = &g.nodes[v.node()];
    match &node.prim {
        Prim::CustomVjp(c) => name(g, names, node.inputs[c.n_in + v.result()]),
        _ if node.outs.len() > 1 => format!("{}#{}", names[v.node()], v.result()),
        _ => names[v.node()].clone(),
    }
}

fn check_aliases(g: &Graph) -> Result<()> {
    let mut used = vec![false; g.outputs.len()];
    for (i, a) in g.arg_attrs.iter().enumerate() {
        if let Some(o) = a.aliasing_output {
            let p = g.ty(g.params[i]);
            match g.outputs.get(o) {
                None => bail!(
                    "print_module",
                    "argument {i} aliases output {o}, but there are {} outputs",
                    g.outputs.len()
                ),
                Some(&v) if g.ty(v) != p => bail!(
                    "print_module",
                    "argument {i} of type {p} aliases output {o} of type {}",
                    g.ty(v)
                ),
                Some(_) if used[o] => {
                    bail!("print_module", "output {o} is aliased by two arguments")
                }
                Some(_) => used[o] = true,
            }
        }
    }
    Ok(())
}

impl Graph {
    /// Total floating-point operations of the live graph (see `prims::flops` for the counting rules).
    pub fn flops(&self) -> u64 {
        let live = self.live_nodes();
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| live[*i])
            .map(|(_, n)| {
                let ins: Vec<_> = n.inputs.iter().map(|&v| self.ty(v)).collect();
                prims::flops(&n.prim, &ins, &n.outs)
            })
            .sum()
    }
}
