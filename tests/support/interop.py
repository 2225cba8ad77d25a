#!/usr/bin/env python3
"""Another-language peer for tests/kms_interop.rs: produces and opens envelopes exactly as
schemas/wrapped_kek.md documents, with boto3 (KMS, Secrets Manager) and `cryptography` (AES-GCM).

  interop.py ENDPOINT kms-decrypt KEY_ID INDEX WRAPPED_HEX        -> prints the KEK in hex
  interop.py ENDPOINT kms-encrypt KEY_ID INDEX KEK_HEX            -> prints wrapped_kek in hex
  interop.py ENDPOINT sm-unwrap SECRET_ID PROVIDER INDEX WRAPPED_HEX -> prints the KEK in hex
  interop.py ENDPOINT sm-wrap SECRET_ID PROVIDER INDEX KEK_HEX    -> prints wrapped_kek in hex
"""
import os
import struct
import sys

import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def aad(provider, index):
    p, i = provider.encode(), index.encode()
    return b"cyborgdb-kms:kek-v1\0" + struct.pack(">H", len(p)) + p + struct.pack(">H", len(i)) + i


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def main():
    endpoint, command, *args = sys.argv[1:]
    if command in ("kms-decrypt", "kms-encrypt"):
        key_id, index, data = args
        context = {"cyborgdb:context": "kek-v1", "cyborgdb:index": index}
        kms = client("kms", endpoint)
        if command == "kms-decrypt":
            out = kms.decrypt(KeyId=key_id, CiphertextBlob=bytes.fromhex(data),
                              EncryptionContext=context)["Plaintext"]
            assert len(out) == 32
        else:
            out = kms.encrypt(KeyId=key_id, Plaintext=bytes.fromhex(data),
                              EncryptionContext=context)["CiphertextBlob"]
    else:
        secret_id, provider, index, data = args
        wrap_key = client("secretsmanager", endpoint).get_secret_value(SecretId=secret_id)["SecretBinary"]
        if command == "sm-unwrap":
            wrapped = bytes.fromhex(data)
            assert len(wrapped) == 61 and wrapped[0] == 1
            out = AESGCM(wrap_key).decrypt(wrapped[1:13], wrapped[13:], aad(provider, index))
        else:
            nonce = os.urandom(12)
            out = b"\x01" + nonce + AESGCM(wrap_key).encrypt(nonce, bytes.fromhex(data), aad(provider, index))
    print(out.hex())


if __name__ == "__main__":
    main()
