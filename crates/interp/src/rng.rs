//! `rng_bit_generator`. The StableHLO spec leaves the THREE_FRY and PHILOX variants to the
//! implementation; these are XLA's (its RNG bit-generator expansion), checked bit for bit against the
//! CPU plugin in `tests/rng.rs`:
//!
//! - state `ui64[2]` = (key, counter) for THREE_FRY; PHILOX reads a 128-bit counter from `state[1..3]`
//!   (or `(state[1], state[0])` for a 2-element state) and keeps `state[0]` as the key. The new state
//!   is the key followed by the counter advanced by the number of blocks generated.
//! - THREE_FRY, 32-bit results: the shape is halved along its first even dim (else its largest, rounded
//!   up; a scalar becomes 1 element); block `i` of that half shape encrypts the counter `counter + i`
//!   (split into two 32-bit words, low first) with Threefry-2x32 (20 rounds) under the key's two
//!   32-bit words; the two output words fill the even and the odd positions of the split dim.
//!   64-bit results: one block per element, `lo | hi << 32`. Narrower integers take the low bits of the
//!   32-bit result.
//! - PHILOX, 32-bit: ⌈n/4⌉ Philox-4x32 (10 rounds) blocks of counters `counter + i`; block i fills
//!   elements 4i … 4i+3. 64-bit: 2n words, paired (lo, hi).
//! - DEFAULT is PHILOX on XLA:CPU.

use graph::{DType, RngAlgorithm, TensorType};

use crate::error::{bail, Result};
use crate::tensor::{Data, Tensor};

fn threefry2x32(x: [u32; 2], key: [u32; 2]) -> [u32; 2] {
    const ROT: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
    let ks = [key[0], key[1], 0x1BD1_1BDA ^ key[0] ^ key[1]];
    let mut x = [x[0].wrapping_add(ks[0]), x[1].wrapping_add(ks[1])];
    for i in 0..5 {
        let rots = if i % 2 == 0 { &ROT[..4] } else { &ROT[4..] };
        for &r in rots {
            x[0] = x[0].wrapping_add(x[1]);
            x[1] = x[1].rotate_left(r) ^ x[0];
        }
        x[0] = x[0].wrapping_add(ks[(i + 1) % 3]);
        x[1] = x[1]
            .wrapping_add(ks[(i + 2) % 3])
            .wrapping_add(i as u32 + 1);
    }
    x
}

fn philox4x32(mut x: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = x[0] as u64 * 0xD251_1F53;
        let p1 = x[2] as u64 * 0xCD9E_8D57;
        x = [
            (p1 >> 32) as u32 ^ x[1] ^ key[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ x[3] ^ key[1],
            p0 as u32,
        ];
        key = [
            key[0].wrapping_add(0x9E37_79B9),
            key[1].wrapping_add(0xBB67_AE85),
        ];
    }
    x
}

fn words(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}

