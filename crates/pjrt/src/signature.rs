//! The argument signature of `@main`, read from StableHLO text.
//!
//! PJRT's C API (0.81) exposes output types and dims of an executable but not its parameters, and the
//! CPU plugin checks only argument *byte sizes* at execute time: an `f32[4]` passed for `f32[2,2]`, or
//! an `i32[3]` for an `f32[3]`, would run silently with the wrong meaning. So `compile` reads the
//! parameter types from the `func.func ... @main(...)` header of the text it was given, and `execute`
//! checks every argument's element type and dims against it. When the text cannot be read this way
//! (bytecode, the generic op form, unusual types), the signature is `None` and only the plugin's own
//! checks apply.

use crate::buffer::ElementType;

/// A ranked tensor type, e.g. `tensor<2x?xf32>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    /// `None` for a dynamic (`?`) dimension.
    pub dims: Vec<Option<i64>>,
    pub element_type: ElementType,
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.dims {
            match d {
                Some(n) => write!(f, "{n}x")?,
                None => f.write_str("?x")?,
            }
        }
        write!(f, "{}>", self.element_type)
    }
}

/// One parameter of `@main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// `None` when the type is not a tensor type we understand (then it is not checked).
    pub ty: Option<TensorType>,
    /// The `tf.aliasing_output = N` attribute: the output this input's memory may be donated to.
    pub aliasing_output: Option<usize>,
    /// The `mhlo.sharding = "…"` attribute, as written (GSPMD's spelling, e.g. `{replicated}` or
    /// `{devices=[2,1]<=[2]}`); see [`Sharding::parse`].
    pub sharding: Option<String>,
}

/// How a partitioned program's parameter is laid out over its partitions (the GSPMD spellings
/// netspec emits and checks; other spellings are refused by [`Sharding::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sharding {
    /// `{replicated}`: every partition holds the whole value.
    Replicated,
    /// `{devices=[t0,t1,…]<=[N]}`: dimension `i` is cut into `tᵢ` equal tiles, the tiles assigned to
    /// partitions `0..N` in row-major order of the tile grid (`N` = the product of the `tᵢ`).
    Tiled(Vec<i64>),
}

impl Sharding {
    /// Reads the spellings above; `None` for any other (then local shapes cannot be checked).
    pub fn parse(s: &str) -> Option<Sharding> {
        let s = s.trim();
        if s == "{replicated}" {
            return Some(Sharding::Replicated);
        }
        let inner = s.strip_prefix("{devices=[")?.strip_suffix('}')?;
        let (tiles, rest) = inner.split_once(']')?;
        let tiles: Vec<i64> = tiles
            .split(',')
            .map(|t| t.trim().parse().ok().filter(|&t: &i64| t > 0))
            .collect::<Option<_>>()?;
        let n: i64 = rest
            .trim()
            .strip_prefix("<=[")?
            .strip_suffix(']')?
            .trim()
            .parse()
            .ok()?;
        (tiles.iter().product::<i64>() == n).then_some(Sharding::Tiled(tiles))
    }

    /// The shape each partition holds of a value of shape `global`, or `None` when the tiles do not
    /// fit it (another rank, or a dimension they do not divide).
    pub fn local_dims(&self, global: &[i64]) -> Option<Vec<i64>> {
        match self {
            Sharding::Replicated => Some(global.to_vec()),
            Sharding::Tiled(tiles) => {
                if tiles.len() != global.len() {
                    return None;
                }
                global
                    .iter()
                    .zip(tiles)
                    .map(|(&d, &t)| (d % t == 0).then_some(d / t))
                    .collect()
            }
        }
    }
}

/// The parameters of `@main`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<Param>,
}

