// S3 storage from C++ and C against the CTest moto fixture (bucket cyborgdb-test-bucket, seeded by
// tests/support/moto_launcher.py): the C++ API and its exceptions, and the C ABI's argument
// checks (NULL pointers, bad strings, outputs untouched on error) with exact result codes.
// Every store is pointed at 127.0.0.1 explicitly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "cyborgdb_core/index_kms.h"
#include "test_support.hpp"

using namespace cyb_test;

namespace {

const char* const kBucket = "cyborgdb-test-bucket";
cyb_storage_config* const kUntouchedConfig = reinterpret_cast<cyb_storage_config*>(uintptr_t{0x5678});

/// A prefix no other test (or run) uses.
std::string unique_prefix() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    return std::string("cpp-") + info->name() + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

cyborg::S3Options moto_options(const std::string& prefix) {
    cyborg::S3Options opts;
    opts.prefix = prefix;
    opts.region = "us-east-1";
    opts.endpoint = moto_endpoint();
    opts.credentials = cyborg::S3Credentials{"S3ONLYACCESSKEY", "s3-only-secret", std::nullopt};
    return opts;
}

/// A C string view of `s`, which must outlive the view (no temporaries: that overload is deleted).
cyb_str view(const std::string& s) { return cyb_str{s.data(), s.size()}; }
cyb_str view(std::string&&) = delete;
cyb_str view(const char* literal) { return cyb_str{literal, std::strlen(literal)}; }

cyb_result c_new_s3(const std::string& bucket, const cyb_s3_options* options, cyb_storage_config** out) {
    return cyb_storage_config_new_s3(bucket.data(), bucket.size(), options, out);
}

template <typename Exception>
void expect_throws_code(const std::function<void()>& f, cyb_result code, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no exception";
    } catch (const Exception& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("s3-only-secret"), std::string::npos) << e.what();
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// C++ API

TEST(S3Cpp, DocumentedSemanticsOnMoto) {
    const cyborg::StorageConfig config = cyborg::StorageConfig::S3(kBucket, moto_options(unique_prefix()));
    EXPECT_EQ(cyborg::TryGetIndexKMS(config, "idx"), std::nullopt);
    EXPECT_THROW(cyborg::GetIndexKMS(config, "idx"), cyborg::NotFoundError);

    cyborg::CreateIndexKMS(config, "idx", aws_kms_blob("a"));
    expect_throws_code<cyborg::AlreadyExistsError>(
        [&] { cyborg::CreateIndexKMS(config, "idx", aws_kms_blob("b")); }, CYB_RESULT_ALREADY_EXISTS,
        "already exists");
    EXPECT_EQ(cyborg::GetIndexKMS(config, "idx"), aws_kms_blob("a"));

    cyborg::PushIndexKMS(config, "idx", aws_kms_blob("b"));
    EXPECT_EQ(cyborg::GetIndexKMS(config, "idx"), aws_kms_blob("b"));

    // A copy (and a second config on the same bucket and prefix: another node) sees the same.
    const cyborg::StorageConfig copy = config;
    EXPECT_EQ(cyborg::GetIndexKMS(copy, "idx"), aws_kms_blob("b"));

    cyborg::DeleteIndexKMS(config, "idx");
    cyborg::DeleteIndexKMS(config, "idx");
    EXPECT_EQ(cyborg::TryGetIndexKMS(config, "idx"), std::nullopt);
}

TEST(S3Cpp, TwoConfigsOnOneBucketAndPrefixShareEnvelopes) {
    const std::string prefix = unique_prefix();
    const auto a = cyborg::StorageConfig::S3(kBucket, moto_options(prefix));
    const auto b = cyborg::StorageConfig::S3(kBucket, moto_options(prefix + "/"));
    cyborg::CreateIndexKMS(a, "shared", aws_kms_blob("a"));
    EXPECT_EQ(cyborg::GetIndexKMS(b, "shared"), aws_kms_blob("a"));
    EXPECT_THROW(cyborg::CreateIndexKMS(b, "shared", aws_kms_blob("b")), cyborg::AlreadyExistsError);
}

TEST(S3Cpp, CustomEndpointNeedsCredentialsAndSessionTokensWork) {
    cyborg::S3Options opts = moto_options(unique_prefix());
    opts.credentials = std::nullopt;  // the AWS chain is never sent to a custom endpoint
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "an S3 endpoint needs explicit credentials");
    opts.credentials = cyborg::S3Credentials{"S3ONLYACCESSKEY", "s3-only-secret", "a-session-token"};
    cyborg::PushIndexKMS(cyborg::StorageConfig::S3(kBucket, opts), "idx", aws_kms_blob("a"));
    EXPECT_EQ(cyborg::GetIndexKMS(cyborg::StorageConfig::S3(kBucket, opts), "idx"), aws_kms_blob("a"));
}

