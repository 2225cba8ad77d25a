"""Speed goals of the Python package (issue #11), measured against a release wheel:

  1. get_index_kms on Disk vs a plain open().read() of the same file     goal <= 1.5x
  2. cache-hit KEKResolver.resolve, median                                goal <= 400 ns
  3. a pure-Python thread's throughput while 8 threads are blocked in
     unwraps against a slow (25 ms) loopback KMS peer, vs solo             goal >= 90 %
  4. aws-kms unwrap through the resolver (miss) vs boto3 kms.decrypt,
     same moto server, same run                                          goal <= 0.7x

Usage (from the repository root, after scripts/bootstrap-moto.sh):
  .venv-moto/bin/maturin build --release -m python/Cargo.toml --out target/wheels-release
  .venv-moto/bin/pip install --force-reinstall --no-deps target/wheels-release/cyborgdb_core-*.whl
  .venv-moto/bin/python python/benches/bench_python.py
"""

import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import conftest  # noqa: E402  (sets the dummy AWS environment; starts moto like the tests)
import cyborgdb_core as cyborgdb  # noqa: E402


def per_call_ns(fn, calls, rounds):
    """Median over `rounds` of the mean time of one call in a batch of `calls`."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def bench_disk_get(results):
    with tempfile.TemporaryDirectory() as root:
        config = cyborgdb.StorageConfig.disk(root)
        blob = cyborgdb.KMSBlob(kms_name="vendor-default", provider="aws-kms", key_id="alias/k" * 8,
                                region="us-east-1", wrapped_kek=os.urandom(184), version=1)
        cyborgdb.push_index_kms(config, "orders", blob)
        path = os.path.join(root, "orders.kms")

        def plain_read():
            with open(path, "rb") as f:
                f.read()

        get = lambda: cyborgdb.get_index_kms(config, "orders")  # noqa: E731
        plain, ours = [], []
        for _ in range(5):  # interleaved, so both see the same machine state
            plain.append(per_call_ns(plain_read, 2000, 5))
            ours.append(per_call_ns(get, 2000, 5))
        p, o = statistics.median(plain), statistics.median(ours)
        results.append(("get_index_kms (Disk) vs open().read()", f"{o / 1000:.1f} us vs {p / 1000:.1f} us = {o / p:.2f}x", "<= 1.5x", o / p <= 1.5))


def bench_resolve_hit(results, moto):
    client = cyborgdb.KMSClient(registry_yaml=conftest.registry_yaml(moto), endpoint_url=moto.endpoint)
    resolver = cyborgdb.KEKResolver(client)
    config = cyborgdb.StorageConfig.memory()
    resolver.create_index(config, "orders", kms_name="vendor-default")
    resolver.resolve(config, "orders")
    resolve = resolver.resolve
    ns = per_call_ns(lambda: resolve(config, "orders"), 2000, 51)
    results.append(("KEKResolver.resolve, cache hit (median of 51 x 2000-call means)", f"{ns:.0f} ns", "<= 400 ns", ns <= 400))


def spin(seconds):
    """Pure-Python work: loop iterations completed in `seconds`."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
        n += sum((1, 2, 3))
    return n


def bench_gil(results):
    peer = subprocess.Popen([sys.executable, str(HERE.parent / "tests/kms_peer.py"), "ok", "0.025"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(peer.stdout.readline().split()[1])
    try:
        client = cyborgdb.KMSClient(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
        client.add_slot("slow", provider="aws-kms", key_id="alias/slow", region="us-east-1")
        blob, kek = client.wrap_new_kek("orders", "slow")
        assert client.unwrap_kek("orders", blob) == kek
        ratios, total_unwraps = [], 0
        for _ in range(5):  # paired rounds: solo, then with 8 blocked unwrappers
            solo = spin(1.0)
            stop = threading.Event()
            unwraps = [0] * 8

            def unwrapper(i):
                while not stop.is_set():
                    client.unwrap_kek("orders", blob)
                    unwraps[i] += 1

            workers = [threading.Thread(target=unwrapper, args=(i,)) for i in range(8)]
            for w in workers:
                w.start()
            time.sleep(0.1)  # benchmark warm-up, not synchronization
            busy = spin(1.0)
            stop.set()
            for w in workers:
                w.join()
            ratios.append(busy / solo)
            total_unwraps += sum(unwraps)
        ratio = statistics.median(ratios)
        per_call_ms = 5 * 1.1 * 8 * 1000 / max(1, total_unwraps)
        shown = ", ".join(f"{r * 100:.0f}" for r in ratios)
        results.append(("pure-Python thread vs 8 threads in 25 ms unwraps (median of 5 paired rounds)", f"{ratio * 100:.1f} % of solo (rounds: {shown} %; ~{per_call_ms:.0f} ms per unwrap)", ">= 90 %", ratio >= 0.9))
    finally:
        peer.stdin.close()
        peer.wait()


def bench_kms_unwrap(results, moto):
    client = cyborgdb.KMSClient(registry_yaml=conftest.registry_yaml(moto), endpoint_url=moto.endpoint)
    resolver = cyborgdb.KEKResolver(client, ttl=0)  # every resolve is a miss: read + kms:Decrypt
    config = cyborgdb.StorageConfig.memory()
    resolver.create_index(config, "orders", kms_name="vendor-default")
    blob = cyborgdb.get_index_kms(config, "orders")
    kms = moto.client("kms")
    context = {"cyborgdb:context": "kek-v1", "cyborgdb:index": "orders"}
    decrypt = lambda: kms.decrypt(KeyId=blob.key_id, CiphertextBlob=blob.wrapped_kek, EncryptionContext=context)  # noqa: E731
    resolve = lambda: resolver.resolve(config, "orders")  # noqa: E731
    ours, theirs = [], []
    for _ in range(5):
        theirs.append(per_call_ns(decrypt, 40, 3))
        ours.append(per_call_ns(resolve, 40, 3))
    o, t = statistics.median(ours), statistics.median(theirs)
    results.append(("aws-kms unwrap via resolver (miss) vs boto3 kms.decrypt (moto)", f"{o / 1e6:.2f} ms vs {t / 1e6:.2f} ms = {o / t:.2f}x", "<= 0.7x", o / t <= 0.7))


def main():
    moto = conftest.Moto()
    try:
        kms = moto.client("kms")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/cyborgdb-python", TargetKeyId=key)
        moto.client("secretsmanager").create_secret(Name="cyborgdb-python/wrap-key", SecretBinary=os.urandom(32))
        results = []
        bench_disk_get(results)
        bench_resolve_hit(results, moto)
        bench_gil(results)
        bench_kms_unwrap(results, moto)
    finally:
        moto.stop()
    print(f"cyborgdb_core {cyborgdb.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for name, value, goal, met in results:
        print(f"| {name} | {value} | {goal} | {'met' if met else 'NOT met'} |")


if __name__ == "__main__":
    main()
