//! What the fuzz targets (fuzz/, docs/fuzzing.md) found, replayed as ordinary tests: one test per
//! finding, with the minimized input. The raw inputs are kept in fuzz/regressions/<target>/ and
//! replayed by every `scripts/fuzz.sh` run.

use cyborgdb_kms::{ErrorKind, Registry};

/// registry_yaml, `fuzz/regressions/registry_yaml/finding9-control-char-slot-name`: a slot name
/// holding control characters (there U+0005 and U+007F) loaded, and the summary log line printed
/// it raw (issue #10, finding 9). Found in 3 s of fuzzing.
#[test]
fn a_slot_name_with_control_characters_is_refused() {
    for name in [
        "\\u0005\\u0005[x",
        "a\\u007Fb",
        "line\\nbreak",
        "bidi\\u202Eevil",
    ] {
        let yaml = format!(
            "kms:\n  registry:\n    \"{name}\":\n      provider: aws-kms\n      key_id: k\n      region: us-east-1\n"
        );
        let result = Registry::from_yaml_str_with_env(&yaml, |_| None);
        let err = result.expect_err(&format!("slot name {name} loaded"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
        assert!(!err.message().chars().any(char::is_control), "{err:?}");
    }
}
