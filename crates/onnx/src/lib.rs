//! onnx: netspec's predict program as an ONNX model (`netspec export-onnx`).
//!
//! The model is a translation of the predict program's [`graph::Graph`] (`nn::predict_graph`), one
//! primitive at a time ([`convert`], an exhaustive `match` over [`Prim`]), so what ONNX runtimes
//! compute is exactly the computation netspec compiles: eval-mode BN with the running statistics,
//! no dropout, channels-last inside as the lowering chose. Parameters and BN statistics are
//! initializers named by their netspec names; the graph input is `images` `[B, C, H, W]` (NCHW, f32)
//! and the output `logits` `[B, classes]`. Opset [`OPSET`] of the default domain, IR version
//! [`IR_VERSION`]; messages are `prost` messages ([`proto`]).
//!
//! Batch: [`Batch::Fixed`] exports the graph at that batch size. [`Batch::Dynamic`] builds the graph
//! at batch sizes 2, 3 and 5, checks that they have the same structure, and writes every
//! batch-dependent size (reshape targets, broadcast shapes, slice bounds) as `a·B + c` computed from
//! `B = Shape(images)[0]` at run time; the input's and output's first dim is the symbol `batch`.
//!
//! Primitives that only backward or training graphs use (`select_and_scatter`,
//! `rng_bit_generator`, interior padding, dilated inputs, batch groups) are errors that name the
//! primitive, never silently dropped.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod proto;

use std::collections::BTreeMap;

use graph::{BinaryOp, CmpDir, DType, Graph, Literal, Prim, ReduceOp, UnaryOp, Value};
use nn::{Slot, SlotKind};
use proto::{
    attribute_type, data_type, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use spec::NetSpec;

/// The ONNX operator set the models use (default domain).
pub const OPSET: i64 = 18;
/// The ONNX IR version of the models (IR 8 goes with opset 18).
pub const IR_VERSION: i64 = 8;
/// The graph input's name.
pub const INPUT: &str = "images";
/// The graph output's name.
pub const OUTPUT: &str = "logits";

/// The batch size of an exported model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    Fixed(usize),
    /// Any batch size (the first dim of input and output is the symbol `batch`).
    Dynamic,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Nn(#[from] nn::Error),
    /// A primitive (or an attribute of one) that has no ONNX translation here.
    #[error("ONNX export: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The ONNX model of `spec`'s predict program with `weights` (every parameter and BN statistic by
/// its netspec name, f32, row-major in the netspec shape).
pub fn export(
    spec: &NetSpec,
    weights: &BTreeMap<String, Vec<f32>>,
    batch: Batch,
) -> Result<ModelProto> {
    let batches: Vec<usize> = match batch {
        Batch::Fixed(b) => vec![b],
        Batch::Dynamic => vec![2, 3, 5],
    };
    let mut graphs = Vec::new();
    let mut slots = Vec::new();
    for &b in &batches {
        let (g, s) = nn::predict_graph(spec, b)?;
        graphs.push(g);
        slots = s;
    }
    check_same_structure(&graphs)?;
    let mut cx = Cx {
        graphs: &graphs,
        batches: batches.iter().map(|&b| b as i64).collect(),
        nodes: Vec::new(),
        inits: Vec::new(),
        names: vec![Vec::new(); graphs[0].nodes().len()],
        counter: 0,
        batch_tensor: None,
    };
    let g = &graphs[0];
    let live = live_nodes(g);
    let mut inputs = Vec::new();
    for (i, node) in g.nodes().iter().enumerate() {
        if !live[i] {
            continue;
        }
        let outs = match &node.prim {
            Prim::Parameter { index, .. } => {
                let slot = &slots[*index];
                match &slot.kind {
                    SlotKind::Images => {
                        inputs.push(value_info(INPUT, &cx.dims_at(i, 0)?, DType::F32));
                        vec![INPUT.to_string()]
                    }
                    SlotKind::Param(n) | SlotKind::Buffer(n) => {
                        vec![cx.weight(n, slot, weights)?]
                    }
                    other => {
                        return Err(Error::Invalid(format!(
                            "predict program input {index} is {other:?}"
                        )))
                    }
                }
            }
            prim => convert(&mut cx, i, prim)?,
        };
        cx.names[i] = outs;
    }
    let out_v = g.outputs()[0];
    let out_name = cx.name(out_v);
    cx.nodes.push(NodeProto {
        input: vec![out_name],
        output: vec![OUTPUT.to_string()],
        op_type: "Identity".into(),
        ..Default::default()
    });
    let output = value_info(OUTPUT, &cx.dims(out_v)?, g.dtype(out_v));
    let graph = GraphProto {
        node: cx.nodes,
        name: spec.name.clone(),
        initializer: cx.inits,
        doc_string: format!("netspec predict program of {}", spec.name),
        input: inputs,
        output: vec![output],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "netspec".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: spec::print(spec),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: "netspec_model".into(),
            value: spec.name.clone(),
        }],
    })
}

