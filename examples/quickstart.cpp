// cyborgdb-kms quickstart: the documented KMS envelope flow on Disk storage, end to end.
//
// Usage: quickstart [data-dir]      (default: ./quickstart-data)
//
// Stores the envelope of index "my_index" in <data-dir>/my_index.kms, then walks through every
// operation, printing what happens: create (strict insert), a second create (AlreadyExistsError),
// push (upsert, version 2), get, delete, delete again (idempotent), get (NotFoundError).
#include <cyborgdb_core/index_kms.hpp>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    const std::filesystem::path data_dir = argc > 1 ? argv[1] : "quickstart-data";
    const std::string index = "my_index";
    try {
        std::cout << "cyborgdb-kms " << cyb_version() << ": envelopes stored in "
                  << std::filesystem::absolute(data_dir).string() << "\n";

        // Where the index keystore lives
        const cyborg::StorageConfig config = cyborg::StorageConfig::Disk(data_dir);

        cyborg::KMSBlob blob;
        blob.kms_name = "prod-kms";
        blob.provider = "aws-kms";
        blob.key_id = "arn:aws:kms:us-east-1:123456789012:key/abcd-1234";
        blob.region = "us-east-1";
        // Stand-in for the KEK as wrapped by the external KMS (kms.Encrypt output in real use).
        blob.wrapped_kek = std::vector<uint8_t>(32, 0xAB);
        blob.version = 1;  // created_at stays 0: the library stamps the current time

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

        // 3. Idempotent upsert: rotate to version 2.
        blob.version = 2;
        cyborg::PushIndexKMS(config, index, blob);
        std::cout << "3. pushed envelope version " << blob.version << " (create or replace)\n";

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
        // ... a service would now unwrap got.wrapped_kek with its KMS to recover the 32-byte KEK.

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
