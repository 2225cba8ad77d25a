"""A KEK for index "orders" and its envelope on local disk, from Python. Run it in an empty
directory:
    export CYB_DEV_MASTER_KEY=$(openssl rand -hex 32)   # the "local" provider's master key
The "local" provider is for development only; production slots are "aws-kms" or "aws"."""
import sys

import cyborgdb_core as cyborgdb

kms = cyborgdb.KMSClient(allow_local_provider=True)  # development only: never in production
kms.add_slot("dev", provider="local", key_id="env:CYB_DEV_MASTER_KEY")
keys = cyborgdb.KEKResolver(kms)  # TTL'd, single-flight KEK cache; thread-safe
store = cyborgdb.StorageConfig.disk("example-data")
try:
    # create_index: a fresh random KEK wrapped through slot "dev", its envelope stored once
    with keys.create_index(store, "orders", kms_name="dev") as kek:
        # every request on the index: the KEK from the cache, or one read + unwrap
        with keys.resolve(store, "orders") as same:
            print("same KEK:", "yes" if kek == same else "no")
except cyborgdb.Error as e:
    sys.exit(str(e))  # e.g. "ALREADY_EXISTS: index \"orders\": ..."
