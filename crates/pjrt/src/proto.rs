//! Hand-encoded `xla.CompileOptionsProto` (protobuf wire format), so that no protobuf dependency or
//! code generator is needed. Field numbers are those of xla/pjrt/proto/compile_options.proto and
//! xla/xla.proto:
//!
//! ```text
//! CompileOptionsProto        { ExecutableBuildOptionsProto executable_build_options = 3;
//!                              map<string, OptionOverrideProto> env_option_overrides = 7; }
//! ExecutableBuildOptionsProto{ int64 device_ordinal = 1; int64 num_replicas = 4; int64 num_partitions = 5; }
//! OptionOverrideProto        { oneof { string string_field = 1; bool bool_field = 2;
//!                                      int64 int_field = 3; double double_field = 4; } }
//! map entry                  { string key = 1; OptionOverrideProto value = 2; }
//! ```
//! Passing options is mandatory: with empty bytes the plugin aborts the process
//! (`Check failed: replica_count > 0`).

/// A value for an XLA debug option override (e.g. `xla_cpu_enable_fast_math = false`).
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// Options for compiling one program. The default is what netspec always wants: one replica, one
/// partition, the default device.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    pub num_replicas: i64,
    pub num_partitions: i64,
    /// -1 lets the client pick (device 0, where buffers are placed).
    pub device_ordinal: i64,
    /// XLA `DebugOptions` overrides by name, passed as `env_option_overrides`, e.g.
    /// `("xla_cpu_enable_fast_math", OptionValue::Bool(false))`. Unknown names are compile errors.
    pub xla_options: Vec<(String, OptionValue)>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            num_replicas: 1,
            num_partitions: 1,
            device_ordinal: -1,
            xla_options: Vec::new(),
        }
    }
}

// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

/// int64 and bool fields are varints; negative int64 values take ten bytes (two's complement).
fn put_int(out: &mut Vec<u8>, field: u32, v: i64) {
    put_tag(out, field, VARINT);
    put_varint(out, v as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl CompileOptions {
    /// The serialized `CompileOptionsProto`.
    pub fn to_proto_bytes(&self) -> Vec<u8> {
        let mut build = Vec::new();
        put_int(&mut build, 1, self.device_ordinal);
        put_int(&mut build, 4, self.num_replicas);
        put_int(&mut build, 5, self.num_partitions);
        let mut out = Vec::new();
        put_bytes(&mut out, 3, &build);
        for (key, value) in &self.xla_options {
            let mut v = Vec::new();
            match value {
                OptionValue::Str(s) => put_bytes(&mut v, 1, s.as_bytes()),
                OptionValue::Bool(b) => put_int(&mut v, 2, i64::from(*b)),
                OptionValue::Int(i) => put_int(&mut v, 3, *i),
                OptionValue::Float(f) => {
                    put_tag(&mut v, 4, FIXED64);
                    v.extend_from_slice(&f.to_le_bytes());
                }
            }
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, key.as_bytes());
            put_bytes(&mut entry, 2, &v);
            put_bytes(&mut out, 7, &entry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_encode_to_the_known_bytes() {
        // executable_build_options (field 3, 15 bytes): device_ordinal = -1 (ten-byte varint),
        // num_replicas = 1, num_partitions = 1.
        let want = [
            0x1a, 0x0f, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x20,
            0x01, 0x28, 0x01,
        ];
        assert_eq!(CompileOptions::default().to_proto_bytes(), want);
    }

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        v.clear();
        put_varint(&mut v, 0);
        assert_eq!(v, [0x00]);
    }

    #[test]
    fn overrides_are_map_entries_in_field_7() {
        let opts = CompileOptions {
            xla_options: vec![("ab".into(), OptionValue::Bool(true))],
            ..CompileOptions::default()
        };
        let bytes = opts.to_proto_bytes();
        // entry = key "ab" (0a 02 61 62) + value (12 02 {10 01}) = 8 bytes
        assert_eq!(
            &bytes[17..],
            [0x3a, 0x08, 0x0a, 0x02, b'a', b'b', 0x12, 0x02, 0x10, 0x01]
        );
    }
}
