// Two translation units both include index_kms.hpp and are linked into one program: a function
// defined in the header without `inline` would be a duplicate symbol and fail the link.
// This file also checks that the header compiles on its own (it is the first include).
#include "cyborgdb_core/index_kms.hpp"

#include <cstdio>

int use_header_in_b();  // two_tu_b.cpp

int main() {
    const cyborg::StorageConfig config = cyborg::StorageConfig::Memory();
    cyborg::KMSBlob blob;
    blob.provider = "none";
    cyborg::CreateIndexKMS(config, "a", blob);
    if (cyborg::GetIndexKMS(config, "a").provider != "none") return 1;
    if (use_header_in_b() != 0) return 1;
    std::puts("two_tu: ok");
    return 0;
}
