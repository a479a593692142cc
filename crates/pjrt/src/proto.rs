//! Hand-encoded `xla.CompileOptionsProto` (protobuf wire format), so that no protobuf dependency or
//! code generator is needed. Field numbers are those of xla/pjrt/proto/compile_options.proto and
//! xla/xla.proto:
//!
//! ```text
//! CompileOptionsProto        { ExecutableBuildOptionsProto executable_build_options = 3;
//!                              map<string, OptionOverrideProto> env_option_overrides = 7; }
//! ExecutableBuildOptionsProto{ int64 device_ordinal = 1; int64 num_replicas = 4; int64 num_partitions = 5;
//!                              bool use_spmd_partitioning = 6; DeviceAssignmentProto device_assignment = 9;
//!                              repeated bool allow_spmd_sharding_propagation_to_output = 12;
//!                              repeated bool allow_spmd_sharding_propagation_to_parameters = 18;
//!                              bool use_shardy_partitioner = 19; }
//! DeviceAssignmentProto      { int32 replica_count = 1; int32 computation_count = 2;
//!                              repeated ComputationDevice computation_devices = 3; }
//! ComputationDevice          { repeated int64 replica_device_ids = 1; }
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

/// Options for compiling one program. The default is one replica, one partition, the default device;
/// [`CompileOptions::spmd`] partitions a program over several devices.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    pub num_replicas: i64,
    pub num_partitions: i64,
    /// -1 lets the client pick (device 0, where buffers are placed).
    pub device_ordinal: i64,
    /// Run XLA's SPMD partitioner (`mhlo.sharding` attributes say how each value is cut).
    pub use_spmd_partitioning: bool,
    /// With one replica: the device id of each partition (`computation_devices[p] = [id]`); empty:
    /// not sent (the client's default assignment).
    pub device_assignment: Vec<i64>,
    /// Per output / per parameter: may the partitioner choose its sharding (empty: not sent).
    pub allow_spmd_sharding_propagation_to_output: Vec<bool>,
    pub allow_spmd_sharding_propagation_to_parameters: Vec<bool>,
    /// Partition with Shardy instead of GSPMD.
    pub use_shardy_partitioner: bool,
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
            use_spmd_partitioning: false,
            device_assignment: Vec::new(),
            allow_spmd_sharding_propagation_to_output: Vec::new(),
            allow_spmd_sharding_propagation_to_parameters: Vec::new(),
            use_shardy_partitioner: false,
            xla_options: Vec::new(),
        }
    }
}

impl CompileOptions {
    /// One replica partitioned over `n` devices by the SPMD partitioner, partition `p` on device id
    /// `p` (as JAX compiles a `Mesh` over `n` devices).
    pub fn spmd(n: usize) -> CompileOptions {
        CompileOptions {
            num_partitions: n as i64,
            use_spmd_partitioning: true,
            device_assignment: (0..n as i64).collect(),
            ..CompileOptions::default()
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

/// A repeated bool field, packed (one varint byte per value); nothing when empty.
fn put_packed_bools(out: &mut Vec<u8>, field: u32, values: &[bool]) {
    if !values.is_empty() {
        let bytes: Vec<u8> = values.iter().map(|&b| u8::from(b)).collect();
        put_bytes(out, field, &bytes);
    }
}

impl CompileOptions {
    /// The serialized `CompileOptionsProto`.
    pub fn to_proto_bytes(&self) -> Vec<u8> {
        let mut build = Vec::new();
        put_int(&mut build, 1, self.device_ordinal);
        put_int(&mut build, 4, self.num_replicas);
        put_int(&mut build, 5, self.num_partitions);
        if self.use_spmd_partitioning {
            put_int(&mut build, 6, 1);
        }
        if !self.device_assignment.is_empty() {
            let mut da = Vec::new();
            put_int(&mut da, 1, 1);
            put_int(&mut da, 2, self.device_assignment.len() as i64);
            for &id in &self.device_assignment {
                let mut cd = Vec::new();
                put_int(&mut cd, 1, id);
                put_bytes(&mut da, 3, &cd);
            }
            put_bytes(&mut build, 9, &da);
        }
        put_packed_bools(
            &mut build,
            12,
            &self.allow_spmd_sharding_propagation_to_output,
        );
        put_packed_bools(
            &mut build,
            18,
            &self.allow_spmd_sharding_propagation_to_parameters,
        );
        if self.use_shardy_partitioner {
            put_int(&mut build, 19, 1);
        }
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
    fn spmd_options_encode_the_partitioning_fields() {
        let bytes = CompileOptions::spmd(2).to_proto_bytes();
        let build = [
            // device_ordinal -1, num_replicas 1, num_partitions 2, use_spmd_partitioning true
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            &[0x20, 0x01, 0x28, 0x02, 0x30, 0x01],
            // device_assignment (field 9, 12 bytes): replica_count 1, computation_count 2,
            // computation_devices [{replica_device_ids: [0]}, {replica_device_ids: [1]}]
            &[
                0x4a, 0x0c, 0x08, 0x01, 0x10, 0x02, 0x1a, 0x02, 0x08, 0x00, 0x1a, 0x02, 0x08, 0x01,
            ],
        ]
        .concat();
        let mut want = vec![0x1a, build.len() as u8];
        want.extend_from_slice(&build);
        assert_eq!(bytes, want);
        let more = CompileOptions {
            allow_spmd_sharding_propagation_to_output: vec![true, false],
            allow_spmd_sharding_propagation_to_parameters: vec![false],
            use_shardy_partitioner: true,
            ..CompileOptions::default()
        }
        .to_proto_bytes();
        // After the 15 default bytes of the build options: 12 = packed [1, 0], 18 = [0], 19 = 1
        // (field 18 and 19 tags take two bytes: 18<<3|2 = 146, 19<<3 = 152).
        assert_eq!(
            &more[2..],
            [
                &CompileOptions::default().to_proto_bytes()[2..],
                &[0x62, 0x02, 0x01, 0x00, 0x92, 0x01, 0x01, 0x00, 0x98, 0x01, 0x01][..]
            ]
            .concat()
        );
        assert_eq!(more[1] as usize, more.len() - 2);
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
