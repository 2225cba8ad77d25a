//! Envelopes are interoperable with a service in another language: Python (boto3 and
//! `cryptography`, from the moto venv) follows schemas/wrapped_kek.md and opens what the library
//! wraps, and the library opens what Python wraps — for `aws-kms` and `aws`, against moto.

mod common;

use std::process::Command;

use common::moto::{client_with, moto, moto_python, unique};
use cyborgdb_kms::{Kek, KmsBlob, Provider};

const REGION: &str = "us-east-1";
const INDEX: &str = "tenant/orders é";

fn python(args: &[&str]) -> Vec<u8> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/interop.py");
    let output = Command::new(moto_python())
        .arg(script)
        .arg(&moto().endpoint)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let hex = String::from_utf8(output.stdout).unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn aws_kms_envelopes_round_trip_with_boto3() {
    let key = moto().create_kms_key(REGION);
    let client = client_with("k", Provider::AwsKms, &key);
    let (blob, kek) = client.wrap_new_kek(INDEX, "k").unwrap();
    let opened = python(&["kms-decrypt", &key, INDEX, &hex(&blob.wrapped_kek)]);
    assert_eq!(opened, kek.as_bytes());

    let theirs = Kek::generate();
    let wrapped = python(&["kms-encrypt", &key, INDEX, &hex(theirs.as_bytes())]);
    let blob = KmsBlob {
        wrapped_kek: wrapped,
        ..blob
    };
    assert_eq!(client.unwrap_kek(INDEX, &blob).unwrap(), theirs);
}

#[test]
fn aws_secrets_manager_envelopes_round_trip_with_python() {
    let secret = unique("interop/kek");
    moto().create_binary_secret(REGION, &secret, &[0x5a; 32]);
    let client = client_with("s", Provider::Aws, &secret);
    let (blob, kek) = client.wrap_new_kek(INDEX, "s").unwrap();
    let opened = python(&["sm-unwrap", &secret, "aws", INDEX, &hex(&blob.wrapped_kek)]);
    assert_eq!(opened, kek.as_bytes());

    let theirs = Kek::generate();
    let wrapped = python(&["sm-wrap", &secret, "aws", INDEX, &hex(theirs.as_bytes())]);
    let blob = KmsBlob {
        wrapped_kek: wrapped,
        ..blob
    };
    assert_eq!(client.unwrap_kek(INDEX, &blob).unwrap(), theirs);
}
