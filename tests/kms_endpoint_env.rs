//! Without an explicit endpoint, the KMS client follows the SDK's endpoint resolution:
//! `AWS_ENDPOINT_URL_<SERVICE>` first, then `AWS_ENDPOINT_URL`. One test in its own binary,
//! because it changes the process environment.

mod common;

use common::moto::moto;
use cyborgdb_kms::{ErrorKind, KmsClient, KmsClientOptions, Provider, Slot};

#[test]
fn service_and_global_endpoint_variables_are_honoured() {
    let moto = moto();
    let key = moto.create_kms_key("us-east-1");
    let slot = Slot::new(Provider::AwsKms, key, "us-east-1");
    // .cargo/config.toml points AWS_ENDPOINT_URL at a closed loopback port: with only that,
    // the client cannot reach KMS.
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").as_deref(),
        Ok("http://127.0.0.1:9")
    );
    let mut options = KmsClientOptions::default();
    options.timeouts.max_attempts = Some(1);
    let global_only = KmsClient::new(options.clone()).unwrap();
    global_only.add_slot("k", slot.clone()).unwrap();
    let err = global_only.wrap_new_kek("idx", "k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{err:?}");

    // The service-specific variable wins over the global one.
    std::env::set_var("AWS_ENDPOINT_URL_KMS", &moto.endpoint);
    let per_service = KmsClient::new(options).unwrap();
    per_service.add_slot("k", slot).unwrap();
    let (blob, kek) = per_service.wrap_new_kek("idx", "k").unwrap();
    assert_eq!(per_service.unwrap_kek("idx", &blob).unwrap(), kek);
}
