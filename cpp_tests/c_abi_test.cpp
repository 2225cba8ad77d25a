// Every function of the C ABI (index_kms.h) and every error path, with exact result codes.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "cyborgdb_core/index_kms.h"
#include "test_support.hpp"

using namespace cyb_test;

namespace {

// Sentinel for "an out-parameter the call must not touch".
cyb_kms_blob* const kUntouchedBlob = reinterpret_cast<cyb_kms_blob*>(uintptr_t{0x1234});
cyb_storage_config* const kUntouchedConfig = reinterpret_cast<cyb_storage_config*>(uintptr_t{0x5678});

BlobPtr new_blob() {
    cyb_kms_blob* raw = nullptr;
    EXPECT_EQ(cyb_kms_blob_new(&raw), CYB_RESULT_OK);
    EXPECT_NE(raw, nullptr);
    return BlobPtr(raw);
}

void set(cyb_kms_blob* b, cyb_result (*setter)(cyb_kms_blob*, const char*, size_t), const std::string& v) {
    ASSERT_EQ(setter(b, v.data(), v.size()), CYB_RESULT_OK);
}

/// A valid aws-kms envelope as a C handle (see aws_kms_blob).
BlobPtr c_blob(const std::string& tag = "a") {
    return cyborg::detail::to_c_blob(aws_kms_blob(tag));
}

cyb_result c_create(const cyb_storage_config* c, const std::string& name, const cyb_kms_blob* b) {
    return cyb_index_kms_create(c, name.data(), name.size(), b);
}
cyb_result c_push(const cyb_storage_config* c, const std::string& name, const cyb_kms_blob* b) {
    return cyb_index_kms_push(c, name.data(), name.size(), b);
}
cyb_result c_get(const cyb_storage_config* c, const std::string& name, cyb_kms_blob** out) {
    return cyb_index_kms_get(c, name.data(), name.size(), out);
}
cyb_result c_delete(const cyb_storage_config* c, const std::string& name) {
    return cyb_index_kms_delete(c, name.data(), name.size());
}

/// The stored envelope of `name` as a C++ value (asserting get succeeds).
cyborg::KMSBlob stored(const cyb_storage_config* c, const std::string& name) {
    cyb_kms_blob* raw = nullptr;
    EXPECT_EQ(c_get(c, name, &raw), CYB_RESULT_OK) << last_error();
    BlobPtr owned(raw);
    return raw ? cyborg::detail::from_c_blob(raw) : cyborg::KMSBlob{};
}

using StringSetter = cyb_result (*)(cyb_kms_blob*, const char*, size_t);
using StringGetter = cyb_str (*)(const cyb_kms_blob*);
struct StringField {
    const char* name;
    StringSetter set;
    StringGetter get;
};
const StringField kStringFields[] = {
    {"kms_name", cyb_kms_blob_set_kms_name, cyb_kms_blob_kms_name},
    {"provider", cyb_kms_blob_set_provider, cyb_kms_blob_provider},
    {"key_id", cyb_kms_blob_set_key_id, cyb_kms_blob_key_id},
    {"region", cyb_kms_blob_set_region, cyb_kms_blob_region},
};

const std::vector<std::string> kInvalidUtf8 = {
    std::string("\xff"),                 // never valid
    std::string("abc\xc3"),              // truncated 2-byte sequence
    std::string("\xc0\xaf"),             // overlong '/'
    std::string("\xed\xa0\x80"),         // UTF-16 surrogate
    std::string("ok\x80"),               // lone continuation byte
    std::string("\xf4\x90\x80\x80"),     // beyond U+10FFFF
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// cyb_kms_blob: new / free / setters / getters
// ---------------------------------------------------------------------------------------------

TEST(CBlob, NewWithNullOutIsNullParameter) {
    EXPECT_EQ(cyb_kms_blob_new(nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_kms_blob_new: argument `out_blob` is NULL");
}

TEST(CBlob, NewIsEmpty) {
    BlobPtr b = new_blob();
    for (const auto& f : kStringFields) {
        EXPECT_EQ(f.get(b.get()).len, 0u) << f.name;
    }
    EXPECT_EQ(cyb_kms_blob_wrapped_kek(b.get()).len, 0u);
    EXPECT_EQ(cyb_kms_blob_version(b.get()), 0u);
    EXPECT_EQ(cyb_kms_blob_created_at(b.get()), 0);
}

TEST(CBlob, FreeNullIsANoOp) {
    cyb_kms_blob_free(nullptr);
    cyb_storage_config_free(nullptr);
    SUCCEED();
}

TEST(CBlob, GettersOnNullAreEmptyOrZero) {
    for (const auto& f : kStringFields) {
        EXPECT_EQ(f.get(nullptr).len, 0u) << f.name;
    }
    EXPECT_EQ(cyb_kms_blob_wrapped_kek(nullptr).len, 0u);
    EXPECT_EQ(cyb_kms_blob_version(nullptr), 0u);
    EXPECT_EQ(cyb_kms_blob_created_at(nullptr), 0);
}

TEST(CBlob, StringSettersRoundTripAndCopy) {
    BlobPtr b = new_blob();
    for (const auto& f : kStringFields) {
        std::string value = std::string("value of ") + f.name + " \xe9\x8d\xb5";  // + U+9375
        ASSERT_EQ(f.set(b.get(), value.data(), value.size()), CYB_RESULT_OK) << f.name;
        value[0] = 'X';  // the library copied it
        EXPECT_EQ(str(f.get(b.get())), std::string("value of ") + f.name + " \xe9\x8d\xb5");
        // The setter takes (pointer, length): only `len` bytes are read, no terminator needed.
        const char buf[] = {'a', 'b', 'c', 'd'};
        ASSERT_EQ(f.set(b.get(), buf, 2), CYB_RESULT_OK);
        EXPECT_EQ(str(f.get(b.get())), "ab");
        // An embedded NUL is kept (create / push reject it, see CEnvelopeRules).
        ASSERT_EQ(f.set(b.get(), "x\0y", 3), CYB_RESULT_OK);
        EXPECT_EQ(str(f.get(b.get())), std::string("x\0y", 3));
        // NULL with length 0 is the empty string.
        ASSERT_EQ(f.set(b.get(), nullptr, 0), CYB_RESULT_OK);
        EXPECT_EQ(f.get(b.get()).len, 0u);
    }
}

TEST(CBlob, StringSettersRejectNullsAndKeepTheField) {
    BlobPtr b = new_blob();
    for (const auto& f : kStringFields) {
        set(b.get(), f.set, "before");
        EXPECT_EQ(f.set(nullptr, "x", 1), CYB_RESULT_NULL_PARAMETER) << f.name;
        EXPECT_EQ(last_error(), std::string("cyb_kms_blob_set_") + f.name + ": argument `blob` is NULL");
        EXPECT_EQ(f.set(b.get(), nullptr, 1), CYB_RESULT_NULL_PARAMETER) << f.name;
        EXPECT_EQ(last_error(), std::string("cyb_kms_blob_set_") + f.name + ": argument `value` is NULL");
        EXPECT_EQ(str(f.get(b.get())), "before") << f.name;
    }
}

TEST(CBlob, StringSettersRejectInvalidUtf8AndKeepTheField) {
    BlobPtr b = new_blob();
    for (const auto& f : kStringFields) {
        set(b.get(), f.set, "before");
        for (const auto& bad : kInvalidUtf8) {
            EXPECT_EQ(f.set(b.get(), bad.data(), bad.size()), CYB_RESULT_INVALID_ARGUMENT) << f.name;
            EXPECT_NE(last_error().find("not valid UTF-8"), std::string::npos) << last_error();
            EXPECT_EQ(str(f.get(b.get())), "before") << f.name;
        }
    }
}

TEST(CBlob, WrappedKekTakesAnyBytes) {
    BlobPtr b = new_blob();
    std::vector<uint8_t> all(256);
    for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
    std::vector<uint8_t> input = all;
    ASSERT_EQ(cyb_kms_blob_set_wrapped_kek(b.get(), input.data(), input.size()), CYB_RESULT_OK);
    input[0] = 99;  // the library copied the bytes
    EXPECT_EQ(bytes(cyb_kms_blob_wrapped_kek(b.get())), all);

    EXPECT_EQ(cyb_kms_blob_set_wrapped_kek(nullptr, all.data(), 1), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_kms_blob_set_wrapped_kek: argument `blob` is NULL");
    EXPECT_EQ(cyb_kms_blob_set_wrapped_kek(b.get(), nullptr, 1), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_kms_blob_set_wrapped_kek: argument `value` is NULL");
    EXPECT_EQ(bytes(cyb_kms_blob_wrapped_kek(b.get())), all);  // unchanged on error

    ASSERT_EQ(cyb_kms_blob_set_wrapped_kek(b.get(), nullptr, 0), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kms_blob_wrapped_kek(b.get()).len, 0u);
}

TEST(CBlob, VersionAndCreatedAt) {
    BlobPtr b = new_blob();
    for (uint32_t v : {0u, 1u, 2u, UINT32_MAX}) {
        ASSERT_EQ(cyb_kms_blob_set_version(b.get(), v), CYB_RESULT_OK);
        EXPECT_EQ(cyb_kms_blob_version(b.get()), v);
    }
    for (int64_t t : {int64_t{0}, int64_t{-1}, INT64_MIN, INT64_MAX, int64_t{1700000000}}) {
        ASSERT_EQ(cyb_kms_blob_set_created_at(b.get(), t), CYB_RESULT_OK);
        EXPECT_EQ(cyb_kms_blob_created_at(b.get()), t);
    }
    EXPECT_EQ(cyb_kms_blob_set_version(nullptr, 1), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_kms_blob_set_version: argument `blob` is NULL");
    EXPECT_EQ(cyb_kms_blob_set_created_at(nullptr, 1), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_kms_blob_set_created_at: argument `blob` is NULL");
}

// ---------------------------------------------------------------------------------------------
// cyb_storage_config
// ---------------------------------------------------------------------------------------------

TEST(CStorageConfig, NewMemoryNullOut) {
    EXPECT_EQ(cyb_storage_config_new_memory(nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_memory: argument `out_config` is NULL");
}

TEST(CStorageConfig, NewDiskErrorsLeaveOutUntouched) {
    cyb_storage_config* out = kUntouchedConfig;
    EXPECT_EQ(cyb_storage_config_new_disk(nullptr, 5, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_disk: argument `path` is NULL");
    EXPECT_EQ(out, kUntouchedConfig);
    EXPECT_EQ(cyb_storage_config_new_disk("/tmp/x", 6, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_disk: argument `out_config` is NULL");
    EXPECT_EQ(cyb_storage_config_new_disk(nullptr, 0, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(last_error(), "disk storage path must not be empty");
    EXPECT_EQ(cyb_storage_config_new_disk("", 0, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_storage_config_new_disk("/tmp/a\0b", 8, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(last_error(), "disk storage path contains a NUL byte");
    EXPECT_EQ(out, kUntouchedConfig);
}

TEST(CStorageConfig, DiskPathIsLengthDelimitedAndAnyBytesButNul) {
    TempDir dir;
    // Only path_len bytes are used: the "IGNORED" tail must not become part of the path.
    const std::string root = (dir.path() / "root").string();
    const std::string with_tail = root + "IGNORED";
    cyb_storage_config* raw = nullptr;
    ASSERT_EQ(cyb_storage_config_new_disk(with_tail.data(), root.size(), &raw), CYB_RESULT_OK);
    ConfigPtr config(raw);
    EXPECT_TRUE(list_dir(dir.path()).empty()) << "the directory is created on the first write only";
    BlobPtr b = c_blob();
    ASSERT_EQ(c_create(config.get(), "idx", b.get()), CYB_RESULT_OK) << last_error();
    EXPECT_EQ(list_dir(dir.path()), (std::set<std::string>{"root"}));
    EXPECT_EQ(list_dir(dir.path() / "root"), (std::set<std::string>{"idx.kms"}));

    // A directory name that is not UTF-8 is fine.
    const std::string odd = (dir.path() / "\xff\xfe-dir").string();
    raw = nullptr;
    ASSERT_EQ(cyb_storage_config_new_disk(odd.data(), odd.size(), &raw), CYB_RESULT_OK);
    ConfigPtr odd_config(raw);
    ASSERT_EQ(c_push(odd_config.get(), "idx", b.get()), CYB_RESULT_OK) << last_error();
    EXPECT_TRUE(fs::exists(fs::path(odd) / "idx.kms"));
}

// ---------------------------------------------------------------------------------------------
// Envelope operations: NULL and name checks (on Memory and Disk)
// ---------------------------------------------------------------------------------------------

class COps : public StoreTest {
protected:
    const cyb_storage_config* c() const { return config().c_handle(); }
};
INSTANTIATE_TEST_SUITE_P(Stores, COps, testing::Values(Backend::Memory, Backend::Disk), backend_name);

TEST_P(COps, NullConfigIsNullParameter) {
    BlobPtr b = c_blob();
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(c_create(nullptr, "idx", b.get()), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_create: argument `config` is NULL");
    EXPECT_EQ(c_push(nullptr, "idx", b.get()), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_push: argument `config` is NULL");
    EXPECT_EQ(c_get(nullptr, "idx", &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_get: argument `config` is NULL");
    EXPECT_EQ(out, kUntouchedBlob);
    EXPECT_EQ(c_delete(nullptr, "idx"), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_delete: argument `config` is NULL");
}

TEST_P(COps, NullIndexNameWithLengthIsNullParameter) {
    BlobPtr b = c_blob();
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(cyb_index_kms_create(c(), nullptr, 3, b.get()), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_create: argument `index_name` is NULL");
    EXPECT_EQ(cyb_index_kms_push(c(), nullptr, 3, b.get()), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_push: argument `index_name` is NULL");
    EXPECT_EQ(cyb_index_kms_get(c(), nullptr, 3, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_get: argument `index_name` is NULL");
    EXPECT_EQ(out, kUntouchedBlob);
    EXPECT_EQ(cyb_index_kms_delete(c(), nullptr, 3), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_delete: argument `index_name` is NULL");
}

TEST_P(COps, NullIndexNameWithoutLengthIsTheEmptyNameSoInvalid) {
    BlobPtr b = c_blob();
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(cyb_index_kms_create(c(), nullptr, 0, b.get()), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(last_error(), "index name must not be empty");
    EXPECT_EQ(cyb_index_kms_push(c(), nullptr, 0, b.get()), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_index_kms_get(c(), nullptr, 0, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedBlob);
    EXPECT_EQ(cyb_index_kms_delete(c(), nullptr, 0), CYB_RESULT_INVALID_ARGUMENT);
}

TEST_P(COps, NullBlobAndNullOutAreNullParameter) {
    EXPECT_EQ(c_create(c(), "idx", nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_create: argument `blob` is NULL");
    EXPECT_EQ(c_push(c(), "idx", nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_push: argument `blob` is NULL");
    EXPECT_EQ(c_get(c(), "idx", nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_index_kms_get: argument `out_blob` is NULL");
    // None of them stored anything.
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(c_get(c(), "idx", &out), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(out, kUntouchedBlob);
}

TEST_P(COps, BadIndexNamesAreInvalidForEveryOperation) {
    BlobPtr b = c_blob();
    std::vector<std::pair<std::string, std::string>> bad = {
        {"", "index name must not be empty"},
        {std::string(256, 'x'), "is 256 bytes, longer than the 255-byte limit"},
        {std::string(1000, 'y'), "is 1000 bytes, longer than the 255-byte limit"},
        {std::string("a\0b", 3), "contains a NUL byte"},
        {std::string("\0", 1), "contains a NUL byte"},
    };
    for (const auto& u : kInvalidUtf8) bad.emplace_back(u, "index_name is not valid UTF-8");
    for (const auto& [name, why] : bad) {
        cyb_kms_blob* out = kUntouchedBlob;
        EXPECT_EQ(c_create(c(), name, b.get()), CYB_RESULT_INVALID_ARGUMENT);
        EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
        EXPECT_EQ(c_push(c(), name, b.get()), CYB_RESULT_INVALID_ARGUMENT);
        EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
        EXPECT_EQ(c_get(c(), name, &out), CYB_RESULT_INVALID_ARGUMENT);
        EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
        EXPECT_EQ(out, kUntouchedBlob);
        EXPECT_EQ(c_delete(c(), name), CYB_RESULT_INVALID_ARGUMENT);
        EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
    }
    if (GetParam() == Backend::Disk) {
        EXPECT_FALSE(fs::exists(root())) << "nothing may be written for a rejected name";
    }
    // 255 bytes is the limit, in ASCII and in multi-byte UTF-8.
    const std::string ascii255(255, 'n');
    std::string cjk255;
    for (int i = 0; i < 85; ++i) cjk255 += "\xe9\x8d\xb5";
    for (const auto& name : {ascii255, cjk255}) {
        ASSERT_EQ(name.size(), 255u);
        ASSERT_EQ(c_create(c(), name, b.get()), CYB_RESULT_OK) << last_error();
        EXPECT_EQ(stored(c(), name), aws_kms_blob());
        EXPECT_EQ(c_delete(c(), name), CYB_RESULT_OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope rules, semantics, messages
// ---------------------------------------------------------------------------------------------

/// Every way a blob can break the rules, with a fragment of the message it must produce.
std::vector<std::pair<cyborg::KMSBlob, std::string>> invalid_blobs() {
    std::vector<std::pair<cyborg::KMSBlob, std::string>> cases;
    for (const char* provider : {"", "AWS", "gcp-kms", "aws-kms ", "none\n", "Aws-Kms"}) {
        cyborg::KMSBlob b = aws_kms_blob();
        b.provider = provider;
        cases.emplace_back(b, "provider must be \"aws\", \"aws-kms\", \"none\" or \"local\"");
    }
    {
        cyborg::KMSBlob b;
        b.provider = "none";
        b.wrapped_kek = {1};
        cases.emplace_back(b, "provider \"none\" stores nothing key-derived, so wrapped_kek must be empty");
    }
    for (const char* provider : {"aws", "aws-kms"}) {
        for (const char* field : {"kms_name", "key_id", "region", "wrapped_kek"}) {
            cyborg::KMSBlob b = aws_kms_blob();
            b.provider = provider;
            const std::string f = field;
            if (f == "kms_name") b.kms_name.clear();
            if (f == "key_id") b.key_id.clear();
            if (f == "region") b.region.clear();
            if (f == "wrapped_kek") b.wrapped_kek.clear();
            cases.emplace_back(b, std::string("provider \"") + provider + "\" needs a non-empty " + field);
        }
    }
    for (const char* field : {"kms_name", "provider", "key_id", "region"}) {
        const std::string f = field;
        cyborg::KMSBlob b = aws_kms_blob();
        std::string* target = f == "kms_name" ? &b.kms_name
                              : f == "provider" ? &b.provider
                              : f == "key_id"   ? &b.key_id
                                                : &b.region;
        *target = std::string(CYB_MAX_STRING_FIELD_LEN + 1, 'k');
        cases.emplace_back(b, f + " is 2049 bytes, longer than the 2048-byte limit");
        cyborg::KMSBlob nul = aws_kms_blob();
        std::string* nul_target = f == "kms_name" ? &nul.kms_name
                                  : f == "provider" ? &nul.provider
                                  : f == "key_id"   ? &nul.key_id
                                                    : &nul.region;
        nul_target->push_back('\0');
        cases.emplace_back(nul, f + " contains a NUL byte");
    }
    {
        cyborg::KMSBlob b = aws_kms_blob();
        b.wrapped_kek.assign(CYB_MAX_WRAPPED_KEK_LEN + 1, 7);
        cases.emplace_back(b, "wrapped_kek is 8193 bytes, longer than the 8192-byte limit");
    }
    return cases;
}

TEST_P(COps, InvalidEnvelopesAreRejectedAndStoreNothing) {
    BlobPtr good = c_blob("kept");
    ASSERT_EQ(c_create(c(), "kept", good.get()), CYB_RESULT_OK);
    for (const auto& [blob, why] : invalid_blobs()) {
        BlobPtr b = cyborg::detail::to_c_blob(blob);
        for (const std::string name : {"fresh", "kept"}) {
            const std::string prefix = "index \"" + name + "\": invalid KMS envelope: ";
            EXPECT_EQ(c_create(c(), name, b.get()), CYB_RESULT_INVALID_ARGUMENT) << why;
            EXPECT_EQ(last_error().rfind(prefix, 0), 0u) << last_error();
            EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
            EXPECT_EQ(c_push(c(), name, b.get()), CYB_RESULT_INVALID_ARGUMENT) << why;
            EXPECT_EQ(last_error().rfind(prefix, 0), 0u) << last_error();
            EXPECT_NE(last_error().find(why), std::string::npos) << last_error();
        }
        cyb_kms_blob* out = kUntouchedBlob;
        EXPECT_EQ(c_get(c(), "fresh", &out), CYB_RESULT_NOT_FOUND);
        EXPECT_EQ(out, kUntouchedBlob);
        EXPECT_EQ(stored(c(), "kept"), aws_kms_blob("kept"));
    }
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()), (std::set<std::string>{"kept.kms"}));
    }
}

TEST_P(COps, FieldsAtTheirLimitsAndProviderShapesAreAccepted) {
    cyborg::KMSBlob big = aws_kms_blob();
    big.kms_name = std::string(CYB_MAX_STRING_FIELD_LEN, 'n');
    big.key_id = std::string(CYB_MAX_STRING_FIELD_LEN, 'k');
    big.region = std::string(CYB_MAX_STRING_FIELD_LEN, 'r');
    big.wrapped_kek.assign(CYB_MAX_WRAPPED_KEK_LEN, 0xA5);
    big.version = UINT32_MAX;
    big.created_at = INT64_MAX;
    cyborg::KMSBlob aws = aws_kms_blob("aws");
    aws.provider = "aws";
    cyborg::KMSBlob none;
    none.provider = "none";
    none.created_at = -5;
    cyborg::KMSBlob none_with_names = none;  // provider none may still record names
    none_with_names.kms_name = "n";
    none_with_names.key_id = "k";
    for (const auto& blob : {big, aws, none, none_with_names}) {
        BlobPtr b = cyborg::detail::to_c_blob(blob);
        ASSERT_EQ(c_push(c(), "limits", b.get()), CYB_RESULT_OK) << last_error();
        EXPECT_EQ(stored(c(), "limits"), blob);
    }
}

TEST_P(COps, CreateIsStrictAndKeepsTheFirstEnvelope) {
    BlobPtr first = c_blob("first");
    BlobPtr second = c_blob("second");
    ASSERT_EQ(c_create(c(), "idx", first.get()), CYB_RESULT_OK) << last_error();
    EXPECT_EQ(c_create(c(), "idx", second.get()), CYB_RESULT_ALREADY_EXISTS);
    EXPECT_EQ(last_error(), "index \"idx\": a KMS envelope already exists");
    EXPECT_EQ(c_create(c(), "idx", first.get()), CYB_RESULT_ALREADY_EXISTS);  // even identical
    EXPECT_EQ(stored(c(), "idx"), aws_kms_blob("first"));
}

TEST_P(COps, PushCreatesThenReplaces) {
    BlobPtr first = c_blob("first");
    BlobPtr second = c_blob("second");
    ASSERT_EQ(c_push(c(), "idx", first.get()), CYB_RESULT_OK);
    EXPECT_EQ(stored(c(), "idx"), aws_kms_blob("first"));
    ASSERT_EQ(c_push(c(), "idx", second.get()), CYB_RESULT_OK);
    EXPECT_EQ(stored(c(), "idx"), aws_kms_blob("second"));
    ASSERT_EQ(c_push(c(), "idx", second.get()), CYB_RESULT_OK);  // idempotent
    EXPECT_EQ(stored(c(), "idx"), aws_kms_blob("second"));
    EXPECT_EQ(c_create(c(), "idx", first.get()), CYB_RESULT_ALREADY_EXISTS);
}

TEST_P(COps, GetMissingIsNotFoundNamingTheIndex) {
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(c_get(c(), "orders", &out), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(last_error(), "index \"orders\": no KMS envelope is stored");
    EXPECT_EQ(out, kUntouchedBlob);
    // Names are quoted and escaped in messages.
    EXPECT_EQ(c_get(c(), "evil\nname", &out), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(last_error(), "index \"evil\\nname\": no KMS envelope is stored");
}

TEST_P(COps, DeleteIsIdempotentAndAllowsCreateAgain) {
    EXPECT_EQ(c_delete(c(), "idx"), CYB_RESULT_OK);  // never existed
    BlobPtr b = c_blob();
    ASSERT_EQ(c_create(c(), "idx", b.get()), CYB_RESULT_OK);
    EXPECT_EQ(c_delete(c(), "idx"), CYB_RESULT_OK);
    EXPECT_EQ(c_delete(c(), "idx"), CYB_RESULT_OK);
    cyb_kms_blob* out = kUntouchedBlob;
    EXPECT_EQ(c_get(c(), "idx", &out), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(c_create(c(), "idx", b.get()), CYB_RESULT_OK);
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(c_delete(c(), "idx"), CYB_RESULT_OK);
        EXPECT_TRUE(list_dir(root()).empty());
    }
}

TEST_P(COps, GetReturnsAnIndependentCopy) {
    BlobPtr b = c_blob();
    ASSERT_EQ(c_create(c(), "idx", b.get()), CYB_RESULT_OK);
    cyb_kms_blob* raw = nullptr;
    ASSERT_EQ(c_get(c(), "idx", &raw), CYB_RESULT_OK);
    BlobPtr got(raw);
    ASSERT_EQ(cyb_kms_blob_set_key_id(got.get(), "changed", 7), CYB_RESULT_OK);
    ASSERT_EQ(cyb_kms_blob_set_version(b.get(), 77), CYB_RESULT_OK);
    EXPECT_EQ(stored(c(), "idx"), aws_kms_blob());
}

TEST_P(COps, ZeroCreatedAtIsStampedInTheStoredCopyOnly) {
    BlobPtr b = c_blob();
    ASSERT_EQ(cyb_kms_blob_set_created_at(b.get(), 0), CYB_RESULT_OK);
    const int64_t before = unix_now();
    ASSERT_EQ(c_create(c(), "created", b.get()), CYB_RESULT_OK);
    ASSERT_EQ(c_push(c(), "pushed", b.get()), CYB_RESULT_OK);
    const int64_t after = unix_now();
    EXPECT_EQ(cyb_kms_blob_created_at(b.get()), 0) << "the caller's blob is not modified";
    for (const char* name : {"created", "pushed"}) {
        const int64_t t = stored(c(), name).created_at;
        EXPECT_GE(t, before) << name;
        EXPECT_LE(t, after) << name;
    }
    ASSERT_EQ(cyb_kms_blob_set_created_at(b.get(), 42), CYB_RESULT_OK);
    ASSERT_EQ(c_push(c(), "pushed", b.get()), CYB_RESULT_OK);
    EXPECT_EQ(stored(c(), "pushed").created_at, 42);
}

// ---------------------------------------------------------------------------------------------
// Result names, version, last error message
// ---------------------------------------------------------------------------------------------

TEST(CResult, NamesOfEveryCodeAndUnknownNumbers) {
    const std::pair<cyb_result, const char*> codes[] = {
        {CYB_RESULT_OK, "OK"},
        {CYB_RESULT_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
        {CYB_RESULT_NULL_PARAMETER, "NULL_PARAMETER"},
        {CYB_RESULT_NOT_FOUND, "NOT_FOUND"},
        {CYB_RESULT_ALREADY_EXISTS, "ALREADY_EXISTS"},
        {CYB_RESULT_CORRUPT, "CORRUPT"},
        {CYB_RESULT_CONFLICT, "CONFLICT"},
        {CYB_RESULT_IO, "IO"},
        {CYB_RESULT_STORAGE_UNAVAILABLE, "STORAGE_UNAVAILABLE"},
        {CYB_RESULT_STORAGE_ACCESS_DENIED, "STORAGE_ACCESS_DENIED"},
        {CYB_RESULT_DECRYPT_FAILED, "DECRYPT_FAILED"},
        {CYB_RESULT_KMS_ACCESS_DENIED, "KMS_ACCESS_DENIED"},
        {CYB_RESULT_KMS_KEY_NOT_FOUND, "KMS_KEY_NOT_FOUND"},
        {CYB_RESULT_KMS_KEY_DISABLED, "KMS_KEY_DISABLED"},
        {CYB_RESULT_KMS_THROTTLED, "KMS_THROTTLED"},
        {CYB_RESULT_KMS_UNAVAILABLE, "KMS_UNAVAILABLE"},
        {CYB_RESULT_KMS_BAD_RESPONSE, "KMS_BAD_RESPONSE"},
        {CYB_RESULT_WRAP_KEY_SIZE, "WRAP_KEY_SIZE"},
        {CYB_RESULT_UNKNOWN_SLOT, "UNKNOWN_SLOT"},
        {CYB_RESULT_INVALID_CONFIG, "INVALID_CONFIG"},
        {CYB_RESULT_KEK_NOT_WRAPPED, "KEK_NOT_WRAPPED"},
        {CYB_RESULT_PANIC, "PANIC"},
        {CYB_RESULT_FORKED_PROCESS, "FORKED_PROCESS"},
    };
    for (const auto& [code, name] : codes) {
        EXPECT_STREQ(cyb_result_name(code), name);
    }
    // The numbers are part of the ABI.
    EXPECT_EQ(CYB_RESULT_OK, 0u);
    EXPECT_EQ(CYB_RESULT_INVALID_ARGUMENT, 100u);
    EXPECT_EQ(CYB_RESULT_NULL_PARAMETER, 101u);
    EXPECT_EQ(CYB_RESULT_NOT_FOUND, 200u);
    EXPECT_EQ(CYB_RESULT_ALREADY_EXISTS, 201u);
    EXPECT_EQ(CYB_RESULT_CORRUPT, 202u);
    EXPECT_EQ(CYB_RESULT_CONFLICT, 203u);
    EXPECT_EQ(CYB_RESULT_IO, 300u);
    EXPECT_EQ(CYB_RESULT_STORAGE_UNAVAILABLE, 301u);
    EXPECT_EQ(CYB_RESULT_STORAGE_ACCESS_DENIED, 302u);
    EXPECT_EQ(CYB_RESULT_DECRYPT_FAILED, 400u);
    EXPECT_EQ(CYB_RESULT_KMS_ACCESS_DENIED, 401u);
    EXPECT_EQ(CYB_RESULT_KMS_KEY_NOT_FOUND, 402u);
    EXPECT_EQ(CYB_RESULT_KMS_KEY_DISABLED, 403u);
    EXPECT_EQ(CYB_RESULT_KMS_THROTTLED, 404u);
    EXPECT_EQ(CYB_RESULT_KMS_UNAVAILABLE, 405u);
    EXPECT_EQ(CYB_RESULT_KMS_BAD_RESPONSE, 406u);
    EXPECT_EQ(CYB_RESULT_WRAP_KEY_SIZE, 407u);
    EXPECT_EQ(CYB_RESULT_UNKNOWN_SLOT, 408u);
    EXPECT_EQ(CYB_RESULT_INVALID_CONFIG, 409u);
    EXPECT_EQ(CYB_RESULT_KEK_NOT_WRAPPED, 410u);
    EXPECT_EQ(CYB_RESULT_PANIC, 900u);
    EXPECT_EQ(CYB_RESULT_FORKED_PROCESS, 902u);
    EXPECT_EQ(CYB_RESULT_CALLBACK_FAILED, 102u);
    EXPECT_STREQ(cyb_result_name(CYB_RESULT_CALLBACK_FAILED), "CALLBACK_FAILED");
    for (uint32_t unknown : {1u, 99u, 103u, 199u, 204u, 303u, 412u, 899u, 901u, 12345u, UINT32_MAX}) {
        EXPECT_STREQ(cyb_result_name(unknown), "UNKNOWN") << unknown;
    }
}

TEST(CVersion, MatchesTheMacros) {
    const std::string expected = std::to_string(CYB_KMS_VERSION_MAJOR) + "." +
                                 std::to_string(CYB_KMS_VERSION_MINOR) + "." +
                                 std::to_string(CYB_KMS_VERSION_PATCH);
    EXPECT_EQ(std::string(cyb_version()), expected);
    EXPECT_EQ(cyb_version_number(), static_cast<uint32_t>(CYB_KMS_VERSION_NUMBER));
    EXPECT_EQ(CYB_KMS_VERSION_NUMBER,
              CYB_KMS_VERSION_MAJOR * 10000 + CYB_KMS_VERSION_MINOR * 100 + CYB_KMS_VERSION_PATCH);
    EXPECT_EQ(CYB_MAX_INDEX_NAME_LEN, 255);
    EXPECT_EQ(CYB_MAX_STRING_FIELD_LEN, 2048);
    EXPECT_EQ(CYB_MAX_WRAPPED_KEK_LEN, 8192);
}

TEST(CLastError, IsPerThreadAndKeptUntilTheNextFailure) {
    // A thread that never failed has an empty message (never NULL).
    std::thread([] {
        ASSERT_NE(cyb_last_error_message(), nullptr);
        EXPECT_STREQ(cyb_last_error_message(), "");
    }).join();

    ConfigPtr config = c_memory();
    cyb_kms_blob* out = nullptr;
    ASSERT_EQ(c_get(config.get(), "mine", &out), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(last_error(), "index \"mine\": no KMS envelope is stored");

    // A success does not clear it.
    BlobPtr b = c_blob();
    ASSERT_EQ(c_create(config.get(), "other", b.get()), CYB_RESULT_OK);
    EXPECT_EQ(last_error(), "index \"mine\": no KMS envelope is stored");

    // Another thread's failure does not change this thread's message.
    std::thread([&] {
        cyb_kms_blob* o = nullptr;
        EXPECT_EQ(c_get(config.get(), "theirs", &o), CYB_RESULT_NOT_FOUND);
        EXPECT_EQ(last_error(), "index \"theirs\": no KMS envelope is stored");
    }).join();
    EXPECT_EQ(last_error(), "index \"mine\": no KMS envelope is stored");

    // The next failure replaces it.
    EXPECT_EQ(c_create(config.get(), "other", b.get()), CYB_RESULT_ALREADY_EXISTS);
    EXPECT_EQ(last_error(), "index \"other\": a KMS envelope already exists");
}

TEST(CLastError, NeverContainsKeyMaterial) {
    ConfigPtr config = c_memory();
    cyborg::KMSBlob secret = aws_kms_blob();
    const std::string marker = "SECRETKEKBYTES";
    secret.wrapped_kek.assign(marker.begin(), marker.end());
    BlobPtr b = cyborg::detail::to_c_blob(secret);
    ASSERT_EQ(c_create(config.get(), "idx", b.get()), CYB_RESULT_OK);
    EXPECT_EQ(c_create(config.get(), "idx", b.get()), CYB_RESULT_ALREADY_EXISTS);
    EXPECT_EQ(last_error().find(marker), std::string::npos);
    secret.wrapped_kek.resize(CYB_MAX_WRAPPED_KEK_LEN + 1, 'S');
    BlobPtr big = cyborg::detail::to_c_blob(secret);
    EXPECT_EQ(c_push(config.get(), "idx", big.get()), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(last_error().find(marker), std::string::npos) << last_error();
}