TEST(S3Cpp, MissingBucketIsStorageAccessDenied) {
    const auto config = cyborg::StorageConfig::S3("no-such-bucket-cpp", moto_options("p"));
    expect_throws_code<cyborg::StorageAccessDeniedError>(
        [&] { cyborg::GetIndexKMS(config, "idx"); }, CYB_RESULT_STORAGE_ACCESS_DENIED, "NoSuchBucket");
    expect_throws_code<cyborg::StorageAccessDeniedError>(
        [&] { cyborg::CreateIndexKMS(config, "idx", aws_kms_blob("a")); },
        CYB_RESULT_STORAGE_ACCESS_DENIED, "S3 PutObject s3://no-such-bucket-cpp/p/idx.kms");
    // Also a std::runtime_error, as the SDK's "store unavailable" family.
    EXPECT_THROW(cyborg::DeleteIndexKMS(config, "idx"), std::runtime_error);
}

TEST(S3Cpp, UnreachableEndpointIsStorageUnavailable) {
    cyborg::S3Options opts = moto_options("p");
    opts.endpoint = "http://127.0.0.1:9";  // a closed port: connection refused
    const auto config = cyborg::StorageConfig::S3(kBucket, opts);
    expect_throws_code<cyborg::StorageUnavailableError>(
        [&] { cyborg::GetIndexKMS(config, "idx"); }, CYB_RESULT_STORAGE_UNAVAILABLE, "unavailable");
}

TEST(S3Cpp, InvalidOptionsThrowInvalidArgumentNamingTheField) {
    expect_throws_code<cyborg::InvalidArgumentError>(
        [] { cyborg::StorageConfig::S3("Not_A_Bucket"); }, CYB_RESULT_INVALID_ARGUMENT, "S3 bucket name");
    expect_throws_code<cyborg::InvalidArgumentError>(
        [] { cyborg::StorageConfig::S3(""); }, CYB_RESULT_INVALID_ARGUMENT, "3 to 63");
    cyborg::S3Options opts;
    opts.endpoint = "127.0.0.1:9000";
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT, "http://");
    opts = {};
    opts.prefix = "/abs";
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT, "prefix");
    opts = {};
    opts.credentials = cyborg::S3Credentials{"", "s3-only-secret", std::nullopt};
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "both a non-empty access_key and secret_key");
    opts.credentials = cyborg::S3Credentials{"AKID", "", std::nullopt};
    EXPECT_THROW(cyborg::StorageConfig::S3(kBucket, opts), cyborg::InvalidArgumentError);
    // Defaults construct without any I/O.
    EXPECT_NO_THROW(cyborg::StorageConfig::S3(kBucket));
}

// ---------------------------------------------------------------------------------------------
// C ABI

