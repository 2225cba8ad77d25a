//! The moto server fixture of the Rust tests: one emulator per test binary, on 127.0.0.1 with an
//! ephemeral port, started on first use by `tests/support/moto_launcher.py serve`. The launcher
//! exits when its stdin closes, so the server goes away with the test process however it ends.
//! Also: SDK clients pointed at it, for the tests' own setup (creating keys, secrets, buckets).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Kept so the server lives as long as this process (its stdin EOF stops it).
    _stdin: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

/// The python of the venv that `scripts/bootstrap-moto.sh` made (or `$CYB_MOTO_PYTHON`).
pub fn moto_python() -> PathBuf {
    if let Some(python) = std::env::var_os("CYB_MOTO_PYTHON") {
        return python.into();
    }
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-moto/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/bootstrap-moto.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::spawn(&[]))
}

impl Moto {
    /// Starts a separate moto server for one test, with `env` added to its environment (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0` to make it check credentials). It stops when this value
    /// is dropped or [`Moto::kill`]ed.
    pub fn spawn(env: &[(&str, &str)]) -> Moto {
        let launcher =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_launcher.py");
        let mut child = Command::new(moto_python())
            .arg(launcher)
            .arg("serve")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start moto server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read moto port");
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("moto launcher said {line:?}, expected PORT <n>"));
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _stdin: Mutex::new(child.stdin.take().expect("piped stdin")),
            child: Mutex::new(child),
        }
    }

    /// Kills the server (SIGKILL) and waits until it is gone: its port refuses connections.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        child.wait().expect("reap moto server");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A KMS client pointed at the shared moto server with one slot `name` (`provider`, `key_id`,
/// region us-east-1, no role).
pub fn client_with(
    name: &str,
    provider: cyborgdb_kms::Provider,
    key_id: &str,
) -> cyborgdb_kms::KmsClient {
    let client = cyborgdb_kms::KmsClient::new(cyborgdb_kms::KmsClientOptions {
        endpoint_url: Some(moto().endpoint.clone()),
        ..cyborgdb_kms::KmsClientOptions::default()
    })
    .unwrap();
    client
        .add_slot(name, cyborgdb_kms::Slot::new(provider, key_id, "us-east-1"))
        .unwrap();
    client
}

/// A runtime for the tests' own SDK calls.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// SDK config for the emulator at `endpoint`: dummy static credentials, explicit region.
pub fn sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new("testing", "testing", None, None, "tests");
    runtime().block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load(),
    )
}

impl Moto {
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&sdk_config(&self.endpoint, region))
    }

    pub fn secrets(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&sdk_config(&self.endpoint, region))
    }

    /// An S3 client for the emulator (path-style addressing, dummy credentials, us-east-1).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&sdk_config(&self.endpoint, "us-east-1"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates the bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        runtime()
            .block_on(self.s3().create_bucket().bucket(name).send())
            .expect("moto CreateBucket");
    }

    /// Stores `bytes` at `bucket`/`key`, bypassing the library.
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        runtime()
            .block_on(
                self.s3()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.to_vec().into())
                    .send(),
            )
            .expect("moto PutObject");
    }

    /// The bytes at `bucket`/`key`, read bypassing the library.
    pub fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let s3 = self.s3();
        runtime().block_on(async {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("moto GetObject");
            out.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    /// Every key in `bucket`, sorted.
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        let out = runtime()
            .block_on(self.s3().list_objects_v2().bucket(bucket).send())
            .expect("moto ListObjectsV2");
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// A new symmetric KMS key in `region`; returns its ARN.
    pub fn create_kms_key(&self, region: &str) -> String {
        let out = runtime()
            .block_on(self.kms(region).create_key().send())
            .expect("moto CreateKey");
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    }

    /// An alias `alias/<name>` for `key_arn`; returns the alias name.
    pub fn create_alias(&self, region: &str, name: &str, key_arn: &str) -> String {
        let alias = format!("alias/{name}");
        runtime()
            .block_on(
                self.kms(region)
                    .create_alias()
                    .alias_name(&alias)
                    .target_key_id(key_arn)
                    .send(),
            )
            .expect("moto CreateAlias");
        alias
    }

    /// A Secrets Manager secret holding `value` as SecretBinary; returns its ARN.
    pub fn create_binary_secret(&self, region: &str, name: &str, value: &[u8]) -> String {
        let out = runtime()
            .block_on(
                self.secrets(region)
                    .create_secret()
                    .name(name)
                    .secret_binary(aws_smithy_types::Blob::new(value))
                    .send(),
            )
            .expect("moto CreateSecret");
        out.arn().unwrap().to_owned()
    }

    /// A Secrets Manager secret holding `value` as SecretString; returns its ARN.
    pub fn create_string_secret(&self, region: &str, name: &str, value: &str) -> String {
        let out = runtime()
            .block_on(
                self.secrets(region)
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send(),
            )
            .expect("moto CreateSecret");
        out.arn().unwrap().to_owned()
    }

    /// SDK config holding the credentials of `role_arn` (assumed through moto's STS), i.e. of the
    /// role's account: what a BYOK customer uses to create keys in their own account.
    pub fn customer_config(&self, region: &str, role_arn: &str) -> aws_config::SdkConfig {
        let sts = aws_sdk_sts::Client::new(&sdk_config(&self.endpoint, region));
        let assumed = runtime()
            .block_on(
                sts.assume_role()
                    .role_arn(role_arn)
                    .role_session_name("customer-setup")
                    .send(),
            )
            .expect("moto AssumeRole");
        let c = assumed.credentials().expect("credentials");
        let creds = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "customer",
        );
        runtime().block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_owned()))
                .endpoint_url(&self.endpoint)
                .credentials_provider(creds)
                .load(),
        )
    }

    /// Deletes a secret at once (no recovery window).
    pub fn delete_secret(&self, region: &str, name: &str) {
        runtime()
            .block_on(
                self.secrets(region)
                    .delete_secret()
                    .secret_id(name)
                    .force_delete_without_recovery(true)
                    .send(),
            )
            .expect("moto DeleteSecret");
    }
}

/// A name no other test of this run uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
