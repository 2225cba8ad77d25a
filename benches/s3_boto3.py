#!/usr/bin/env python3
"""boto3 side of benches/s3_store.rs: the same S3 calls the library makes, timed one by one.

  s3_boto3.py ENDPOINT BUCKET ENVELOPE_KEY ENVELOPE_FILE

Reads commands on stdin, answers each with one line of per-call nanoseconds (space-separated):
  get N           N x GetObject of ENVELOPE_KEY, body read fully (like the library's get)
  create N TAG    N x PutObject(IfNoneMatch="*") of the envelope bytes to fresh keys
                  (bench-boto3/<TAG>-<i>.kms), like the library's create
One client, made once and warmed up before the first command; path-style, us-east-1, the same
credentials the library uses.
"""
import sys
import time

import boto3
from botocore.config import Config


def main():
    endpoint, bucket, key, envelope_file = sys.argv[1:5]
    body = open(envelope_file, "rb").read()
    client = boto3.session.Session(
        aws_access_key_id="S3ONLYACCESSKEY",
        aws_secret_access_key="s3-only-secret-key",
        region_name="us-east-1",
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )
    client.get_object(Bucket=bucket, Key=key)["Body"].read()  # warm-up: connection, signer
    print("READY", flush=True)
    clock = time.perf_counter_ns
    for line in sys.stdin:
        words = line.split()
        times = []
        if words[0] == "get":
            for _ in range(int(words[1])):
                t = clock()
                client.get_object(Bucket=bucket, Key=key)["Body"].read()
                times.append(clock() - t)
        elif words[0] == "create":
            tag = words[2]
            for i in range(int(words[1])):
                t = clock()
                client.put_object(
                    Bucket=bucket, Key=f"bench-boto3/{tag}-{i}.kms", Body=body, IfNoneMatch="*"
                )
                times.append(clock() - t)
        else:
            sys.exit(f"unknown command {line!r}")
        print(" ".join(map(str, times)), flush=True)


if __name__ == "__main__":
    main()
