// The C++ API (index_kms.hpp): types, exception mapping, the documented seed 000 flow,
// StorageConfig sharing, created_at stamping.
#include "cyborgdb_core/index_kms.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "test_support.hpp"

using namespace cyb_test;

// ---------------------------------------------------------------------------------------------
// Seed 000, the documented C++ snippets, verbatim (each snippet is one function body; the second
// snippet uses the `config` of the first, so it takes it as a parameter).
// ---------------------------------------------------------------------------------------------

namespace seed000 {

void snippet1_store_verbatim() {
  // Where the index keystore lives
  cyborg::StorageConfig config = cyborg::StorageConfig::Disk("/tmp/cyborgdb");

  cyborg::KMSBlob blob;
  blob.kms_name = "prod-kms";
  blob.provider = "aws-kms";
  blob.key_id = "arn:aws:kms:us-east-1:123456789012:key/abcd-...";
  blob.region = "us-east-1";
  blob.wrapped_kek = {/* KEK wrapped by the external KMS */};
  blob.version = 1;

  // Strict insert (throws if an envelope already exists for this index)
  cyborg::CreateIndexKMS(config, "my_index", blob);

  // Idempotent upsert (creates or overwrites)
  cyborg::PushIndexKMS(config, "my_index", blob);
}

void snippet2_read_and_delete_verbatim(const cyborg::StorageConfig& config) {
  // Read the envelope back
  cyborg::KMSBlob blob = cyborg::GetIndexKMS(config, "my_index");
  // ... unwrap blob.wrapped_kek with your KMS to recover the 32-byte KEK ...

  // Delete the envelope (idempotent)
  cyborg::DeleteIndexKMS(config, "my_index");
}

/// Snippet 1 on a given store, with the one change a real caller makes: actual wrapped bytes
/// where the docs leave a placeholder comment.
void snippet1_store(const cyborg::StorageConfig& config, const std::vector<uint8_t>& wrapped) {
  cyborg::KMSBlob blob;
  blob.kms_name = "prod-kms";
  blob.provider = "aws-kms";
  blob.key_id = "arn:aws:kms:us-east-1:123456789012:key/abcd-...";
  blob.region = "us-east-1";
  blob.wrapped_kek = wrapped;
  blob.version = 1;

  // Strict insert (throws if an envelope already exists for this index)
  cyborg::CreateIndexKMS(config, "my_index", blob);

  // Idempotent upsert (creates or overwrites)
  cyborg::PushIndexKMS(config, "my_index", blob);
}

}  // namespace seed000

TEST(Seed000, VerbatimSnippetCompilesAndItsEmptyPlaceholderKekIsRejected) {
    // Run literally, the snippet's `wrapped_kek = {}` breaks the rule that provider "aws-kms" needs
    // a wrapped KEK: CreateIndexKMS throws before anything is written to /tmp/cyborgdb.
    const bool existed = fs::exists("/tmp/cyborgdb/my_index.kms");
    try {
        seed000::snippet1_store_verbatim();
        FAIL() << "expected InvalidArgumentError";
    } catch (const cyborg::InvalidArgumentError& e) {
        EXPECT_EQ(e.code(), CYB_RESULT_INVALID_ARGUMENT);
        EXPECT_STREQ(e.what(),
                     "INVALID_ARGUMENT: index \"my_index\": invalid KMS envelope: provider \"aws-kms\" "
                     "needs a non-empty wrapped_kek");
    }
    EXPECT_EQ(fs::exists("/tmp/cyborgdb/my_index.kms"), existed);
}

class Seed000Flow : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(Stores, Seed000Flow, testing::Values(Backend::Memory, Backend::Disk),
                         backend_name);

