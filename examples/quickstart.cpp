// cyborgdb-kms quickstart: the documented KMS envelope flow on Disk storage, end to end.
//
// Usage: quickstart [data-dir]      (default: ./quickstart-data)
//
// Wraps a fresh KEK for index "my_index" through a KMS slot, stores the envelope in
// <data-dir>/my_index.kms, then walks through every operation, printing what happens: create
// (strict insert), a second create (AlreadyExistsError), push (re-wrap, version 2), get + unwrap
// (the same KEK comes back), delete, delete again (idempotent), get (NotFoundError).
//
// The slot uses the `local` provider — a 32-byte master key in <data-dir>/dev-master.key, made
// here — so the example runs without AWS. `local` is for development only, never production: use
// an `aws-kms` or `aws` slot there (docs/providers.md).
#include <cyborgdb_core/index_kms.hpp>

#include <sys/stat.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

/// Writes a new random 32-byte master key to `path` (mode 0600) for the development-only `local`
/// provider. A real deployment keeps its wrap keys in AWS KMS or Secrets Manager.
static void make_dev_master_key(const std::filesystem::path& path) {
    std::filesystem::create_directories(path.parent_path());
    std::random_device random;
    std::vector<char> key(32);
    for (char& byte : key) {
        byte = static_cast<char>(random() & 0xFF);
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(key.data(), 32);
    chmod(path.c_str(), 0600);
    std::fill(key.begin(), key.end(), '\0');
}

int main(int argc, char** argv) {
    const std::filesystem::path data_dir = argc > 1 ? argv[1] : "quickstart-data";
    const std::string index = "my_index";
    try {
        std::cout << "cyborgdb-kms " << cyb_version() << ": envelopes stored in "
                  << std::filesystem::absolute(data_dir).string() << "\n";

        // Where the index keystore lives
        const cyborg::StorageConfig config = cyborg::StorageConfig::Disk(data_dir);

        // A KMS slot: provider "local" (development only) with a master key file.
        const std::filesystem::path master_key = std::filesystem::absolute(data_dir / "dev-master.key");
        make_dev_master_key(master_key);
        cyborg::KMSClientOptions kms_options;
        kms_options.allow_local_provider = true;  // development only: never in production
        cyborg::KMSClient kms(kms_options);
        kms.AddSlot("dev-local", {"local", "file:" + master_key.string(), "", {}, {}, {}});

        // Wrap a fresh KEK for the index; the envelope records the slot and the wrapped KEK.
        cyborg::WrappedKEK wrapped = kms.WrapNewKEK(index, "dev-local");
        cyborg::KMSBlob blob = wrapped.blob;  // version 1; created_at stamped now
        std::cout << "0. wrapped a new 32-byte KEK through slot \"" << blob.kms_name
                  << "\" (provider " << blob.provider << ")\n";

        // 1. Strict insert.
        cyborg::CreateIndexKMS(config, index, blob);
        std::cout << "1. created envelope for \"" << index << "\" (version " << blob.version << ")\n";

        // 2. A second create is refused; the stored envelope is untouched.
        try {
            cyborg::CreateIndexKMS(config, index, blob);
            std::cout << "2. unexpected: the second create succeeded\n";
            return 1;
        } catch (const cyborg::AlreadyExistsError& e) {
            std::cout << "2. second create refused: AlreadyExistsError (code " << e.code()
                      << "): " << e.what() << "\n";
        }

        // 3. Idempotent upsert: re-wrap the same KEK (as after a key rotation), version 2.
        blob = kms.WrapKEK(index, "dev-local", wrapped.kek);
        blob.version = 2;
        cyborg::PushIndexKMS(config, index, blob);
        std::cout << "3. pushed re-wrapped envelope version " << blob.version
                  << " (create or replace)\n";

        // 4. Read it back.
        const cyborg::KMSBlob got = cyborg::GetIndexKMS(config, index);
        std::cout << "4. read envelope:\n"
                  << "     kms_name: " << got.kms_name << "\n"
                  << "     provider: " << got.provider << "\n"
                  << "     key_id: " << got.key_id << "\n"
                  << "     region: " << got.region << "\n"
                  << "     version: " << got.version << "\n"
                  << "     created_at: " << got.created_at << " (unix seconds, stamped on write)\n"
                  << "     wrapped_kek: " << got.wrapped_kek.size() << " bytes\n";
        // A service now unwraps the KEK and hands it to the engine (load_index).
        const cyborg::KEK kek = kms.UnwrapKEK(index, got);
        std::cout << "   unwrapped KEK matches the one wrapped at step 0: "
                  << (kek == wrapped.kek ? "yes" : "NO") << "\n";
        if (kek != wrapped.kek) {
            return 1;
        }

        // The service hot path: a KEKResolver reads the envelope and unwraps the KEK once, then
        // serves it from its TTL'd cache (no storage or KMS access) until the envelope changes.
        const cyborg::KEKResolver resolver(kms);
        for (int request = 0; request < 3; ++request) {
            if (resolver.Resolve(config, index) != wrapped.kek) {
                std::cout << "   resolver returned another KEK\n";
                return 1;
            }
        }
        const cyborg::KEKCacheStats stats = resolver.Stats();
        std::cout << "   resolver: 3 resolves, " << stats.provider_calls << " KMS unwrap, "
                  << stats.hits << " cache hits\n";

        // 5. Delete, and delete again: idempotent.
        cyborg::DeleteIndexKMS(config, index);
        std::cout << "5. deleted envelope\n";
        cyborg::DeleteIndexKMS(config, index);
        std::cout << "6. deleted again: no error (delete is idempotent)\n";

        // 7. Nothing left to read.
        try {
            cyborg::GetIndexKMS(config, index);
            std::cout << "7. unexpected: get after delete succeeded\n";
            return 1;
        } catch (const cyborg::NotFoundError& e) {
            std::cout << "7. get after delete: NotFoundError (code " << e.code() << "): " << e.what()
                      << "\n";
        }
        std::cout << "done\n";
        return 0;
    } catch (const cyborg::Error& e) {
        std::cerr << "quickstart failed: " << dynamic_cast<const std::exception&>(e).what()
                  << " (code " << e.code() << ")\n";
    } catch (const std::exception& e) {
        std::cerr << "quickstart failed: " << e.what() << "\n";
    }
    return 1;
}
