//! Regenerates the C header `include/cyborgdb_core/index_kms.h` from `src/ffi` with cbindgen,
//! using `cbindgen.toml` — the same output as `cbindgen --config cbindgen.toml --crate cyborgdb-kms`.
//! The header is committed; CI fails if a build changes it.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let header = crate_dir.join("include/cyborgdb_core/index_kms.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        // write_to_file leaves the file alone when the content is unchanged.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(e) => panic!("cbindgen could not generate {}: {e}", header.display()),
    }
}