TEST_P(Seed000Flow, StoreReadDelete) {
    const std::vector<uint8_t> wrapped(184, 0x5A);
    const int64_t before = unix_now();
    seed000::snippet1_store(config(), wrapped);
    const int64_t after = unix_now();

    const cyborg::KMSBlob got = cyborg::GetIndexKMS(config(), "my_index");
    EXPECT_EQ(got.kms_name, "prod-kms");
    EXPECT_EQ(got.provider, "aws-kms");
    EXPECT_EQ(got.key_id, "arn:aws:kms:us-east-1:123456789012:key/abcd-...");
    EXPECT_EQ(got.region, "us-east-1");
    EXPECT_EQ(got.wrapped_kek, wrapped);
    EXPECT_EQ(got.version, 1u);
    EXPECT_GE(got.created_at, before);  // left 0 by the snippet: stamped
    EXPECT_LE(got.created_at, after);
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()), (std::set<std::string>{"my_index.kms"}));
    }

    // Running snippet 1 again: the strict insert throws.
    EXPECT_THROW(seed000::snippet1_store(config(), wrapped), cyborg::AlreadyExistsError);

    seed000::snippet2_read_and_delete_verbatim(config());
    EXPECT_EQ(cyborg::TryGetIndexKMS(config(), "my_index"), std::nullopt);
    EXPECT_THROW(cyborg::GetIndexKMS(config(), "my_index"), cyborg::NotFoundError);
    // Snippet 2 again: get throws NotFoundError, as there is nothing left to read.
    EXPECT_THROW(seed000::snippet2_read_and_delete_verbatim(config()), cyborg::NotFoundError);
    cyborg::DeleteIndexKMS(config(), "my_index");  // idempotent
    if (GetParam() == Backend::Disk) {
        EXPECT_TRUE(list_dir(root()).empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

namespace {
// The documented struct, field for field: KMSBlob must have exactly this layout.
struct DocumentedKMSBlob {
    std::string kms_name;
    std::string provider;
    std::string key_id;
    std::string region;
    std::vector<uint8_t> wrapped_kek;
    uint32_t version = 0;
    int64_t created_at = 0;
};
}  // namespace

static_assert(sizeof(cyborg::KMSBlob) == sizeof(DocumentedKMSBlob), "KMSBlob has extra fields");
static_assert(std::is_aggregate_v<cyborg::KMSBlob>, "KMSBlob is a plain struct");
static_assert(std::is_same_v<decltype(cyborg::KMSBlob::version), uint32_t>);
static_assert(std::is_same_v<decltype(cyborg::KMSBlob::created_at), int64_t>);
static_assert(std::is_same_v<decltype(cyborg::KMSBlob::wrapped_kek), std::vector<uint8_t>>);
static_assert(!std::is_default_constructible_v<cyborg::StorageConfig>, "no public default ctor");
static_assert(std::is_copy_constructible_v<cyborg::StorageConfig>);
static_assert(std::is_nothrow_destructible_v<cyborg::StorageConfig>);
static_assert(std::is_same_v<decltype(std::declval<const cyborg::StorageConfig&>().c_handle()),
                             const cyb_storage_config*>);
static_assert(noexcept(std::declval<const cyborg::StorageConfig&>().c_handle()));

// The exception hierarchy.
static_assert(!std::is_base_of_v<std::exception, cyborg::Error>, "Error is a mixin");
static_assert(std::is_polymorphic_v<cyborg::Error>);
static_assert(noexcept(std::declval<const cyborg::Error&>().code()));
template <typename E, typename Std>
constexpr bool kMapsTo = std::is_base_of_v<Std, E> && std::is_base_of_v<cyborg::Error, E> &&
                         std::is_base_of_v<std::exception, E> && std::is_nothrow_destructible_v<E>;
static_assert(kMapsTo<cyborg::InvalidArgumentError, std::invalid_argument>);
static_assert(kMapsTo<cyborg::NotFoundError, std::invalid_argument>);
static_assert(kMapsTo<cyborg::AlreadyExistsError, std::invalid_argument>);
static_assert(kMapsTo<cyborg::IOError, std::runtime_error>);
static_assert(kMapsTo<cyborg::CorruptDataError, std::runtime_error>);
static_assert(kMapsTo<cyborg::InternalError, std::runtime_error>);
static_assert(kMapsTo<cyborg::ForkedProcessError, std::runtime_error>);
static_assert(kMapsTo<cyborg::CallbackFailedError, std::runtime_error>);
static_assert(!std::is_base_of_v<std::runtime_error, cyborg::NotFoundError>);
static_assert(!std::is_base_of_v<std::logic_error, cyborg::IOError>);

TEST(KMSBlobType, DefaultsAndFieldOrder) {
    const cyborg::KMSBlob empty;
    EXPECT_TRUE(empty.kms_name.empty());
    EXPECT_TRUE(empty.provider.empty());
    EXPECT_TRUE(empty.key_id.empty());
    EXPECT_TRUE(empty.region.empty());
    EXPECT_TRUE(empty.wrapped_kek.empty());
    EXPECT_EQ(empty.version, 0u);
    EXPECT_EQ(empty.created_at, 0);
    // Aggregate initialization follows the documented order.
    const cyborg::KMSBlob b{"n", "aws", "k", "r", {1, 2}, 3, 4};
    EXPECT_EQ(b.kms_name, "n");
    EXPECT_EQ(b.provider, "aws");
    EXPECT_EQ(b.key_id, "k");
    EXPECT_EQ(b.region, "r");
    EXPECT_EQ(b.wrapped_kek, (std::vector<uint8_t>{1, 2}));
    EXPECT_EQ(b.version, 3u);
    EXPECT_EQ(b.created_at, 4);
    EXPECT_TRUE(b == b);
    cyborg::KMSBlob c = b;
    c.created_at = 5;
    EXPECT_TRUE(b != c);
}

// ---------------------------------------------------------------------------------------------
// Exception mapping: each type caught as its standard family, as cyborg::Error with the right
// code, and as std::exception; what() is "<CODE_NAME>: <cyb_last_error_message()>".
// ---------------------------------------------------------------------------------------------

namespace {

template <typename E, typename Std, typename F>
void expect_error(F&& call, cyb_result code, const std::string& message) {
    const std::string expected_what = std::string(cyb_result_name(code)) + ": " + message;
    try {
        call();
        ADD_FAILURE() << "no exception; expected " << expected_what;
    } catch (const E& e) {
        EXPECT_EQ(e.code(), code);
        EXPECT_EQ(std::string(e.what()), expected_what);
    }
    try {
        call();
    } catch (const Std& e) {
        EXPECT_EQ(std::string(e.what()), expected_what);
        const auto* mixin = dynamic_cast<const cyborg::Error*>(&e);
        ASSERT_NE(mixin, nullptr);
        EXPECT_EQ(mixin->code(), code);
    }
    try {
        call();
    } catch (const cyborg::Error& e) {
        EXPECT_EQ(e.code(), code);
        const auto* std_exception = dynamic_cast<const std::exception*>(&e);
        ASSERT_NE(std_exception, nullptr);
        EXPECT_EQ(std::string(std_exception->what()), expected_what);
        EXPECT_NE(dynamic_cast<const E*>(&e), nullptr);
    }
    try {
        call();
    } catch (const std::exception& e) {  // never ambiguous
        EXPECT_EQ(std::string(e.what()), expected_what);
    }
}

}  // namespace

TEST(Exceptions, InvalidArgumentFromTheLibrary) {
    const auto config = cyborg::StorageConfig::Memory();
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [&] { cyborg::GetIndexKMS(config, ""); }, CYB_RESULT_INVALID_ARGUMENT,
        "index name must not be empty");
    expect_error<cyborg::InvalidArgumentError, std::logic_error>(
        [&] { cyborg::CreateIndexKMS(config, std::string("a\0b", 3), aws_kms_blob()); },
        CYB_RESULT_INVALID_ARGUMENT, "index name \"a\\0b\" contains a NUL byte");
    cyborg::KMSBlob bad = aws_kms_blob();
    bad.provider = "gcp";
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [&] { cyborg::PushIndexKMS(config, "idx", bad); }, CYB_RESULT_INVALID_ARGUMENT,
        "index \"idx\": invalid KMS envelope: provider must be \"aws\", \"aws-kms\", \"none\" or \"local\", not \"gcp\"");
    // Invalid UTF-8 in a field is rejected by the C setter already.
    cyborg::KMSBlob not_utf8 = aws_kms_blob();
    not_utf8.key_id = "\xff";
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [&] { cyborg::CreateIndexKMS(config, "idx", not_utf8); }, CYB_RESULT_INVALID_ARGUMENT,
        "value is not valid UTF-8 (invalid byte at offset 0)");
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [&] { cyborg::DeleteIndexKMS(config, std::string("\xc3", 1)); }, CYB_RESULT_INVALID_ARGUMENT,
        "index_name is not valid UTF-8 (invalid byte at offset 0)");
    EXPECT_EQ(cyborg::TryGetIndexKMS(config, "idx"), std::nullopt) << "nothing was stored";
}

