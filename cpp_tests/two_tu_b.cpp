// Second translation unit of the two-TU link test (see two_tu_a.cpp). Includes the C header
// first, then the C++ header (include guards, C++ compatibility of the C header).
#include "cyborgdb_core/index_kms.h"
#include "cyborgdb_core/index_kms.hpp"

int use_header_in_b() {
    const cyborg::StorageConfig config = cyborg::StorageConfig::Memory();
    try {
        cyborg::GetIndexKMS(config, "b");
        return 1;
    } catch (const cyborg::NotFoundError& e) {
        return e.code() == CYB_RESULT_NOT_FOUND && !cyborg::TryGetIndexKMS(config, "b") ? 0 : 1;
    }
}
