// The service's flow from C++: envelopes in an S3 bucket that every node shares, KEKs wrapped
// through the KMS slots of a registry file, served by a KEK resolver.
//
// Usage: s3_quickstart REGISTRY.yaml BUCKET [S3_ENDPOINT]
//   REGISTRY.yaml  a kms.registry section with a slot "vendor-default" (docs/providers.md); each
//                  slot names its region. KMS is reached as the AWS SDK is configured: the
//                  credential chain, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_KMS if set.
//   BUCKET         an existing bucket; the envelope goes under cyborgdb/keystore/.
//   S3_ENDPOINT    optional: an S3-compatible store (MinIO, Ceph, R2, an emulator). Its
//                  credentials are then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
//                  AWS_SESSION_TOKEN): the AWS chain's identity is never sent to another store.
//
// Creates index "orders" (a fresh KEK wrapped through slot "vendor-default", the envelope
// strictly inserted), resolves its KEK (one read + KMS unwrap, then the cache), re-wraps it
// (version 2: same KEK, nothing else changes), and deletes the envelope again.
#include <cyborgdb_core/index_kms.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

/// The environment variable `name`, or nullopt if it is unset or empty.
static std::optional<std::string> env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        return std::nullopt;
    }
    return std::string(value);
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: s3_quickstart REGISTRY.yaml BUCKET [S3_ENDPOINT]\n";
        return 2;
    }
    try {
        cyborg::KMSClient kms;                // one per process; thread-safe
        kms.LoadRegistryFile(argv[1]);        // the kms.registry section: slot -> KMS key
        const cyborg::KEKResolver keys(kms);  // TTL'd, single-flight KEK cache

        cyborg::S3Options s3;  // a bucket and prefix all service nodes share
        s3.prefix = "cyborgdb/keystore";
        if (argc == 4) {  // an S3-compatible store needs explicit credentials
            s3.endpoint = argv[3];
            s3.credentials = cyborg::S3Credentials{env("AWS_ACCESS_KEY_ID").value_or(""),
                                                   env("AWS_SECRET_ACCESS_KEY").value_or(""),
                                                   env("AWS_SESSION_TOKEN")};
        }
        const auto store = cyborg::StorageConfig::S3(argv[2], s3);

        // create_index: a fresh random KEK, wrapped through slot "vendor-default", stored once.
        const cyborg::KEK kek = keys.CreateIndex(store, "orders", std::string("vendor-default"));
        // Every request on the index: the KEK from the cache, or one GetObject + kms:Decrypt.
        const cyborg::KEK same = keys.Resolve(store, "orders");
        std::cout << "same KEK: " << (kek == same ? "yes" : "no") << "\n";
        if (kek != same) {
            return 1;
        }

        keys.Resolve(store, "orders");  // a cache hit: no S3 or KMS request
        const cyborg::KEKCacheStats stats = keys.Stats();
        std::cout << "create + 2 resolves: KMS calls " << stats.provider_calls
                  << " (wrap + unwrap), cache hits " << stats.hits << "\n";

        // Rotation: the same KEK re-wrapped under the slot's current key, version + 1.
        const cyborg::KMSBlob rewrapped = keys.Rewrap(store, "orders", "vendor-default");
        std::cout << "re-wrapped: version " << rewrapped.version << ", same KEK: "
                  << (keys.Resolve(store, "orders") == kek ? "yes" : "no") << "\n";

        cyborg::DeleteIndexKMS(store, "orders");
        std::cout << "deleted s3://" << argv[2] << "/cyborgdb/keystore/orders.kms\n";
        return 0;
    } catch (const cyborg::Error& e) {
        std::cerr << "s3_quickstart failed: " << dynamic_cast<const std::exception&>(e).what()
                  << "\n";
    } catch (const std::exception& e) {
        std::cerr << "s3_quickstart failed: " << e.what() << "\n";
    }
    return 1;
}