TEST(Exceptions, NullParameterIsAnInvalidArgumentError) {
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [] { cyborg::detail::check(cyb_kms_blob_new(nullptr)); }, CYB_RESULT_NULL_PARAMETER,
        "cyb_kms_blob_new: argument `out_blob` is NULL");
}

TEST(Exceptions, NotFound) {
    const auto config = cyborg::StorageConfig::Memory();
    expect_error<cyborg::NotFoundError, std::invalid_argument>(
        [&] { cyborg::GetIndexKMS(config, "missing"); }, CYB_RESULT_NOT_FOUND,
        "index \"missing\": no KMS envelope is stored");
}

TEST(Exceptions, AlreadyExists) {
    const auto config = cyborg::StorageConfig::Memory();
    cyborg::CreateIndexKMS(config, "idx", aws_kms_blob("first"));
    expect_error<cyborg::AlreadyExistsError, std::invalid_argument>(
        [&] { cyborg::CreateIndexKMS(config, "idx", aws_kms_blob("second")); },
        CYB_RESULT_ALREADY_EXISTS, "index \"idx\": a KMS envelope already exists");
    EXPECT_EQ(cyborg::GetIndexKMS(config, "idx"), aws_kms_blob("first"));
}

TEST(Exceptions, IOErrorWhenTheRootIsAFile) {
    TempDir dir;
    const fs::path file = dir.path() / "not-a-dir";
    write_file(file, {'x'});
    const auto config = cyborg::StorageConfig::Disk(file);
    const std::string envelope = "\"" + (file / "idx.kms").string() + "\"";
    const std::string not_a_dir = "Not a directory (os error 20)";
    expect_error<cyborg::IOError, std::runtime_error>(
        [&] { cyborg::GetIndexKMS(config, "idx"); }, CYB_RESULT_IO,
        "index \"idx\": cannot open " + envelope + ": " + not_a_dir);
    expect_error<cyborg::IOError, std::runtime_error>(
        [&] { cyborg::TryGetIndexKMS(config, "idx"); }, CYB_RESULT_IO,
        "index \"idx\": cannot open " + envelope + ": " + not_a_dir);
    // Delete first opens the root (for the writers' lock): the root is what is wrong.
    expect_error<cyborg::IOError, std::runtime_error>(
        [&] { cyborg::DeleteIndexKMS(config, "idx"); }, CYB_RESULT_IO,
        "index \"idx\": cannot open \"" + file.string() + "\": " + not_a_dir);
    for (auto op : {cyborg::CreateIndexKMS, cyborg::PushIndexKMS}) {
        try {
            op(config, "idx", aws_kms_blob());
            ADD_FAILURE() << "expected IOError";
        } catch (const cyborg::IOError& e) {
            EXPECT_EQ(e.code(), CYB_RESULT_IO);
            const std::string what = e.what();
            EXPECT_EQ(what.rfind("IO: index \"idx\": cannot create a temp file in ", 0), 0u) << what;
            EXPECT_NE(what.find(not_a_dir), std::string::npos) << what;
        }
    }
    EXPECT_EQ(read_file(file), std::vector<uint8_t>{'x'});
}

