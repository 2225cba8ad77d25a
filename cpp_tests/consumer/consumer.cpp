// Consumer of the installed C++ header: the documented flow on an in-memory store.
#include <cyborgdb_core/index_kms.hpp>

#include <cstdio>

int main() {
    const cyborg::StorageConfig config = cyborg::StorageConfig::Memory();
    cyborg::KMSBlob blob;
    blob.kms_name = "prod-kms";
    blob.provider = "aws-kms";
    blob.key_id = "alias/consumer";
    blob.region = "us-east-1";
    blob.wrapped_kek = {1, 2, 3};
    blob.version = 1;
    cyborg::CreateIndexKMS(config, "my_index", blob);
    try {
        cyborg::CreateIndexKMS(config, "my_index", blob);
        return 1;
    } catch (const cyborg::AlreadyExistsError&) {
    }
    const cyborg::KMSBlob got = cyborg::GetIndexKMS(config, "my_index");
    cyborg::DeleteIndexKMS(config, "my_index");
    if (got.key_id != "alias/consumer" || cyborg::TryGetIndexKMS(config, "my_index")) return 1;
    std::printf("consumer_cpp: ok (cyborgdb-kms %s)\n", cyb_version());
    return 0;
}