TEST(S3CAbi, NullAndEmptyArguments) {
    cyb_storage_config* out = kUntouchedConfig;
    EXPECT_EQ(cyb_storage_config_new_s3(nullptr, 5, nullptr, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(out, kUntouchedConfig);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_s3: argument `bucket` is NULL");
    EXPECT_EQ(cyb_storage_config_new_s3(nullptr, 0, nullptr, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedConfig);
    EXPECT_EQ(c_new_s3(kBucket, nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_s3: argument `out_config` is NULL");

    cyb_s3_options options{};
    options.prefix = cyb_str{nullptr, 3};
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_s3: argument `prefix` is NULL");
    options = cyb_s3_options{};
    cyb_s3_credentials credentials{};
    credentials.access_key = view("AKID");
    credentials.secret_key = cyb_str{nullptr, 4};
    options.credentials = &credentials;
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_s3: argument `credentials.secret_key` is NULL");
    EXPECT_EQ(out, kUntouchedConfig);

    // NULL options: all defaults, no I/O.
    EXPECT_EQ(c_new_s3(kBucket, nullptr, &out), CYB_RESULT_OK);
    ASSERT_NE(out, kUntouchedConfig);
    cyb_storage_config_free(out);
}

TEST(S3CAbi, InvalidStringsAndCredentials) {
    cyb_storage_config* out = kUntouchedConfig;
    const std::string not_utf8 = "buck\xff";
    EXPECT_EQ(c_new_s3(not_utf8, nullptr, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("bucket is not valid UTF-8"), std::string::npos) << last_error();

    cyb_s3_options options{};
    cyb_s3_credentials credentials{};
    credentials.secret_key = view("s3-only-secret");  // access_key empty
    options.credentials = &credentials;
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(last_error().find("s3-only-secret"), std::string::npos) << last_error();

    const std::string endpoint = "http://user:s3-only-secret@127.0.0.1:1";
    options = cyb_s3_options{};
    options.endpoint = view(endpoint);
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("user info"), std::string::npos) << last_error();
    EXPECT_EQ(last_error().find("s3-only-secret"), std::string::npos) << last_error();

    const std::string region = "us east";
    options = cyb_s3_options{};
    options.region = view(region);
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedConfig);
}

TEST(S3CAbi, RoundTripWithTimeoutsAndUnavailableWithinTheBound) {
    const std::string endpoint = moto_endpoint();
    const std::string prefix = unique_prefix();
    const std::string region = "us-east-1";
    cyb_s3_credentials credentials{view("S3ONLYACCESSKEY"), view("s3-only-secret"), cyb_str{nullptr, 0}};
    cyb_s3_options options{};
    options.prefix = view(prefix);
    options.region = view(region);
    options.endpoint = view(endpoint);
    options.credentials = &credentials;
    options.timeouts.connect_timeout_ms = 500;
    options.timeouts.attempt_timeout_ms = 500;
    options.timeouts.operation_timeout_ms = 1000;
    options.timeouts.max_attempts = 2;
    cyb_storage_config* raw = nullptr;
    ASSERT_EQ(c_new_s3(kBucket, &options, &raw), CYB_RESULT_OK);
    const ConfigPtr config(raw);
    const BlobPtr blob = cyborg::detail::to_c_blob(aws_kms_blob("a"));
    ASSERT_EQ(cyb_index_kms_create(config.get(), "idx", 3, blob.get()), CYB_RESULT_OK);
    EXPECT_EQ(cyb_index_kms_create(config.get(), "idx", 3, blob.get()), CYB_RESULT_ALREADY_EXISTS);
    cyb_kms_blob* got = nullptr;
    ASSERT_EQ(cyb_index_kms_get(config.get(), "idx", 3, &got), CYB_RESULT_OK);
    EXPECT_EQ(cyborg::detail::from_c_blob(got), aws_kms_blob("a"));
    cyb_kms_blob_free(got);
    EXPECT_EQ(cyb_index_kms_delete(config.get(), "idx", 3), CYB_RESULT_OK);
    cyb_kms_blob* untouched = reinterpret_cast<cyb_kms_blob*>(uintptr_t{0x1234});
    EXPECT_EQ(cyb_index_kms_get(config.get(), "idx", 3, &untouched), CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(untouched, reinterpret_cast<cyb_kms_blob*>(uintptr_t{0x1234}));

    // The same options against a closed port: STORAGE_UNAVAILABLE, well within the bound.
    const std::string closed = "http://127.0.0.1:9";
    options.endpoint = view(closed);
    ASSERT_EQ(c_new_s3(kBucket, &options, &raw), CYB_RESULT_OK);
    const ConfigPtr unreachable(raw);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(cyb_index_kms_get(unreachable.get(), "idx", 3, &untouched), CYB_RESULT_STORAGE_UNAVAILABLE);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_LT(elapsed, std::chrono::seconds(1 * 2 + 5));
    EXPECT_NE(last_error().find("S3 GetObject s3://cyborgdb-test-bucket/"), std::string::npos)
        << last_error();
}

// ---------------------------------------------------------------------------------------------
// AWS settings (issue #14): encryption, bucket owner, timeouts, retry mode, default credentials

TEST(S3Settings, EncryptionBucketOwnerTimeoutsAndRetryModeOnMoto) {
    cyborg::S3Options opts = moto_options(unique_prefix());
    opts.server_side_encryption = cyborg::S3Encryption::S3;
    opts.expected_bucket_owner = "123456789012";  // moto's account
    opts.connect_timeout = std::chrono::milliseconds(2000);
    opts.attempt_timeout = std::chrono::milliseconds(5000);
    opts.operation_timeout = std::chrono::milliseconds(20000);
    opts.max_attempts = 2;
    opts.initial_backoff = std::chrono::milliseconds(10);
    opts.retry_mode = cyborg::RetryMode::Adaptive;
    const auto config = cyborg::StorageConfig::S3(kBucket, opts);
    cyborg::PushIndexKMS(config, "idx", aws_kms_blob("a"));
    EXPECT_EQ(cyborg::GetIndexKMS(config, "idx"), aws_kms_blob("a"));
    cyborg::DeleteIndexKMS(config, "idx");
}

TEST(S3Settings, UnreachableWithinTheCppTimeouts) {
    cyborg::S3Options opts = moto_options("p");
    opts.endpoint = "http://127.0.0.1:9";
    opts.max_attempts = 1;
    opts.operation_timeout = std::chrono::milliseconds(3000);
    const auto config = cyborg::StorageConfig::S3(kBucket, opts);
    expect_throws_code<cyborg::StorageUnavailableError>(
        [&] { cyborg::GetIndexKMS(config, "idx"); }, CYB_RESULT_STORAGE_UNAVAILABLE, "unreachable");
}

TEST(S3Settings, InvalidSettingsThrowWithExactCodes) {
    cyborg::S3Options opts = moto_options("p");
    opts.expected_bucket_owner = "12345";
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "S3 expected_bucket_owner \"12345\" must be an AWS account id (12 digits)");
    opts = moto_options("p");
    opts.sse_kms_key_id = "alias/x";  // without S3Encryption::KMS
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "sse_kms_key_id is set but server_side_encryption is not CYB_S3_SSE_KMS");
    opts.server_side_encryption = cyborg::S3Encryption::KMS;
    opts.sse_kms_key_id = "alias/with space";
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "S3 server_side_encryption KMS key id \"alias/with space\" must be 1 to 2048 printable");
    opts = moto_options("p");
    opts.attempt_timeout = std::chrono::milliseconds(-1);
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "S3 timeouts must be between 0 and 2^32-1 ms");
    opts = moto_options("p");
    opts.max_attempts = 11;
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "max_attempts must be at most 10 (got 11)");
    opts = moto_options("p");
    opts.retry_mode = static_cast<cyborg::RetryMode>(9);
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "retry_mode is 9");
}