TEST(Exceptions, CorruptData) {
    TempDir dir;
    const auto config = cyborg::StorageConfig::Disk(dir.path());
    write_file(dir.path() / "idx.kms", {'g', 'a', 'r', 'b', 'a', 'g', 'e'});
    try {
        cyborg::GetIndexKMS(config, "idx");
        FAIL() << "expected CorruptDataError";
    } catch (const std::runtime_error& e) {
        const auto* mixin = dynamic_cast<const cyborg::Error*>(&e);
        ASSERT_NE(mixin, nullptr);
        EXPECT_EQ(mixin->code(), CYB_RESULT_CORRUPT);
        EXPECT_NE(dynamic_cast<const cyborg::CorruptDataError*>(&e), nullptr);
        const std::string what = e.what();
        const std::string prefix = "CORRUPT: index \"idx\": stored KMS envelope at \"" +
                                   (dir.path() / "idx.kms").string() + "\" is corrupt: ";
        EXPECT_EQ(what.rfind(prefix, 0), 0u) << what;
        EXPECT_EQ(what, std::string("CORRUPT: ") + cyb_last_error_message());
    }
    EXPECT_THROW(cyborg::TryGetIndexKMS(config, "idx"), cyborg::CorruptDataError);
    try {
        cyborg::TryGetIndexKMS(config, "idx");
    } catch (const cyborg::Error& e) {
        EXPECT_EQ(e.code(), CYB_RESULT_CORRUPT);
    }
}