/// Reads the parameters of `func.func [public|private] @main(...)` from StableHLO text.
pub fn parse_main_signature(mlir: &str) -> Option<Signature> {
    let start = find_main(mlir)?;
    let body = &mlir[start..];
    let end = matching_close(body)?;
    let args = &body[..end];
    let mut params = Vec::new();
    if !args.trim().is_empty() {
        for arg in split_top_level(args) {
            params.push(parse_param(arg.trim())?);
        }
    }
    Some(Signature { params })
}

/// Byte index just after `@main(` in a `func.func` header.
fn find_main(mlir: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = mlir[from..].find("@main(") {
        let at = from + i;
        // The header line must be a func.func (not, e.g., a call `func.call @main(`).
        let line_start = mlir[..at].rfind('\n').map_or(0, |n| n + 1);
        if mlir[line_start..at].contains("func.func") {
            return Some(at + "@main(".len());
        }
        from = at + 1;
    }
    None
}

/// Given text just after an opening '(', the index of its matching ')'.
fn matching_close(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c, prev) in outside_strings(s) {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            '>' if prev != '-' => depth -= 1,
            ')' | ']' | '}' => {
                if depth == 0 {
                    return if c == ')' { Some(i) } else { None };
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

/// Splits at commas that are not nested inside brackets, braces, angles or strings.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    for (i, c, prev) in outside_strings(s) {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            '>' if prev != '-' => depth -= 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[last..]);
    parts
}

/// The characters of `s` outside "..." string literals (with backslash escapes), each with its byte
/// index and the character before it (`'"'` after a string, `' '` at the start).
fn outside_strings(s: &str) -> impl Iterator<Item = (usize, char, char)> + '_ {
    let mut in_string = false;
    let mut escaped = false;
    let mut prev = ' ';
    s.char_indices().filter_map(move |(i, c)| {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                prev = '"';
            }
            return None;
        }
        if c == '"' {
            in_string = true;
            return None;
        }
        let out = (i, c, prev);
        prev = c;
        Some(out)
    })
}

/// `%name: type {attrs} loc(...)`.
fn parse_param(arg: &str) -> Option<Param> {
    let colon = arg.find(':')?;
    let rest = arg[colon + 1..].trim_start();
    let ty = rest.strip_prefix("tensor<").and_then(|inner| {
        let close = matching_angle(inner)?;
        parse_tensor_body(&inner[..close])
    });
    Some(Param {
        ty,
        aliasing_output: aliasing_output(rest),
        sharding: quoted_attr(rest, "mhlo.sharding"),
    })
}

