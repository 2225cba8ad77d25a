//! Regenerates the C header `include/cyborgdb_core/index_kms.h` with cbindgen, using
//! `cbindgen.toml`, from the files of `src/ffi/` only: the header declares what the C ABI module
//! defines and nothing else (public constants and types of the Rust API elsewhere in the crate
//! never leak into the C namespace). The header is committed; CI fails if a build changes it.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let header = crate_dir.join("include/cyborgdb_core/index_kms.h");

    // cbindgen parses src/ffi/mod.rs and the modules it declares (src/ffi/*.rs), nothing else.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"));
    match builder.generate() {
        // write_to_file leaves the file alone when the content is unchanged.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(e) => panic!("cbindgen could not generate {}: {e}", header.display()),
    }
}
