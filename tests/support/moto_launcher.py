#!/usr/bin/env python3
"""Runs moto server, the AWS API emulator the tests use, on 127.0.0.1 with an ephemeral port.

  moto_launcher.py serve            prints "PORT <n>" on stdout, serves until stdin reaches EOF
                                    (so the server dies with the test process that started it)
  moto_launcher.py start STATE_DIR  starts a detached server, writes STATE_DIR/port and
                                    STATE_DIR/pid, returns once it answers (CTest fixture setup)
  moto_launcher.py stop STATE_DIR   stops that server and removes the files (fixture cleanup)

`start` also seeds the resources the C/C++ tests use (with boto3, against the new server):
  KMS key with alias alias/cyborgdb-test (us-east-1)
  secret cyborgdb-test/wrap-key   SecretBinary, 32 random bytes (us-east-1)
  secret cyborgdb-test/short-key  SecretBinary, 16 bytes: a wrong-size wrap key (us-east-1)
  S3 bucket cyborgdb-test-bucket  (us-east-1)

Every server here makes S3 PutObject atomic, as real S3 is: moto checks `If-None-Match: *` and
then writes, in two steps that its request threads can interleave, so two racing conditional
creates could both succeed. The tests race creates to prove the library uses S3's conditional
write; they must test the library against S3's guarantee, not against moto's race.

A detached server also stops by itself after --max-seconds (default 3600), so a crashed test run
never leaves it behind for long. Nothing here listens on anything but 127.0.0.1.
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time


def run_server(max_seconds, on_ready, wait_for_stop):
    # Dummy credentials and a region for anything moto itself might look up; never real AWS.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import logging

    from moto.server import ThreadedMotoServer

    # No per-request access log: it floods the test output and costs every request time.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    serialize_s3_put_object()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    on_ready(port)
    stopper = threading.Timer(max_seconds, lambda: os.kill(os.getpid(), signal.SIGTERM))
    stopper.daemon = True
    stopper.start()
    try:
        wait_for_stop()
    finally:
        server.stop()


def serialize_s3_put_object():
    """Runs moto's S3 PutObject handler under one lock (see the module docstring)."""
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    unlocked = S3Response.put_object

    def put_object(self, *args, **kwargs):
        with lock:
            return unlocked(self, *args, **kwargs)

    S3Response.put_object = put_object


def serve(args):
    def ready(port):
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()

    def wait_for_eof():
        while sys.stdin.read(4096):
            pass

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_server(args.max_seconds, ready, wait_for_eof)


def serve_detached(args):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready(port):
        tmp = os.path.join(args.state_dir, "port.tmp")
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, os.path.join(args.state_dir, "port"))

    run_server(args.max_seconds, ready, stop.wait)


def start(args):
    os.makedirs(args.state_dir, exist_ok=True)
    stop(args)  # a server left by an interrupted run
    log = open(os.path.join(args.state_dir, "moto.log"), "w")
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "_detached", args.state_dir,
         "--max-seconds", str(args.max_seconds)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(args.state_dir, "pid"), "w") as f:
        f.write(f"{child.pid}\n")
    port_file = os.path.join(args.state_dir, "port")
    deadline = time.monotonic() + 60
    while not os.path.exists(port_file):
        if child.poll() is not None:
            sys.exit(f"moto server exited with {child.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            child.kill()
            sys.exit("moto server did not start within 60 s")
        time.sleep(0.05)
    port = open(port_file).read().strip()
    seed(f"http://127.0.0.1:{port}")
    print(f"moto server on 127.0.0.1:{port} (pid {child.pid}), seeded")


def seed(endpoint):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    kms = session.client("kms", endpoint_url=endpoint)
    key = kms.create_key(Description="cyborgdb-kms C++ tests")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/cyborgdb-test", TargetKeyId=key)
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    secrets.create_secret(Name="cyborgdb-test/wrap-key", SecretBinary=os.urandom(32))
    secrets.create_secret(Name="cyborgdb-test/short-key", SecretBinary=os.urandom(16))
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="cyborgdb-test-bucket")


def stop(args):
    pid_file = os.path.join(args.state_dir, "pid")
    try:
        pid = int(open(pid_file).read())
    except (OSError, ValueError):
        pid = None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in ("pid", "port"):
        try:
            os.remove(os.path.join(args.state_dir, name))
        except FileNotFoundError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["serve", "start", "stop", "_detached"])
    parser.add_argument("state_dir", nargs="?")
    parser.add_argument("--max-seconds", type=float, default=3600)
    args = parser.parse_args()
    if args.mode != "serve" and not args.state_dir:
        parser.error(f"{args.mode} needs STATE_DIR")
    {"serve": serve, "start": start, "stop": stop, "_detached": serve_detached}[args.mode](args)


if __name__ == "__main__":
    main()
