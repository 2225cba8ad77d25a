#!/usr/bin/env python3
"""The boto3 side of benches/kms_providers.rs: the same kms.Decrypt, against the same moto server,
of the same envelope the library unwraps, so both are measured in one run.

Usage: boto3_kms_worker.py ENDPOINT KEY_ID CIPHERTEXT_B64 INDEX_NAME
Then reads commands on stdin: a number N runs N Decrypts and prints one line with each call's
time in nanoseconds; "quit" exits. The client is created once, as a long-lived service would.
"""
import base64
import sys
import time

import boto3


def main():
    endpoint, key_id, ciphertext_b64, index_name = sys.argv[1:5]
    kms = boto3.client(
        "kms", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing")
    ciphertext = base64.b64decode(ciphertext_b64)
    context = {"cyborgdb:context": "kek-v1", "cyborgdb:index": index_name}
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        times = []
        for _ in range(int(command)):
            start = time.perf_counter_ns()
            plaintext = kms.decrypt(
                KeyId=key_id, CiphertextBlob=ciphertext, EncryptionContext=context)["Plaintext"]
            times.append(time.perf_counter_ns() - start)
            if len(plaintext) != 32:
                sys.exit(f"Decrypt returned {len(plaintext)} bytes")
        print(" ".join(map(str, times)), flush=True)


if __name__ == "__main__":
    main()