TEST(Exceptions, InternalErrorForPanicAndUnknownCodes) {
    expect_error<cyborg::InternalError, std::runtime_error>(
        [] { cyborg::detail::throw_error(CYB_RESULT_PANIC, "boom"); }, CYB_RESULT_PANIC, "boom");
    const auto unknown = static_cast<cyb_result>(12345);
    try {
        cyborg::detail::throw_error(unknown, "what is this");
        FAIL() << "expected InternalError";
    } catch (const cyborg::InternalError& e) {
        EXPECT_EQ(static_cast<uint32_t>(e.code()), 12345u);
        EXPECT_STREQ(e.what(), "UNKNOWN: what is this");
    }
    EXPECT_THROW(cyborg::detail::check(static_cast<cyb_result>(412)), cyborg::InternalError);
    EXPECT_NO_THROW(cyborg::detail::check(CYB_RESULT_OK));
}

TEST(Exceptions, CheckMapsEveryCode) {
    // check() throws the documented type for each code, with the thread's last error message.
    const auto config = cyborg::StorageConfig::Memory();
    ASSERT_THROW(cyborg::GetIndexKMS(config, "m"), cyborg::NotFoundError);  // sets the message
    const std::string message = cyb_last_error_message();
    auto thrown_code = [](cyb_result code) -> std::pair<cyb_result, std::string> {
        try {
            cyborg::detail::check(code);
        } catch (const cyborg::Error& e) {
            return {e.code(), dynamic_cast<const std::exception&>(e).what()};
        }
        return {CYB_RESULT_OK, ""};
    };
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_INVALID_ARGUMENT), cyborg::InvalidArgumentError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_NULL_PARAMETER), cyborg::InvalidArgumentError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_NOT_FOUND), cyborg::NotFoundError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_ALREADY_EXISTS), cyborg::AlreadyExistsError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_CORRUPT), cyborg::CorruptDataError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_IO), cyborg::IOError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_CONFLICT), cyborg::ConflictError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_PANIC), cyborg::InternalError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_FORKED_PROCESS), cyborg::ForkedProcessError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_CALLBACK_FAILED), cyborg::CallbackFailedError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_STORAGE_UNAVAILABLE),
                 cyborg::StorageUnavailableError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_STORAGE_ACCESS_DENIED),
                 cyborg::StorageAccessDeniedError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_UNKNOWN_SLOT), cyborg::UnknownSlotError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_INVALID_CONFIG), cyborg::InvalidConfigError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KEK_NOT_WRAPPED), cyborg::KEKNotWrappedError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_DECRYPT_FAILED), cyborg::DecryptFailedError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_ACCESS_DENIED), cyborg::KMSAccessDeniedError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_KEY_NOT_FOUND), cyborg::KMSKeyNotFoundError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_KEY_DISABLED), cyborg::KMSKeyDisabledError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_THROTTLED), cyborg::KMSThrottledError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_UNAVAILABLE), cyborg::KMSUnavailableError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_BAD_RESPONSE), cyborg::KMSBadResponseError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_WRAP_KEY_SIZE), cyborg::WrapKeySizeError);
    // The KMS provider errors share one catchable base; the configuration errors are
    // std::invalid_argument, the provider and storage errors std::runtime_error.
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_KMS_THROTTLED), cyborg::KMSError);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_WRAP_KEY_SIZE), std::runtime_error);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_UNKNOWN_SLOT), std::invalid_argument);
    EXPECT_THROW(cyborg::detail::check(CYB_RESULT_STORAGE_UNAVAILABLE), std::runtime_error);
    for (cyb_result code : {CYB_RESULT_INVALID_ARGUMENT, CYB_RESULT_NULL_PARAMETER, CYB_RESULT_NOT_FOUND,
                            CYB_RESULT_ALREADY_EXISTS, CYB_RESULT_CORRUPT, CYB_RESULT_CONFLICT,
                            CYB_RESULT_IO,
                            CYB_RESULT_STORAGE_UNAVAILABLE, CYB_RESULT_STORAGE_ACCESS_DENIED,
                            CYB_RESULT_DECRYPT_FAILED, CYB_RESULT_KMS_ACCESS_DENIED,
                            CYB_RESULT_KMS_KEY_NOT_FOUND, CYB_RESULT_KMS_KEY_DISABLED,
                            CYB_RESULT_KMS_THROTTLED, CYB_RESULT_KMS_UNAVAILABLE,
                            CYB_RESULT_KMS_BAD_RESPONSE, CYB_RESULT_WRAP_KEY_SIZE,
                            CYB_RESULT_UNKNOWN_SLOT, CYB_RESULT_INVALID_CONFIG,
                            CYB_RESULT_KEK_NOT_WRAPPED, CYB_RESULT_PANIC,
                            CYB_RESULT_FORKED_PROCESS, CYB_RESULT_CALLBACK_FAILED}) {
        const auto [got, what] = thrown_code(code);
        EXPECT_EQ(got, code);
        EXPECT_EQ(what, std::string(cyb_result_name(code)) + ": " + message);
    }
}