TEST(S3Settings, DefaultCredentialsWithAnEndpointByOptInOnly) {
    cyborg::S3Options opts = moto_options(unique_prefix());
    opts.credentials = std::nullopt;
    expect_throws_code<cyborg::InvalidArgumentError>(
        [&] { cyborg::StorageConfig::S3(kBucket, opts); }, CYB_RESULT_INVALID_ARGUMENT,
        "default_credentials_with_endpoint for an AWS S3 VPC endpoint");
    // Opted in: the default chain's credentials (AWS_ACCESS_KEY_ID from the CTest environment).
    opts.default_credentials_with_endpoint = true;
    const auto config = cyborg::StorageConfig::S3(kBucket, opts);
    cyborg::PushIndexKMS(config, "idx", aws_kms_blob("a"));
    EXPECT_EQ(cyborg::GetIndexKMS(config, "idx"), aws_kms_blob("a"));
}

TEST(S3SettingsCAbi, NewFieldsAreCheckedWithExactCodes) {
    cyb_storage_config* out = kUntouchedConfig;
    cyb_s3_options options{};
    options.server_side_encryption = 9;
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedConfig);
    EXPECT_EQ(last_error(),
              "server_side_encryption is 9: use CYB_S3_SSE_NONE (0), "
              "CYB_S3_SSE_S3 (1) or CYB_S3_SSE_KMS (2)");
    options = cyb_s3_options{};
    options.retry_mode = 3;
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedConfig);
    options = cyb_s3_options{};
    options.expected_bucket_owner = cyb_str{nullptr, 12};
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(last_error(), "cyb_storage_config_new_s3: argument `expected_bucket_owner` is NULL");
    options = cyb_s3_options{};
    options.server_side_encryption = CYB_S3_SSE_S3;
    options.sse_kms_key_id = view("alias/x");
    EXPECT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, kUntouchedConfig);

    // Every new field set: a handle, no I/O.
    const std::string endpoint = "http://127.0.0.1:9";
    options = cyb_s3_options{};
    options.endpoint = view(endpoint);
    options.default_credentials_with_endpoint = true;
    options.server_side_encryption = CYB_S3_SSE_KMS;
    options.sse_kms_key_id = view("alias/envelopes");
    options.expected_bucket_owner = view("123456789012");
    options.retry_mode = CYB_RETRY_MODE_STANDARD;
    ASSERT_EQ(c_new_s3(kBucket, &options, &out), CYB_RESULT_OK);
    ASSERT_NE(out, kUntouchedConfig);
    cyb_storage_config_free(out);
}