/// Returns (new state, bits) for `state` and the result type `out`.
pub(crate) fn rng_bit_generator(
    state: &Tensor,
    alg: RngAlgorithm,
    out: &TensorType,
) -> Result<(Tensor, Tensor)> {
    let Some(s) = state.uints() else {
        bail!("rng_bit_generator", "state {} must be ui64", state.ty)
    };
    let bits64 = out.dtype.size_bytes() == 8;
    let (new_state, bits): (Vec<u64>, Vec<u64>) = match alg {
        RngAlgorithm::ThreeFry => {
            if s.len() != 2 {
                bail!(
                    "rng_bit_generator",
                    "THREE_FRY needs a ui64[2] state, got {}",
                    state.ty
                )
            }
            let (key, counter) = (words(s[0]), s[1]);
            if bits64 {
                let n = out.numel() as u64;
                let v = (0..n)
                    .map(|i| {
                        let [lo, hi] = threefry2x32(words(counter.wrapping_add(i)), key);
                        lo as u64 | (hi as u64) << 32
                    })
                    .collect();
                (vec![s[0], counter.wrapping_add(n)], v)
            } else {
                let (v, blocks) = threefry32(&out.dims, counter, key);
                (vec![s[0], counter.wrapping_add(blocks)], v)
            }
        }
        RngAlgorithm::Philox | RngAlgorithm::Default => {
            if s.len() < 2 {
                bail!(
                    "rng_bit_generator",
                    "PHILOX needs a ui64[2] or ui64[3] state, got {}",
                    state.ty
                )
            }
            let (lo, hi) = if s.len() >= 3 {
                (s[1], s[2])
            } else {
                (s[1], s[0])
            };
            let key = words(s[0]);
            let n = out.numel();
            let words_needed = if bits64 { 2 * n } else { n };
            let blocks = words_needed.div_ceil(4) as u64;
            let mut w: Vec<u32> = Vec::with_capacity(blocks as usize * 4);
            for i in 0..blocks {
                let (l, carry) = lo.overflowing_add(i);
                let h = hi.wrapping_add(carry as u64);
                let [a, b] = words(l);
                let [c, d] = words(h);
                w.extend(philox4x32([a, b, c, d], key));
            }
            let v = if bits64 {
                (0..n)
                    .map(|e| {
                        // Words 4i..4i+3 of block i make two 64-bit values (w0 | w1 << 32, w2 | w3 << 32).
                        w[2 * e] as u64 | (w[2 * e + 1] as u64) << 32
                    })
                    .collect()
            } else {
                w[..n].iter().map(|&x| x as u64).collect()
            };
            let (nl, carry) = lo.overflowing_add(blocks);
            let nh = hi.wrapping_add(carry as u64);
            let st = if s.len() >= 3 {
                let mut st = s.to_vec();
                st[1] = nl;
                st[2] = nh;
                st
            } else {
                vec![s[0], nl]
            };
            (st, v)
        }
    };
    let data = match out.dtype {
        DType::U8 | DType::U32 | DType::U64 => Data::UInt(bits),
        DType::I32 | DType::I64 => Data::Int(bits.iter().map(|&b| b as i64).collect()),
        DType::F32 | DType::F64 | DType::BF16 | DType::Pred => {
            bail!(
                "rng_bit_generator",
                "result type {out} must be an integer type"
            )
        }
    };
    let bits = Tensor::new(out.clone(), data)?;
    let new_state = Tensor::new(state.ty.clone(), Data::UInt(new_state))?;
    Ok((new_state, bits))
}

/// THREE_FRY 32-bit bits of shape `dims`; returns the bits (as u64) and the number of blocks used.
fn threefry32(dims: &[usize], counter: u64, key: [u32; 2]) -> (Vec<u64>, u64) {
    let n: usize = dims.iter().product();
    if dims.is_empty() {
        let [x0, _] = threefry2x32(words(counter), key);
        return (vec![x0 as u64], 1);
    }
    let split = dims.iter().position(|&d| d % 2 == 0).unwrap_or_else(|| {
        let mx = dims.iter().copied().max().unwrap_or(0);
        dims.iter().position(|&d| d == mx).unwrap_or(0)
    });
    let mut half = dims.to_vec();
    half[split] = dims[split].div_ceil(2);
    let half_n: usize = half.iter().product();
    // Blocks in row-major order of the half shape.
    let blocks: Vec<[u32; 2]> = (0..half_n as u64)
        .map(|i| threefry2x32(words(counter.wrapping_add(i)), key))
        .collect();
    let outer: usize = dims[..split].iter().product();
    let inner: usize = dims[split + 1..].iter().product();
    let mut v = Vec::with_capacity(n);
    for a in 0..outer {
        for s in 0..dims[split] {
            for c in 0..inner {
                let blk = (a * half[split] + s / 2) * inner + c;
                v.push(blocks[blk][s % 2] as u64);
            }
        }
    }
    (v, half_n as u64)
}