// ---------------------------------------------------------------------------------------------
// StorageConfig
// ---------------------------------------------------------------------------------------------

TEST(StorageConfigApi, DiskWithoutAPathIsInvalid) {
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [] { cyborg::StorageConfig::Disk(std::nullopt); }, CYB_RESULT_INVALID_ARGUMENT,
        "Disk storage needs a path");
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [] { cyborg::StorageConfig::Disk(std::nullopt, cyborg::CachePolicy{true, true, true}); },
        CYB_RESULT_INVALID_ARGUMENT, "Disk storage needs a path");
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [] { cyborg::StorageConfig::Disk(fs::path()); }, CYB_RESULT_INVALID_ARGUMENT,
        "disk storage path must not be empty");
    expect_error<cyborg::InvalidArgumentError, std::invalid_argument>(
        [] { cyborg::StorageConfig::Disk(fs::path(std::string("/tmp/a\0b", 8))); },
        CYB_RESULT_INVALID_ARGUMENT, "disk storage path contains a NUL byte");
}

TEST(StorageConfigApi, CachePolicyIsAcceptedAndIgnored) {
    const cyborg::CachePolicy defaults;
    EXPECT_FALSE(defaults.vectors);
    EXPECT_FALSE(defaults.metadata);
    EXPECT_FALSE(defaults.ids);
    TempDir dir;
    const auto plain = cyborg::StorageConfig::Disk(dir.path());
    const auto cached = cyborg::StorageConfig::Disk(dir.path(), cyborg::CachePolicy{true, true, true});
    cyborg::CreateIndexKMS(cached, "idx", aws_kms_blob());
    EXPECT_EQ(cyborg::GetIndexKMS(plain, "idx"), aws_kms_blob());
    EXPECT_EQ(list_dir(dir.path()), (std::set<std::string>{"idx.kms"}));
}

TEST(StorageConfigApi, MemoryCopiesShareAndSeparateStoresDoNot) {
    std::optional<cyborg::StorageConfig> original = cyborg::StorageConfig::Memory();
    const cyborg::StorageConfig copy = *original;
    cyborg::StorageConfig assigned = cyborg::StorageConfig::Memory();
    assigned = copy;
    EXPECT_EQ(copy.c_handle(), original->c_handle());
    EXPECT_NE(copy.c_handle(), nullptr);

    cyborg::CreateIndexKMS(*original, "idx", aws_kms_blob("shared"));
    EXPECT_EQ(cyborg::GetIndexKMS(copy, "idx"), aws_kms_blob("shared"));
    EXPECT_EQ(cyborg::GetIndexKMS(assigned, "idx"), aws_kms_blob("shared"));
    EXPECT_THROW(cyborg::CreateIndexKMS(copy, "idx", aws_kms_blob()), cyborg::AlreadyExistsError);

    const auto other = cyborg::StorageConfig::Memory();
    EXPECT_NE(other.c_handle(), copy.c_handle());
    EXPECT_EQ(cyborg::TryGetIndexKMS(other, "idx"), std::nullopt);
    cyborg::CreateIndexKMS(other, "idx", aws_kms_blob("other"));
    EXPECT_EQ(cyborg::GetIndexKMS(copy, "idx"), aws_kms_blob("shared"));

    // The store lives as long as any copy.
    original.reset();
    EXPECT_EQ(cyborg::GetIndexKMS(copy, "idx"), aws_kms_blob("shared"));
    cyborg::DeleteIndexKMS(assigned, "idx");
    EXPECT_EQ(cyborg::TryGetIndexKMS(copy, "idx"), std::nullopt);
}