/// The nodes the output depends on. A custom-VJP node's results alias its composite's outputs, so
/// only those inputs are followed (its residuals serve only the backward pass), and a reduction's
/// init operand is not (the ONNX op implies it); parameters are always kept.
fn live_nodes(g: &Graph) -> Vec<bool> {
    let mut live = vec![false; g.nodes().len()];
    for &v in g.outputs() {
        live[v.node()] = true;
    }
    for i in (0..live.len()).rev() {
        if !live[i] {
            continue;
        }
        let node = &g.nodes()[i];
        let follow: &[Value] = match &node.prim {
            Prim::CustomVjp(c) => &node.inputs[c.n_inputs()..c.n_inputs() + c.n_outputs()],
            // The init operand is the reduction's identity, implied by the ONNX op.
            Prim::Reduce { .. } | Prim::ReduceWindow { .. } => &node.inputs[..1],
            _ => &node.inputs,
        };
        for v in follow {
            live[v.node()] = true;
        }
    }
    for &p in g.parameters() {
        if matches!(&g.nodes()[p.node()].prim, Prim::Parameter { .. }) && !live[p.node()] {
            // Unused parameters (none in practice) still become inputs or initializers.
            live[p.node()] = true;
        }
    }
    live
}

/// The model's protobuf bytes.
pub fn to_bytes(m: &ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(m)
}

