"""The C ABI side of the interop tests: drives libcyborgdb_kms.so through ctypes in its own
process (so nothing is shared with the Python extension but the stored bytes).

  c_abi_peer.py LIB STORAGE write INDEX      envelope fields as JSON on stdin (wrapped_kek in hex)
  c_abi_peer.py LIB STORAGE read INDEX       prints the envelope as JSON
  c_abi_peer.py LIB STORAGE resolve INDEX ENDPOINT REGISTRY_FILE   prints the KEK in hex

STORAGE is disk:<root> or s3:<endpoint>,<bucket>,<prefix> (credentials testing/testing).
"""

import ctypes
import json
import sys


class Str(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class Bytes(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


class Timeouts(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("connect", "attempt", "operation", "attempts", "backoff")]


class S3Credentials(ctypes.Structure):
    _fields_ = [("access_key", Str), ("secret_key", Str), ("session_token", Str)]


# The layouts of cyb_s3_options and cyb_kms_client_options (include/cyborgdb_core/index_kms.h),
# field for field: ctypes zero-fills what the peer leaves unset, as `= {0}` does in C.
class S3Options(ctypes.Structure):
    _fields_ = [("prefix", Str), ("region", Str), ("endpoint", Str),
                ("credentials", ctypes.POINTER(S3Credentials)), ("timeouts", Timeouts),
                ("retry_mode", ctypes.c_uint32), ("server_side_encryption", ctypes.c_uint32),
                ("sse_kms_key_id", Str), ("expected_bucket_owner", Str),
                ("default_credentials_with_endpoint", ctypes.c_bool)]


class RegionEndpoint(ctypes.Structure):
    _fields_ = [("region", Str), ("url", Str)]


class ClientOptions(ctypes.Structure):
    _fields_ = [("timeouts", Timeouts), ("endpoint_url", Str),
                ("allow_local_provider", ctypes.c_bool), ("allow_insecure_http", ctypes.c_bool),
                ("retry_mode", ctypes.c_uint32), ("kms_endpoint_url", Str),
                ("secrets_manager_endpoint_url", Str), ("sts_endpoint_url", Str),
                ("kms_region_endpoint_urls", ctypes.POINTER(RegionEndpoint)),
                ("kms_region_endpoint_url_count", ctypes.c_size_t)]


def text(value: str) -> Str:
    data = value.encode()
    return Str(data, len(data))


def main():
    lib_path, storage, command, index, *rest = sys.argv[1:]
    lib = ctypes.CDLL(lib_path)
    lib.cyb_last_error_message.restype = ctypes.c_char_p
    for getter in ("kms_name", "provider", "key_id", "region"):
        getattr(lib, f"cyb_kms_blob_{getter}").restype = Str
    lib.cyb_kms_blob_wrapped_kek.restype = Bytes
    lib.cyb_kms_blob_version.restype = ctypes.c_uint32
    lib.cyb_kms_blob_created_at.restype = ctypes.c_int64

    def check(code):
        if code != 0:
            raise SystemExit(f"C ABI error {code}: {lib.cyb_last_error_message().decode()}")

    config = ctypes.c_void_p()
    if storage.startswith("disk:"):
        root = storage[5:].encode()
        check(lib.cyb_storage_config_new_disk(root, len(root), ctypes.byref(config)))
    else:
        endpoint, bucket, prefix = storage[3:].split(",")
        creds = S3Credentials(text("testing"), text("testing"), Str(None, 0))
        options = S3Options(text(prefix), text("us-east-1"), text(endpoint), ctypes.pointer(creds))
        check(lib.cyb_storage_config_new_s3(bucket.encode(), len(bucket), ctypes.byref(options),
                                            ctypes.byref(config)))
    name = index.encode()
    if command == "write":
        fields = json.load(sys.stdin)
        blob = ctypes.c_void_p()
        check(lib.cyb_kms_blob_new(ctypes.byref(blob)))
        for field in ("kms_name", "provider", "key_id", "region"):
            value = fields[field].encode()
            check(getattr(lib, f"cyb_kms_blob_set_{field}")(blob, value, len(value)))
        wrapped = bytes.fromhex(fields["wrapped_kek"])
        check(lib.cyb_kms_blob_set_wrapped_kek(blob, wrapped, len(wrapped)))
        check(lib.cyb_kms_blob_set_version(blob, ctypes.c_uint32(fields["version"])))
        check(lib.cyb_kms_blob_set_created_at(blob, ctypes.c_int64(fields["created_at"])))
        check(lib.cyb_index_kms_create(config, name, len(name), blob))
        lib.cyb_kms_blob_free(blob)
    elif command == "read":
        blob = ctypes.c_void_p()
        check(lib.cyb_index_kms_get(config, name, len(name), ctypes.byref(blob)))
        out = {}
        for field in ("kms_name", "provider", "key_id", "region"):
            s = getattr(lib, f"cyb_kms_blob_{field}")(blob)
            out[field] = ctypes.string_at(s.data, s.len).decode() if s.len else ""
        b = lib.cyb_kms_blob_wrapped_kek(blob)
        out["wrapped_kek"] = ctypes.string_at(b.data, b.len).hex() if b.len else ""
        out["version"] = lib.cyb_kms_blob_version(blob)
        out["created_at"] = lib.cyb_kms_blob_created_at(blob)
        lib.cyb_kms_blob_free(blob)
        print(json.dumps(out))
    elif command == "resolve":
        endpoint, registry_file = rest
        options = ClientOptions(Timeouts(), text(endpoint), False, False)
        client = ctypes.c_void_p()
        check(lib.cyb_kms_client_new(ctypes.byref(options), ctypes.byref(client)))
        path = registry_file.encode()
        slots = ctypes.c_size_t()
        check(lib.cyb_kms_client_load_registry_file(client, path, len(path), ctypes.byref(slots)))
        resolver = ctypes.c_void_p()
        # cyb_kek_cache_options {0}: ttl_ms, max_entries, revalidate_ms, stale_if_error (32 bytes)
        cache_options = (ctypes.c_int64 * 4)()
        check(lib.cyb_kek_resolver_new(client, cache_options, ctypes.byref(resolver)))
        kek = (ctypes.c_uint8 * 32)()
        check(lib.cyb_kek_resolve(resolver, config, name, len(name), kek, 32))
        print(bytes(kek).hex())
        lib.cyb_kek_resolver_free(resolver)
        lib.cyb_kms_client_free(client)
    lib.cyb_storage_config_free(config)


if __name__ == "__main__":
    main()
