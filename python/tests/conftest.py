"""Fixtures of the Python tests: one moto server per session (tests/support/moto_launcher.py, as
the Rust and C++ tests start it: 127.0.0.1, ephemeral port, dummy credentials), seeded with a KMS
key, Secrets Manager wrap keys and an S3 bucket; storage of each kind; a KMS client whose registry
points at moto."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import uuid

# Never real AWS: dummy credentials, explicit region, no instance metadata, and a default endpoint
# on a closed loopback port (every client here is pointed at moto or a loopback peer explicitly).
os.environ.update(
    AWS_EC2_METADATA_DISABLED="true",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ENDPOINT_URL="http://127.0.0.1:9",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
import pytest  # noqa: E402

import cyborgdb_core as cyborgdb  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "cyborgdb-python-tests"


class Moto:
    def __init__(self) -> None:
        launcher = REPO / "tests/support/moto_launcher.py"
        python = os.environ.get("CYB_MOTO_PYTHON", sys.executable)
        self.process = subprocess.Popen(
            [python, str(launcher), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        line = self.process.stdout.readline().decode()
        assert line.startswith("PORT "), f"moto launcher said {line!r}"
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        self.process.stdin.close()  # the launcher stops at stdin EOF
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def moto():
    server = Moto()
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/cyborgdb-python", TargetKeyId=key)
    server.key_arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    sm = server.client("secretsmanager")
    sm.create_secret(Name="cyborgdb-python/wrap-key", SecretBinary=os.urandom(32))
    sm.create_secret(Name="cyborgdb-python/short-key", SecretBinary=os.urandom(16))
    server.client("s3").create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


def registry_yaml(moto: Moto) -> str:
    return f"""
kms:
  registry:
    vendor-default:
      provider: aws-kms
      key_id: alias/cyborgdb-python
      region: {REGION}
    customer-acme:
      provider: aws
      key_id: cyborgdb-python/wrap-key
      region: {REGION}
    short-key:
      provider: aws
      key_id: cyborgdb-python/short-key
      region: {REGION}
    missing-key:
      provider: aws-kms
      key_id: alias/does-not-exist
      region: {REGION}
"""


@pytest.fixture(scope="session")
def kms_client(moto):
    return cyborgdb.KMSClient(registry_yaml=registry_yaml(moto), endpoint_url=moto.endpoint)


@pytest.fixture
def resolver(kms_client):
    return cyborgdb.KEKResolver(kms_client)


def s3_storage(moto: Moto, prefix: str | None = None) -> cyborgdb.StorageConfig:
    return cyborgdb.StorageConfig.s3(
        BUCKET,
        region=REGION,
        endpoint=moto.endpoint,
        prefix=prefix or f"t/{uuid.uuid4().hex}",
        credentials=cyborgdb.S3Credentials("testing", "testing"),
    )


@pytest.fixture(params=["memory", "disk", "s3"])
def storage(request, tmp_path):
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        return cyborgdb.StorageConfig.memory()
    if request.param == "disk":
        return cyborgdb.StorageConfig.disk(tmp_path / "store")
    return s3_storage(request.getfixturevalue("moto"))


@pytest.fixture
def wrapped(kms_client):
    """A real envelope wrapped through moto's KMS for index "my_index", and its KEK."""
    return kms_client.wrap_new_kek("my_index", "vendor-default")
