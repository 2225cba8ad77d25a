// The C++ header's version check at first use, against the real library: this program pretends
// to be compiled against headers of the next major version (the macros are redefined before
// index_kms.hpp is included), so the loaded library (this build's) must be refused.
// Its own executable: the redefinition must not reach any other test's inline functions.
#include "cyborgdb_core/index_kms.h"

#include <cstdint>
#include <string>

#undef CYB_KMS_VERSION_MAJOR
#define CYB_KMS_VERSION_MAJOR (CYB_KMS_VERSION_NEXT_MAJOR)
#define CYB_KMS_VERSION_NEXT_MAJOR 1
static_assert(CYB_KMS_VERSION_NUMBER / 10000 == CYB_KMS_VERSION_NEXT_MAJOR,
              "CYB_KMS_VERSION_NUMBER follows CYB_KMS_VERSION_MAJOR");

#include "cyborgdb_core/index_kms.hpp"

#include <gtest/gtest.h>

namespace {

// What the check must say for this build's library.
std::string expected_message() {
    const std::string header = std::to_string(CYB_KMS_VERSION_NEXT_MAJOR) + "." +
                               std::to_string(CYB_KMS_VERSION_MINOR) + "." +
                               std::to_string(CYB_KMS_VERSION_PATCH);
    return "cyborgdb-kms: this program was compiled against index_kms.hpp " + header +
           " (major version " + std::to_string(CYB_KMS_VERSION_NEXT_MAJOR) +
           ") but the loaded libcyborgdb_kms is " + cyb_version() + " (major version " +
           std::to_string(cyb_version_number() / 10000) +
           "); rebuild the program against the installed library's headers, or install the "
           "library version it was built with";
}

}  // namespace

TEST(VersionMismatch, TheLoadedLibraryHasAnotherMajorVersion) {
    ASSERT_NE(cyb_version_number() / 10000, static_cast<uint32_t>(CYB_KMS_VERSION_NEXT_MAJOR));
}

TEST(VersionMismatch, EveryEntryPointThrowsBeforeCallingTheLibraryAndKeepsThrowing) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            cyborg::StorageConfig::Memory();
            FAIL() << "StorageConfig::Memory() accepted a library of another major version";
        } catch (const cyborg::IncompatibleLibraryError& e) {
            EXPECT_EQ(std::string(e.what()), expected_message());
        }
    }
    EXPECT_THROW(cyborg::StorageConfig::Disk("/nonexistent/never-created"),
                 cyborg::IncompatibleLibraryError);
    EXPECT_THROW(cyborg::StorageConfig::S3("bucket"), cyborg::IncompatibleLibraryError);
    EXPECT_THROW(cyborg::KMSClient(), cyborg::IncompatibleLibraryError);
}
