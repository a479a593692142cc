//! Checking a plugin file before `dlopen`: a damaged file can crash the dynamic loader (a truncated
//! library is mapped past its end and the process dies of SIGBUS with no message), so the file is
//! read first, without mapping or running anything: its ELF header (64-bit, this machine's byte
//! order and architecture, a shared object), every loadable segment inside the file, and a defined
//! dynamic symbol `GetPjrtApi`. Only the headers and the dynamic symbol table are read (through the
//! `object` crate's lazy `ReadCache`), never the whole file (plugins are 200+ MB).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, Object, ObjectKind, ObjectSymbol, ReadCache};

/// The size of a 64-bit ELF header.
const EHDR64: u64 = 64;

/// Checks that `path` can be handed to `dlopen` as a PJRT plugin; `Err` says what is wrong.
pub fn check_plugin_file(path: &Path) -> std::result::Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read its size: {e}"))?
        .len();
    if size < EHDR64 {
        return Err(format!(
            "the file is {size} bytes, too short for an ELF header: not a shared library (truncated?)"
        ));
    }
    let mut head = [0u8; 64];
    file.read_exact(&mut head)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    if head[..4] != *b"\x7fELF" {
        return Err(format!(
            "not an ELF shared library (it starts with {:02x?})",
            &head[..4]
        ));
    }
    if head[4] != 2 {
        return Err(format!(
            "a {} ELF file; PJRT plugins are 64-bit",
            if head[4] == 1 { "32-bit" } else { "malformed" }
        ));
    }
    let cache = ReadCache::new(file);
    let elf = ElfFile64::<Endianness, _>::parse(&cache)
        .map_err(|e| format!("a malformed ELF file ({e}): damaged or truncated?"))?;
    if elf.kind() != ObjectKind::Dynamic {
        return Err(format!(
            "an ELF file of kind {:?}, not a shared library",
            elf.kind()
        ));
    }
    let arch = format!("{:?}", elf.architecture()).to_ascii_lowercase();
    let host = std::env::consts::ARCH;
    if arch != host {
        return Err(format!("a library for {arch}, and this machine is {host}"));
    }
    let endian = elf.endian();
    for ph in elf.elf_program_headers() {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        let end = ph.p_offset(endian).saturating_add(ph.p_filesz(endian));
        if end > size {
            return Err(format!(
                "a loadable segment ends at byte {end}, but the file has {size} bytes: truncated"
            ));
        }
    }
    let found = elf
        .dynamic_symbols()
        .any(|s| s.name_bytes() == Ok(b"GetPjrtApi".as_slice()) && !s.is_undefined());
    if !found {
        return Err(
            "a shared library without a `GetPjrtApi` symbol: not a PJRT plugin".to_string(),
        );
    }
    Ok(())
}