/// The string value of `name = "…"` in an argument's attributes, if present.
fn quoted_attr(s: &str, name: &str) -> Option<String> {
    let i = s.find(name)?;
    let rest = s[i + name.len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Index of the '>' closing a '<' that was just consumed.
fn matching_angle(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if prev != '-' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// `2x?x3xf32[, encoding]` -> dims and element type.
fn parse_tensor_body(body: &str) -> Option<TensorType> {
    let mut rest = split_top_level(body).first()?.trim();
    let mut dims = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix("?x") {
            dims.push(None);
            rest = r;
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with('x') {
            dims.push(Some(rest[..digits].parse().ok()?));
            rest = &rest[digits + 1..];
            continue;
        }
        break;
    }
    Some(TensorType {
        dims,
        element_type: ElementType::from_mlir_name(rest.trim())?,
    })
}

/// The value of `tf.aliasing_output = N` in an argument's attributes, if present.
fn aliasing_output(s: &str) -> Option<usize> {
    let i = s.find("tf.aliasing_output")?;
    let rest = s[i + "tf.aliasing_output".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &Param) -> String {
        s.ty.as_ref().map_or("?".into(), |t| t.to_string())
    }

    #[test]
    fn jax_style_header_with_attributes() {
        let text = r#"module @jit_f attributes {mhlo.num_partitions = 1 : i32} {
  func.func private @helper(%x: tensor<f32>) -> tensor<f32> { return %x : tensor<f32> }
  func.func public @main(%arg0: tensor<2x3xf32> {jax.arg_info = "w[0], (a, b)", tf.aliasing_output = 2 : i32}, %arg1: tensor<i32> loc("step"), %arg2: tensor<?x4xbf16>, %arg3: tensor<8xi1>, %arg4: tensor<3xcomplex<f32>>, %arg5: tensor<5xui8>) -> (tensor<2x3xf32> {jax.result_info = "[0]"}) {
    %0 = func.call @main(%arg0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    return %arg0 : tensor<2x3xf32>
  }
}"#;
        let sig = parse_main_signature(text).unwrap();
        let got: Vec<String> = sig.params.iter().map(ty).collect();
        assert_eq!(
            got,
            [
                "tensor<2x3xf32>",
                "tensor<i32>",
                "tensor<?x4xbf16>",
                "tensor<8xi1>",
                "tensor<3xcomplex<f32>>",
                "tensor<5xui8>"
            ]
        );
        assert_eq!(sig.params[0].aliasing_output, Some(2));
        assert!(sig.params[1..].iter().all(|p| p.aliasing_output.is_none()));
        assert_eq!(sig.params[2].ty.as_ref().unwrap().dims, [None, Some(4)]);
    }

    #[test]
    fn shardings_are_read_and_give_local_shapes() {
        let text = r#"module @m attributes {mhlo.num_partitions = 2 : i32} {
  func.func public @main(%x: tensor<8x3xf32> {mhlo.sharding = "{devices=[2,1]<=[2]}"}, %w: tensor<3xf32> {mhlo.sharding = "{replicated}", tf.aliasing_output = 0 : i32}, %y: tensor<8xi32>) -> tensor<3xf32> {"#;
        let sig = parse_main_signature(text).unwrap();
        let sh: Vec<Option<Sharding>> = sig
            .params
            .iter()
            .map(|p| p.sharding.as_deref().and_then(Sharding::parse))
            .collect();
        assert_eq!(
            sh,
            [
                Some(Sharding::Tiled(vec![2, 1])),
                Some(Sharding::Replicated),
                None
            ]
        );
        assert_eq!(sig.params[1].aliasing_output, Some(0));
        let t = Sharding::Tiled(vec![4, 1, 1, 1]);
        assert_eq!(t.local_dims(&[8, 3, 2, 2]), Some(vec![2, 3, 2, 2]));
        assert_eq!(t.local_dims(&[6, 3, 2, 2]), None, "4 does not divide 6");
        assert_eq!(t.local_dims(&[8]), None, "another rank");
        assert_eq!(Sharding::Replicated.local_dims(&[5]), Some(vec![5]));
        for bad in [
            "{devices=[2,1]<=[4]}",
            "{maximal device=0}",
            "{devices=[0]<=[0]}",
            "replicated",
        ] {
            assert_eq!(Sharding::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_arguments_and_unknown_types() {
        let sig = parse_main_signature("func.func @main() -> tensor<f32> {").unwrap();
        assert!(sig.params.is_empty());
        let sig = parse_main_signature(
            "func.func @main(%t: !stablehlo.token, %x: tensor<f8E4M3FN>) -> ()",
        )
        .unwrap();
        assert_eq!(sig.params.len(), 2);
        assert!(
            sig.params.iter().all(|p| p.ty.is_none()),
            "unknown types are not checked"
        );
    }

    #[test]
    fn no_main_means_no_signature() {
        assert!(parse_main_signature("func.func @other(%x: tensor<f32>) -> tensor<f32>").is_none());
        assert!(
            parse_main_signature("%0 = func.call @main(%x) : (tensor<f32>) -> tensor<f32>")
                .is_none()
        );
        assert!(parse_main_signature("ML\u{ef}R\u{0}bytecode").is_none());
        assert!(
            parse_main_signature("func.func @main(%x: tensor<2xf32>").is_none(),
            "unterminated"
        );
    }
}
