//! Hooks for the fuzz targets in `fuzz/` (cargo feature `fuzzing`; not part of the API, never in
//! the default build). Each function is a private one passed through unchanged, so the targets
//! fuzz exactly the code the library runs.

use crate::blob::KmsBlob;
use crate::index_name::IndexName;

/// Largest encoded envelope a reader accepts (the decoder's first check).
pub const MAX_ENCODED_LEN: usize = crate::codec::MAX_ENCODED_LEN;

/// Decodes an envelope stored for `index`: the decoder `get` runs on stored bytes. The error is
/// the reason the bytes are rejected.
pub fn decode_envelope(index: &IndexName, bytes: &[u8]) -> Result<KmsBlob, String> {
    crate::codec::decode(index, bytes)
}

/// Decodes an envelope without knowing its index: the decoder listing runs on hashed keys.
/// Returns the index name the envelope records with the blob.
pub fn decode_named_envelope(bytes: &[u8]) -> Result<(String, KmsBlob), String> {
    crate::codec::decode_named(bytes)
}

/// Encodes `blob` for `index` with `created_at` as given, as create and push store it (no
/// validation: callers validate first).
pub fn encode_envelope(index: &IndexName, blob: &KmsBlob, created_at: i64) -> Vec<u8> {
    crate::codec::encode(index, blob, created_at)
}

/// Decodes one stored custody-audit line (without its newline): the strict decoder every log
/// read runs. The error is the reason the line is refused.
pub fn decode_audit_line(line: &[u8]) -> Result<crate::audit::AuditRecord, String> {
    crate::audit::AuditRecord::decode(line).map_err(|e| e.to_string())
}