fn check_same_structure(graphs: &[Graph]) -> Result<()> {
    let g0 = &graphs[0];
    for g in &graphs[1..] {
        let same = g.nodes().len() == g0.nodes().len()
            && g.nodes().iter().zip(g0.nodes()).all(|(a, b)| {
                a.prim.name() == b.prim.name()
                    && a.inputs == b.inputs
                    && a.outs.len() == b.outs.len()
            })
            && g.outputs() == g0.outputs();
        if !same {
            return Err(Error::Unsupported(
                "the predict graph's structure depends on the batch size: export with --batch N"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// A size as a function of the batch: `a·B + c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dim {
    a: i64,
    c: i64,
}

impl Dim {
    fn fixed(c: i64) -> Dim {
        Dim { a: 0, c }
    }
    fn is_fixed(self) -> bool {
        self.a == 0
    }
}

/// Conversion state: the graphs (one per batch size), the ONNX nodes and initializers so far, and
/// the ONNX name of every graph value.
struct Cx<'g> {
    graphs: &'g [Graph],
    batches: Vec<i64>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    names: Vec<Vec<String>>,
    counter: usize,
    /// `[B]` as an int64 tensor, made on first use.
    batch_tensor: Option<String>,
}

impl Cx<'_> {
    fn g(&self) -> &Graph {
        &self.graphs[0]
    }

    fn fresh(&mut self) -> String {
        self.counter += 1;
        format!("t{}", self.counter)
    }

    /// The ONNX name of a graph value (custom-VJP results are the composite's outputs).
    fn name(&self, v: Value) -> String {
        let node = &self.g().nodes()[v.node()];
        match &node.prim {
            Prim::CustomVjp(c) => self.name(node.inputs[c.n_inputs() + v.result()]),
            _ => self.names[v.node()][v.result()].clone(),
        }
    }

    /// Appends a one-output node and returns its output's name.
    fn op(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh();
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.to_string(),
            attribute: attrs,
            domain: String::new(),
        });
        out
    }

    fn init(&mut self, dims: &[i64], dt: i32, raw: Vec<u8>) -> String {
        let name = self.fresh();
        self.inits.push(TensorProto {
            dims: dims.to_vec(),
            data_type: dt,
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// A 1-D int64 constant.
    fn ints(&mut self, v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(&[v.len() as i64], data_type::INT64, raw)
    }

    /// A parameter or BN statistic as an initializer named by its netspec name.
    fn weight(
        &mut self,
        name: &str,
        slot: &Slot,
        weights: &BTreeMap<String, Vec<f32>>,
    ) -> Result<String> {
        let v = weights
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("no weights for {name}")))?;
        let n: usize = slot.dims.iter().product();
        if v.len() != n {
            return Err(Error::Invalid(format!(
                "{name}: {} values for shape {:?}",
                v.len(),
                slot.dims
            )));
        }
        self.inits.push(TensorProto {
            dims: slot.dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        });
        Ok(name.to_string())
    }

    /// `f` (integers read off node `i` of a graph) as functions of the batch; an error when they
    /// are not affine in it.
    fn affine(&self, i: usize, f: impl Fn(&Graph, usize) -> Vec<i64>) -> Result<Vec<Dim>> {
        let vals: Vec<Vec<i64>> = self.graphs.iter().map(|g| f(g, i)).collect();
        if vals.len() == 1 {
            return Ok(vals[0].iter().map(|&c| Dim::fixed(c)).collect());
        }
        let b = &self.batches;
        (0..vals[0].len())
            .map(|k| {
                let (d0, d1, d2) = (vals[0][k], vals[1][k], vals[2][k]);
                let a = (d1 - d0) / (b[1] - b[0]);
                let c = d0 - a * b[0];
                if a * b[1] + c != d1 || a * b[2] + c != d2 {
                    return Err(Error::Unsupported(format!(
                        "a size of {} is not affine in the batch ({d0}, {d1}, {d2} at batches {b:?})",
                        self.g().nodes()[i].prim.name()
                    )));
                }
                Ok(Dim { a, c })
            })
            .collect()
    }

    /// The dims of a value as functions of the batch.
    fn dims(&self, v: Value) -> Result<Vec<Dim>> {
        self.dims_at(v.node(), v.result())
    }

    /// The dims of result `res` of node `node` as functions of the batch.
    fn dims_at(&self, node: usize, res: usize) -> Result<Vec<Dim>> {
        self.affine(node, |g, i| {
            g.nodes()[i].outs[res]
                .dims
                .iter()
                .map(|&d| d as i64)
                .collect()
        })
    }

    /// A 0-d int64 constant.
    fn scalar_i64(&mut self, v: i64) -> String {
        self.init(&[], data_type::INT64, v.to_le_bytes().to_vec())
    }

    /// The dims at the reference batch.
    fn d(&self, v: Value) -> Vec<usize> {
        self.g().dims(v).to_vec()
    }

    /// `[B]` (int64), from the input's shape.
    fn batch(&mut self) -> String {
        if let Some(b) = &self.batch_tensor {
            return b.clone();
        }
        let b = self.op(
            "Shape",
            vec![INPUT.into()],
            vec![int("start", 0), int("end", 1)],
        );
        self.batch_tensor = Some(b.clone());
        b
    }

    /// A 1-D int64 tensor holding `dims` (constants where they do not depend on the batch).
    fn shape(&mut self, dims: &[Dim]) -> String {
        if dims.iter().all(|d| d.is_fixed()) {
            let v: Vec<i64> = dims.iter().map(|d| d.c).collect();
            return self.ints(&v);
        }
        let mut parts = Vec::new();
        let mut run = Vec::new();
        for d in dims {
            if d.is_fixed() {
                run.push(d.c);
                continue;
            }
            if !run.is_empty() {
                parts.push(self.ints(&run));
                run.clear();
            }
            let b = self.batch();
            let mut e = b;
            if d.a != 1 {
                let a = self.ints(&[d.a]);
                e = self.op("Mul", vec![e, a], vec![]);
            }
            if d.c != 0 {
                let c = self.ints(&[d.c]);
                e = self.op("Add", vec![e, c], vec![]);
            }
            parts.push(e);
        }
        if !run.is_empty() {
            parts.push(self.ints(&run));
        }
        if parts.len() == 1 {
            if let Some(p) = parts.pop() {
                return p;
            }
        }
        self.op("Concat", parts, vec![int("axis", 0)])
    }

    fn transpose(&mut self, x: String, perm: &[usize]) -> String {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return x;
        }
        let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
        self.op("Transpose", vec![x], vec![ints("perm", &perm)])
    }

    fn reshape(&mut self, x: String, dims: &[Dim]) -> String {
        let s = self.shape(dims);
        self.op("Reshape", vec![x, s], vec![])
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(v),
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: Some(v.as_bytes().to_vec()),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

fn onnx_type(d: DType) -> i32 {
    match d {
        DType::F32 => data_type::FLOAT,
        DType::F64 => data_type::DOUBLE,
        DType::BF16 => data_type::BFLOAT16,
        DType::I32 => data_type::INT32,
        DType::I64 => data_type::INT64,
        DType::U8 => data_type::UINT8,
        DType::U32 => data_type::UINT32,
        DType::U64 => data_type::UINT64,
        DType::Pred => data_type::BOOL,
    }
}

fn value_info(name: &str, dims: &[Dim], dt: DType) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value as D;
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match (d.a, d.c) {
                (0, c) => D::DimValue(c),
                (1, 0) => D::DimParam("batch".into()),
                (a, c) => D::DimParam(format!("{a}*batch+{c}")),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: onnx_type(dt),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
    }
}

/// Little-endian bytes of a literal's elements as `dt`.
fn literal_bytes(lit: &Literal, dt: DType) -> Result<Vec<u8>> {
    let bad = || Error::Invalid(format!("a {dt} constant holds the wrong kind of values"));
    Ok(match (lit, dt) {
        (Literal::Float(v), DType::F32) => {
            v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
        }
        (Literal::Float(v), DType::F64) => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        (Literal::Float(v), DType::BF16) => v
            .iter()
            .flat_map(|&x| (((x as f32).to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        (Literal::Int(v), DType::I32) => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
        (Literal::Int(v), DType::I64) => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        (Literal::UInt(v), DType::U8) => v.iter().map(|&x| x as u8).collect(),
        (Literal::UInt(v), DType::U32) => {
            v.iter().flat_map(|&x| (x as u32).to_le_bytes()).collect()
        }
        (Literal::UInt(v), DType::U64) => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        (Literal::Bool(v), DType::Pred) => v.iter().map(|&x| x as u8).collect(),
        _ => return Err(bad()),
    })
}

/// The ONNX nodes of graph node `i`; returns the ONNX names of its results.
fn one(s: String) -> Result<Vec<String>> {
    Ok(vec![s])
}

fn unsupported(what: &str) -> Result<Vec<String>> {
    Err(Error::Unsupported(what.to_string()))
}

fn convert(cx: &mut Cx<'_>, i: usize, prim: &Prim) -> Result<Vec<String>> {
    let graphs = cx.graphs;
    let node = &graphs[0].nodes()[i];
    // The operands the ONNX nodes read (see `live_nodes`: not a reduction's init, nothing of a
    // custom-VJP node).
    let used = match prim {
        Prim::Reduce { .. } | Prim::ReduceWindow { .. } => 1,
        Prim::CustomVjp(_) => 0,
        _ => node.inputs.len(),
    };
    let ins: Vec<String> = node.inputs[..used].iter().map(|&v| cx.name(v)).collect();
    let out_dt = node.outs.first().map(|t| t.dtype).unwrap_or(DType::F32);
    match prim {
        Prim::Parameter { .. } => unreachable!("parameters are handled by the caller"),
        Prim::Constant { ty, lit } => {
            let dt = ty.dtype;
            let raw = literal_bytes(lit, dt)?;
            let dims = cx.dims_at(i, 0)?;
            if lit.len() == ty.numel() && dims.iter().all(|d| d.is_fixed()) {
                let shape: Vec<i64> = ty.dims.iter().map(|&d| d as i64).collect();
                return one(cx.init(&shape, onnx_type(dt), raw));
            }
            if lit.len() != 1 {
                return unsupported("a dense constant whose shape depends on the batch");
            }
            let scalar = cx.init(&[], onnx_type(dt), raw);
            let s = cx.shape(&dims);
            one(cx.op("Expand", vec![scalar, s], vec![]))
        }
        Prim::Iota { ty, dim } => {
            let dims = cx.dims_at(i, 0)?;
            if !dims[*dim].is_fixed() {
                return unsupported("an iota along a batch-dependent dim");
            }
            let n = ty.dims[*dim] as i64;
            let (start, limit, delta) = (cx.scalar_i64(0), cx.scalar_i64(n), cx.scalar_i64(1));
            let mut r = cx.op("Range", vec![start, limit, delta], vec![]);
            if out_dt != DType::I64 {
                r = cx.op("Cast", vec![r], vec![int("to", onnx_type(out_dt) as i64)]);
            }
            let mut shape1: Vec<Dim> = vec![Dim::fixed(1); ty.dims.len()];
            shape1[*dim] = Dim::fixed(n);
            let r = cx.reshape(r, &shape1);
            let s = cx.shape(&dims);
            one(cx.op("Expand", vec![r, s], vec![]))
        }
        Prim::Convert { to } => {
            one(cx.op("Cast", ins.clone(), vec![int("to", onnx_type(*to) as i64)]))
        }
        Prim::Unary(op) => {
            let x = ins[0].clone();
            let simple = |cx: &mut Cx, name: &str| cx.op(name, vec![x.clone()], vec![]);
            one(match op {
                UnaryOp::Neg => simple(cx, "Neg"),
                UnaryOp::Exp => simple(cx, "Exp"),
                UnaryOp::Log => simple(cx, "Log"),
                UnaryOp::Sqrt => simple(cx, "Sqrt"),
                UnaryOp::Rsqrt => {
                    let s = simple(cx, "Sqrt");
                    cx.op("Reciprocal", vec![s], vec![])
                }
                UnaryOp::Tanh => simple(cx, "Tanh"),
                UnaryOp::Logistic => simple(cx, "Sigmoid"),
                UnaryOp::Abs => simple(cx, "Abs"),
                UnaryOp::Sign => simple(cx, "Sign"),
                UnaryOp::Floor => simple(cx, "Floor"),
                UnaryOp::Ceil => simple(cx, "Ceil"),
                UnaryOp::RoundEven => simple(cx, "Round"),
                UnaryOp::Cos => simple(cx, "Cos"),
                UnaryOp::Sin => simple(cx, "Sin"),
                UnaryOp::Log1p => {
                    let one = scalar_like(cx, 1.0, out_dt)?;
                    let s = cx.op("Add", vec![x.clone(), one], vec![]);
                    cx.op("Log", vec![s], vec![])
                }
                UnaryOp::Expm1 => {
                    let e = simple(cx, "Exp");
                    let one = scalar_like(cx, 1.0, out_dt)?;
                    cx.op("Sub", vec![e, one], vec![])
                }
                UnaryOp::Erf => simple(cx, "Erf"),
                UnaryOp::Not if out_dt == DType::Pred => simple(cx, "Not"),
                UnaryOp::Not => simple(cx, "BitwiseNot"),
            })
        }
        Prim::Binary(op) => {
            let logical =
                |b: &'static str, i: &'static str| if out_dt == DType::Pred { b } else { i };
            let name = match op {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
                BinaryOp::Pow => "Pow",
                BinaryOp::And => logical("And", "BitwiseAnd"),
                BinaryOp::Or => logical("Or", "BitwiseOr"),
                BinaryOp::Xor => logical("Xor", "BitwiseXor"),
            };
            one(cx.op(name, ins.clone(), vec![]))
        }
        Prim::Compare(dir) => one(match dir {
            CmpDir::Eq => cx.op("Equal", ins.clone(), vec![]),
            CmpDir::Ne => {
                let e = cx.op("Equal", ins.clone(), vec![]);
                cx.op("Not", vec![e], vec![])
            }
            CmpDir::Lt => cx.op("Less", ins.clone(), vec![]),
            CmpDir::Le => cx.op("LessOrEqual", ins.clone(), vec![]),
            CmpDir::Gt => cx.op("Greater", ins.clone(), vec![]),
            CmpDir::Ge => cx.op("GreaterOrEqual", ins.clone(), vec![]),
        }),
        Prim::Select => one(cx.op("Where", ins.clone(), vec![])),
        Prim::BroadcastInDim { dims, .. } => {
            let x_v = node.inputs[0];
            let x_dims = cx.dims(x_v)?;
            let out = cx.dims_at(i, 0)?;
            // Operand dims in increasing target order, then 1s where the result has new dims.
            let mut order: Vec<usize> = (0..dims.len()).collect();
            order.sort_by_key(|&k| dims[k]);
            let mut x = cx.transpose(ins[0].clone(), &order);
            let mut shape1 = vec![Dim::fixed(1); out.len()];
            for &k in &order {
                shape1[dims[k]] = x_dims[k];
            }
            if shape1.len() != x_dims.len() {
                x = cx.reshape(x, &shape1);
            }
            if shape1 == out {
                return one(cx.op("Identity", vec![x], vec![]));
            }
            let s = cx.shape(&out);
            one(cx.op("Expand", vec![x, s], vec![]))
        }
        Prim::Reshape { .. } => {
            let out = cx.dims_at(i, 0)?;
            one(cx.reshape(ins[0].clone(), &out))
        }
        Prim::Transpose { perm } => one(cx.transpose(ins[0].clone(), perm)),
        Prim::Slice { strides, .. } => {
            let x_dims = cx.dims(node.inputs[0])?;
            let start = cx.affine(i, |g, i| match &g.nodes()[i].prim {
                Prim::Slice { start, .. } => start.iter().map(|&v| v as i64).collect(),
                _ => unreachable!("same structure"),
            })?;
            let limit = cx.affine(i, |g, i| match &g.nodes()[i].prim {
                Prim::Slice { limit, .. } => limit.iter().map(|&v| v as i64).collect(),
                _ => unreachable!("same structure"),
            })?;
            let axes: Vec<usize> = (0..strides.len())
                .filter(|&k| {
                    !(start[k] == Dim::fixed(0) && limit[k] == x_dims[k] && strides[k] == 1)
                })
                .collect();
            if axes.is_empty() {
                return one(cx.op("Identity", ins.clone(), vec![]));
            }
            let st: Vec<Dim> = axes.iter().map(|&k| start[k]).collect();
            let en: Vec<Dim> = axes.iter().map(|&k| limit[k]).collect();
            let (st, en) = (cx.shape(&st), cx.shape(&en));
            let ax: Vec<i64> = axes.iter().map(|&k| k as i64).collect();
            let sp: Vec<i64> = axes.iter().map(|&k| strides[k] as i64).collect();
            let (ax, sp) = (cx.ints(&ax), cx.ints(&sp));
            one(cx.op("Slice", vec![ins[0].clone(), st, en, ax, sp], vec![]))
        }
        Prim::Pad { lo, hi, interior } => {
            if interior.iter().any(|&k| k != 0) {
                return unsupported("pad with interior padding (only backward graphs use it)");
            }
            let r = lo.len();
            let mut pads: Vec<i64> = lo.iter().map(|&v| v.max(0)).collect();
            pads.extend(hi.iter().map(|&v| v.max(0)));
            let mut x = ins[0].clone();
            if pads.iter().any(|&p| p != 0) {
                let p = cx.ints(&pads);
                x = cx.op(
                    "Pad",
                    vec![x, p, ins[1].clone()],
                    vec![string("mode", "constant")],
                );
            }
            // Negative padding crops: a slice of the padded tensor.
            let crop: Vec<usize> = (0..r).filter(|&k| lo[k] < 0 || hi[k] < 0).collect();
            if !crop.is_empty() {
                let x_dims = cx.dims(node.inputs[0])?;
                let mut st = Vec::new();
                let mut en = Vec::new();
                for &k in &crop {
                    let padded = Dim {
                        a: x_dims[k].a,
                        c: x_dims[k].c + lo[k].max(0) + hi[k].max(0),
                    };
                    st.push(Dim::fixed((-lo[k]).max(0)));
                    en.push(Dim {
                        a: padded.a,
                        c: padded.c - (-hi[k]).max(0),
                    });
                }
                let (st, en) = (cx.shape(&st), cx.shape(&en));
                let ax: Vec<i64> = crop.iter().map(|&k| k as i64).collect();
                let ax = cx.ints(&ax);
                x = cx.op("Slice", vec![x, st, en, ax], vec![]);
            }
            one(cx.op("Identity", vec![x], vec![]))
        }
        Prim::Concatenate { dim } => {
            one(cx.op("Concat", ins.clone(), vec![int("axis", *dim as i64)]))
        }
        Prim::Barrier => Ok(ins
            .iter()
            .map(|i| cx.op("Identity", vec![i.clone()], vec![]))
            .collect()),
        Prim::Reverse { dims } => {
            let n = dims.len();
            let st = cx.ints(&vec![-1; n]);
            let en = cx.ints(&vec![i64::MIN; n]);
            let ax: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let ax = cx.ints(&ax);
            let sp = cx.ints(&vec![-1; n]);
            one(cx.op("Slice", vec![ins[0].clone(), st, en, ax, sp], vec![]))
        }
        Prim::Reduce { op, dims } => {
            if dims.is_empty() {
                return one(cx.op("Identity", vec![ins[0].clone()], vec![]));
            }
            let name = match op {
                ReduceOp::Sum => "ReduceSum",
                ReduceOp::Max => "ReduceMax",
                ReduceOp::Min => "ReduceMin",
            };
            let axes: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let axes = cx.ints(&axes);
            one(cx.op(name, vec![ins[0].clone(), axes], vec![int("keepdims", 0)]))
        }
        Prim::ReduceWindow { op, window } => {
            if window.base_dilation.iter().any(|&d| d != 1) {
                return unsupported("reduce_window with base dilation");
            }
            let x_v = node.inputs[0];
            let rank = window.dims.len();
            let pooled: Vec<usize> = (0..rank)
                .filter(|&k| {
                    window.dims[k] != 1
                        || window.strides[k] != 1
                        || window.padding[k] != (0, 0)
                        || window.window_dilation[k] != 1
                })
                .collect();
            let rest: Vec<usize> = (0..rank).filter(|k| !pooled.contains(k)).collect();
            let x_dims = cx.dims(x_v)?;
            let out = cx.dims_at(i, 0)?;
            if pooled.iter().any(|&k| !x_dims[k].is_fixed()) {
                return unsupported("a window over a batch-dependent dim");
            }
            // [rest…, pooled…] → [N', 1, pooled…] → pool → back.
            let perm: Vec<usize> = rest.iter().chain(&pooled).copied().collect();
            let x = cx.transpose(ins[0].clone(), &perm);
            let mut s4 = vec![Dim::fixed(-1), Dim::fixed(1)];
            s4.extend(pooled.iter().map(|&k| x_dims[k]));
            let x = cx.reshape(x, &s4);
            let sel = |v: &[usize]| -> Vec<i64> { pooled.iter().map(|&k| v[k] as i64).collect() };
            let kernel = sel(&window.dims);
            let mut pads: Vec<i64> = pooled.iter().map(|&k| window.padding[k].0 as i64).collect();
            pads.extend(pooled.iter().map(|&k| window.padding[k].1 as i64));
            let attrs = |with_kernel: bool| {
                let mut a = vec![
                    ints("strides", &sel(&window.strides)),
                    ints("pads", &pads),
                    ints("dilations", &sel(&window.window_dilation)),
                ];
                if with_kernel {
                    a.push(ints("kernel_shape", &kernel));
                }
                a
            };
            let y = match op {
                ReduceOp::Max => cx.op("MaxPool", vec![x], attrs(true)),
                ReduceOp::Min => {
                    let n = cx.op("Neg", vec![x], vec![]);
                    let m = cx.op("MaxPool", vec![n], attrs(true));
                    cx.op("Neg", vec![m], vec![])
                }
                ReduceOp::Sum => {
                    if out_dt != DType::F32 {
                        return unsupported("a windowed sum of non-f32 values");
                    }
                    let numel: i64 = kernel.iter().product();
                    let mut wd = vec![1i64, 1];
                    wd.extend(&kernel);
                    let raw = (0..numel).flat_map(|_| 1f32.to_le_bytes()).collect();
                    let w = cx.init(&wd, data_type::FLOAT, raw);
                    cx.op("Conv", vec![x, w], attrs(true))
                }
            };
            let mut back: Vec<Dim> = rest.iter().map(|&k| out[k]).collect();
            back.extend(pooled.iter().map(|&k| out[k]));
            let y = cx.reshape(y, &back);
            let mut inv = vec![0; rank];
            for (pos, &k) in perm.iter().enumerate() {
                inv[k] = pos;
            }
            let y = cx.transpose(y, &inv);
            one(cx.op("Identity", vec![y], vec![]))
        }
        Prim::SelectAndScatter { .. } => unsupported("select_and_scatter (a max-pool backward)"),
        Prim::DotGeneral(d) => {
            let (lr, rr) = (cx.d(node.inputs[0]).len(), cx.d(node.inputs[1]).len());
            let plain = d.lhs_batch.is_empty()
                && d.rhs_batch.is_empty()
                && lr == 2
                && rr == 2
                && d.lhs_contract == [1]
                && d.rhs_contract == [0];
            if plain {
                return one(cx.op("MatMul", ins.clone(), vec![]));
            }
            // General case: einsum with one letter per dim.
            let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyz".chars().collect();
            let mut next = 0usize;
            let mut take = || {
                next += 1;
                letters.get(next - 1).copied()
            };
            let mut l = vec![' '; lr];
            let mut r = vec![' '; rr];
            let mut out = String::new();
            for (&a, &b) in d.lhs_batch.iter().zip(&d.rhs_batch) {
                let c =
                    take().ok_or_else(|| Error::Unsupported("dot_general of rank > 26".into()))?;
                l[a] = c;
                r[b] = c;
                out.push(c);
            }
            for (&a, &b) in d.lhs_contract.iter().zip(&d.rhs_contract) {
                let c =
                    take().ok_or_else(|| Error::Unsupported("dot_general of rank > 26".into()))?;
                l[a] = c;
                r[b] = c;
            }
            for slot in l.iter_mut().filter(|c| **c == ' ') {
                *slot =
                    take().ok_or_else(|| Error::Unsupported("dot_general of rank > 26".into()))?;
                out.push(*slot);
            }
            for slot in r.iter_mut().filter(|c| **c == ' ') {
                *slot =
                    take().ok_or_else(|| Error::Unsupported("dot_general of rank > 26".into()))?;
                out.push(*slot);
            }
            let eq = format!(
                "{},{}->{out}",
                l.iter().collect::<String>(),
                r.iter().collect::<String>()
            );
            one(cx.op("Einsum", ins.clone(), vec![string("equation", &eq)]))
        }
        Prim::ConvCall(_) => unsupported(
            "a convolution custom call (export builds its graph without them: it is built outside `nn::with_conv_calls`)",
        ),
        Prim::MatMulCall(_) => unsupported(
            "a matrix-product custom call (export builds its graph without them: it is built outside `nn::with_conv_calls`)",
        ),
        Prim::AdamCall(_) => unsupported(
            "an optimizer-update custom call (export holds the forward graph only, which has none)",
        ),
        Prim::Convolution(c) => {
            if c.lhs_dilation.iter().any(|&d| d != 1) {
                return unsupported(
                    "a convolution with lhs (input) dilation (only backward graphs use it)",
                );
            }
            if c.batch_group_count != 1 {
                return unsupported(
                    "a convolution with batch groups (only backward graphs use it)",
                );
            }
            if c.padding.iter().any(|&(a, b)| a < 0 || b < 0) {
                return unsupported("a convolution with negative padding");
            }
            let dn = &c.dims;
            let mut pin = vec![dn.input_batch, dn.input_feature];
            pin.extend(&dn.input_spatial);
            let mut pk = vec![dn.kernel_out, dn.kernel_in];
            pk.extend(&dn.kernel_spatial);
            let x = cx.transpose(ins[0].clone(), &pin);
            let w = cx.transpose(ins[1].clone(), &pk);
            let mut pads: Vec<i64> = c.padding.iter().map(|p| p.0).collect();
            pads.extend(c.padding.iter().map(|p| p.1));
            let to_i = |v: &[usize]| -> Vec<i64> { v.iter().map(|&k| k as i64).collect() };
            let y = cx.op(
                "Conv",
                vec![x, w],
                vec![
                    ints("strides", &to_i(&c.strides)),
                    ints("pads", &pads),
                    ints("dilations", &to_i(&c.rhs_dilation)),
                    int("group", c.feature_group_count as i64),
                ],
            );
            // ONNX gives [N, O, spatial…]; result dim `output_batch` is 0, `output_feature` 1, …
            let mut pout = vec![0; 2 + dn.output_spatial.len()];
            pout[dn.output_batch] = 0;
            pout[dn.output_feature] = 1;
            for (k, &d) in dn.output_spatial.iter().enumerate() {
                pout[d] = 2 + k;
            }
            one(cx.transpose(y, &pout))
        }
        Prim::RngBitGenerator { .. } => {
            unsupported("rng_bit_generator (dropout masks exist only in training)")
        }
        Prim::CustomVjp(_) => Ok(Vec::new()), // results alias the composite's outputs (`Cx::name`)
    }
}

/// A 0-d constant of `dt` holding `v`.
fn scalar_like(cx: &mut Cx<'_>, v: f64, dt: DType) -> Result<String> {
    let lit = Literal::splat(v, dt).map_err(|e| Error::Invalid(e.to_string()))?;
    let raw = literal_bytes(&lit, dt)?;
    Ok(cx.init(&[], onnx_type(dt), raw))
}