TEST(StorageConfigApi, DiskConfigsOnOneRootShareEnvelopes) {
    TempDir dir;
    const auto a = cyborg::StorageConfig::Disk(dir.path() / "root");
    const auto b = cyborg::StorageConfig::Disk(std::optional<fs::path>(dir.path() / "root"));
    const auto other = cyborg::StorageConfig::Disk((dir.path() / "other").string());
    cyborg::CreateIndexKMS(a, "idx", aws_kms_blob("a"));
    EXPECT_EQ(cyborg::GetIndexKMS(b, "idx"), aws_kms_blob("a"));
    EXPECT_THROW(cyborg::CreateIndexKMS(b, "idx", aws_kms_blob("b")), cyborg::AlreadyExistsError);
    EXPECT_EQ(cyborg::TryGetIndexKMS(other, "idx"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Semantics through the C++ API, on Memory and Disk
// ---------------------------------------------------------------------------------------------

class CppApi : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(Stores, CppApi, testing::Values(Backend::Memory, Backend::Disk), backend_name);

TEST_P(CppApi, ExtremeFieldsRoundTrip) {
    cyborg::KMSBlob blob;
    blob.kms_name = std::string(CYB_MAX_STRING_FIELD_LEN, 'n');
    blob.provider = "aws";
    blob.key_id = "arn:aws:secretsmanager:us-west-2:1:secret:customers/acme/kek-\xe9\x8d\xb5";
    blob.region = "us-west-2";
    for (int i = 0; i < CYB_MAX_WRAPPED_KEK_LEN; ++i) blob.wrapped_kek.push_back(static_cast<uint8_t>(i));
    blob.version = std::numeric_limits<uint32_t>::max();
    blob.created_at = std::numeric_limits<int64_t>::min();
    cyborg::CreateIndexKMS(config(), "extreme", blob);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "extreme"), blob);
    blob.created_at = std::numeric_limits<int64_t>::max();
    blob.version = 0;
    cyborg::PushIndexKMS(config(), "extreme", blob);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "extreme"), blob);
    EXPECT_EQ(cyborg::TryGetIndexKMS(config(), "extreme"), blob);
}

TEST_P(CppApi, ProviderNoneRoundTripsWithNothingKeyDerived) {
    cyborg::KMSBlob blob;
    blob.provider = "none";
    blob.version = 3;
    cyborg::CreateIndexKMS(config(), "byok", blob);
    const cyborg::KMSBlob got = cyborg::GetIndexKMS(config(), "byok");
    EXPECT_EQ(got.provider, "none");
    EXPECT_TRUE(got.wrapped_kek.empty());
    EXPECT_TRUE(got.kms_name.empty());
    EXPECT_EQ(got.version, 3u);
}

TEST_P(CppApi, CreatedAtZeroIsStampedWithNowAndNonZeroIsKept) {
    cyborg::KMSBlob blob = aws_kms_blob();
    blob.created_at = 0;
    const int64_t before = unix_now();
    cyborg::CreateIndexKMS(config(), "created", blob);
    cyborg::PushIndexKMS(config(), "pushed", blob);
    const int64_t after = unix_now();
    EXPECT_EQ(blob.created_at, 0) << "the caller's blob is const and untouched";
    for (const char* name : {"created", "pushed"}) {
        const cyborg::KMSBlob got = cyborg::GetIndexKMS(config(), name);
        EXPECT_GE(got.created_at, before) << name;
        EXPECT_LE(got.created_at, after) << name;
        cyborg::KMSBlob expected = blob;
        expected.created_at = got.created_at;
        EXPECT_EQ(got, expected);
    }
    for (int64_t kept : {int64_t{1}, int64_t{-1}, int64_t{1700000000}, int64_t{4102444800}}) {
        blob.created_at = kept;
        cyborg::PushIndexKMS(config(), "pushed", blob);
        EXPECT_EQ(cyborg::GetIndexKMS(config(), "pushed").created_at, kept);
    }
}

TEST_P(CppApi, VersionIsStoredAsGiven) {
    cyborg::KMSBlob blob = aws_kms_blob();
    cyborg::CreateIndexKMS(config(), "idx", blob);
    blob.version = 2;  // rotation
    cyborg::PushIndexKMS(config(), "idx", blob);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx").version, 2u);
    blob.version = 1;  // no monotonicity rule is enforced
    cyborg::PushIndexKMS(config(), "idx", blob);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx").version, 1u);
}

