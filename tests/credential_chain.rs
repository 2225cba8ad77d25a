//! The documented credential chain works with the AWS SDK's trimmed features (Cargo.toml turns the
//! SDK's default features off): static keys from the shared credentials file, web identity
//! (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, STS `AssumeRoleWithWebIdentity`) and the
//! container (ECS) endpoint each sign the KMS request, as our fault peer sees on the wire. A
//! profile that uses `credential_process` or SSO — features left out — fails with a clear error,
//! runs no program and sends no KMS request.
//!
//! Each case runs in a child process (the credential chain reads the process environment): the
//! parent starts the peer and this test binary's `#[ignore]`d `child_wraps` with the case's
//! environment, then checks what the peer received.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::fault_peer::{FaultPeer, Reply, Request};
use cyborgdb_kms::{KmsClient, KmsClientOptions, Provider, Slot};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// The peer: STS `AssumeRoleWithWebIdentity`, the ECS credentials endpoint, KMS `Encrypt`.
fn peer() -> FaultPeer {
    FaultPeer::start(|request: &Request| {
        if request.query_action().as_deref() == Some("AssumeRoleWithWebIdentity") {
            return web_identity_reply("AKIDWEBIDENTITY");
        }
        if request.path == "/ecs-credentials" {
            return Reply::json(
                r#"{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"container-secret","Token":"container-token","Expiration":"2099-01-01T00:00:00Z"}"#,
            );
        }
        Reply::kms_encrypt(KEY_ARN, &[7; 64])
    })
}

/// A successful STS `AssumeRoleWithWebIdentity` answer granting `access_key`.
fn web_identity_reply(access_key: &str) -> Reply {
    Reply::xml(
        200,
        &format!(
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:cyborgdb:kms</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/cyborgdb-irsa/cyborgdb</Arn>
      <AssumedRoleId>AROAEXAMPLE:cyborgdb</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{access_key}</AccessKeyId>
      <SecretAccessKey>web-identity-secret</SecretAccessKey>
      <SessionToken>web-identity-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>7f3a6c1e-0000-4000-8000-000000000001</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#
        ),
    )
}

/// Runs `child_wraps` with the chain's static environment keys removed, `AWS_ENDPOINT_URL` set to
/// the peer (KMS and STS go there) and `env` added; returns what it printed: `CHILD_OK` or
/// `CHILD_KIND <kind>` and `CHILD_MESSAGE <message>`.
fn run_child(peer: &FaultPeer, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_wraps",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", peer.endpoint())
        .envs(env.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{env:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The access key ids that signed the KMS requests the peer received.
fn kms_signers(peer: &FaultPeer) -> Vec<String> {
    peer.requests()
        .iter()
        .filter(|r| r.target() == Some("TrentService.Encrypt"))
        .map(|r| r.access_key_id().unwrap_or("<unsigned>").to_owned())
        .collect()
}

/// The child's line `<name> <value>`.
fn child_line(stdout: &str, name: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// Run by the parent tests only: wraps a new KEK through an `aws-kms` slot (endpoint from
/// `AWS_ENDPOINT_URL`, credentials from the chain) and prints the outcome.
#[test]
#[ignore = "child process of the credential chain tests"]
fn child_wraps() {
    let client = KmsClient::new(KmsClientOptions::default()).unwrap();
    client
        .add_slot("prod", Slot::new(Provider::AwsKms, KEY_ARN, "us-east-1"))
        .unwrap();
    match client.wrap_new_kek("idx", "prod") {
        Ok(_) => println!("\nCHILD_OK"),
        Err(err) => {
            println!("\nCHILD_KIND {:?}", err.kind());
            println!("CHILD_MESSAGE {}", err.message());
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn shared_credentials_file_signs_requests() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = write(
        dir.path(),
        "credentials",
        "[default]\naws_access_key_id = AKIDPROFILEFILE\naws_secret_access_key = profile-secret\n",
    );
    let peer = peer();
    let out = run_child(&peer, &[("AWS_SHARED_CREDENTIALS_FILE", &credentials)]);
    assert!(out.lines().any(|l| l == "CHILD_OK"), "{out}");
    assert_eq!(kms_signers(&peer), ["AKIDPROFILEFILE"]);
}

#[test]
fn web_identity_credentials_sign_requests() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl");
    let peer = peer();
    let out = run_child(
        &peer,
        &[
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/cyborgdb-irsa",
            ),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
            ("AWS_ROLE_SESSION_NAME", "cyborgdb"),
        ],
    );
    assert!(out.lines().any(|l| l == "CHILD_OK"), "{out}");
    assert_eq!(peer.count_action("AssumeRoleWithWebIdentity"), 1);
    let sts = peer
        .requests()
        .into_iter()
        .find(|r| r.query_action().as_deref() == Some("AssumeRoleWithWebIdentity"))
        .unwrap();
    assert_eq!(
        sts.form_param("WebIdentityToken").as_deref(),
        Some("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
    );
    assert_eq!(kms_signers(&peer), ["AKIDWEBIDENTITY"]);
}

#[test]
fn container_credentials_endpoint_signs_requests() {
    let peer = peer();
    let uri = format!("{}/ecs-credentials", peer.endpoint());
    let out = run_child(&peer, &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri)]);
    assert!(out.lines().any(|l| l == "CHILD_OK"), "{out}");
    assert_eq!(kms_signers(&peer), ["AKIDCONTAINER"]);
}

#[test]
fn credential_process_profile_is_refused_without_running_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("credential-process-ran");
    let config = write(
        dir.path(),
        "config",
        &format!(
            "[default]\ncredential_process = /usr/bin/touch {}\n",
            marker.display()
        ),
    );
    let peer = peer();
    let out = run_child(&peer, &[("AWS_CONFIG_FILE", &config)]);
    assert_eq!(
        child_line(&out, "CHILD_KIND").as_deref(),
        Some("KmsAccessDenied"),
        "{out}"
    );
    let message = child_line(&out, "CHILD_MESSAGE").unwrap();
    assert!(
        message.contains("the credential configuration is invalid"),
        "{message}"
    );
    assert!(!marker.exists(), "the credential_process program ran");
    assert!(kms_signers(&peer).is_empty());
}

#[test]
fn sso_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "config",
        "[default]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n\
         \n[sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n",
    );
    let peer = peer();
    let out = run_child(&peer, &[("AWS_CONFIG_FILE", &config)]);
    assert_eq!(
        child_line(&out, "CHILD_KIND").as_deref(),
        Some("KmsAccessDenied"),
        "{out}"
    );
    let message = child_line(&out, "CHILD_MESSAGE").unwrap();
    assert!(
        message.contains("the credential configuration is invalid"),
        "{message}"
    );
    assert!(kms_signers(&peer).is_empty());
    assert!(peer.requests().is_empty(), "{:?}", peer.requests());
}