TEST_P(CppApi, FailedCallsLeaveTheStoredEnvelopeIntact) {
    const cyborg::KMSBlob original = aws_kms_blob("orig");
    cyborg::CreateIndexKMS(config(), "idx", original);
    cyborg::KMSBlob bad = aws_kms_blob("bad");
    bad.region.clear();
    EXPECT_THROW(cyborg::CreateIndexKMS(config(), "idx", bad), cyborg::InvalidArgumentError);
    EXPECT_THROW(cyborg::PushIndexKMS(config(), "idx", bad), cyborg::InvalidArgumentError);
    EXPECT_THROW(cyborg::CreateIndexKMS(config(), "idx", aws_kms_blob("dup")), cyborg::AlreadyExistsError);
    bad = aws_kms_blob("nul");
    bad.kms_name += '\0';
    EXPECT_THROW(cyborg::PushIndexKMS(config(), "idx", bad), cyborg::InvalidArgumentError);
    bad = aws_kms_blob("utf8");
    bad.region = "\xc0\xaf";
    EXPECT_THROW(cyborg::PushIndexKMS(config(), "idx", bad), cyborg::InvalidArgumentError);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx"), original);
}

TEST_P(CppApi, IndexesAreIndependent) {
    cyborg::CreateIndexKMS(config(), "a", aws_kms_blob("a"));
    cyborg::CreateIndexKMS(config(), "A", aws_kms_blob("A"));
    cyborg::CreateIndexKMS(config(), "a ", aws_kms_blob("a "));
    cyborg::DeleteIndexKMS(config(), "a");
    EXPECT_EQ(cyborg::TryGetIndexKMS(config(), "a"), std::nullopt);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "A"), aws_kms_blob("A"));
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "a "), aws_kms_blob("a "));
}

TEST_P(CppApi, TryGetDistinguishesAbsenceFromErrors) {
    EXPECT_EQ(cyborg::TryGetIndexKMS(config(), "idx"), std::nullopt);
    cyborg::PushIndexKMS(config(), "idx", aws_kms_blob());
    const std::optional<cyborg::KMSBlob> got = cyborg::TryGetIndexKMS(config(), "idx");
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, aws_kms_blob());
    EXPECT_THROW(cyborg::TryGetIndexKMS(config(), std::string(256, 'x')), cyborg::InvalidArgumentError);
}

// ---------------------------------------------------------------------------------------------
// Version check (the mismatch through the real entry points: version_mismatch_test.cpp)
// ---------------------------------------------------------------------------------------------

TEST(CppVersion, LoadedLibraryIsTheHeadersVersionAndPassesTheCheck) {
    EXPECT_EQ(cyb_version_number(), static_cast<uint32_t>(CYB_KMS_VERSION_NUMBER));
    EXPECT_NO_THROW(cyborg::detail::require_compatible_library());
    EXPECT_NO_THROW(cyborg::StorageConfig::Memory());
}

TEST(CppVersion, SameMajorIsCompatibleWhateverMinorAndPatch) {
    EXPECT_NO_THROW(cyborg::detail::check_library_version(100, 100, "0.1.0"));
    EXPECT_NO_THROW(cyborg::detail::check_library_version(100, 9999, "0.99.99"));
    EXPECT_NO_THROW(cyborg::detail::check_library_version(10203, 10000, "1.0.0"));
}

TEST(CppVersion, OtherMajorThrowsIncompatibleLibraryErrorNamingBothVersions) {
    try {
        cyborg::detail::check_library_version(10203, 100, "0.1.0");
        FAIL() << "no exception";
    } catch (const cyborg::IncompatibleLibraryError& e) {
        EXPECT_STREQ(e.what(),
                     "cyborgdb-kms: this program was compiled against index_kms.hpp 1.2.3 (major "
                     "version 1) but the loaded libcyborgdb_kms is 0.1.0 (major version 0); rebuild "
                     "the program against the installed library's headers, or install the library "
                     "version it was built with");
    }
    EXPECT_THROW(cyborg::detail::check_library_version(100, 20000, "2.0.0"),
                 cyborg::IncompatibleLibraryError);
    // A std::runtime_error, and deliberately not a cyborg::Error (no library call failed).
    static_assert(std::is_base_of_v<std::runtime_error, cyborg::IncompatibleLibraryError>);
    static_assert(!std::is_base_of_v<cyborg::Error, cyborg::IncompatibleLibraryError>);
}
