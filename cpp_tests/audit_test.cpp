// The custody audit through the C++ header: StorageConfig::WithAudit records each change,
// VerifyAudit reports an intact chain and then the first break (kind, seq, message) after the
// log is tampered with; KEKResolver::SetAudit; bad options throw naming the field.
#include "cyborgdb_core/index_kms.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace cyb_test;

namespace {

cyborg::KMSBlob none_blob() {
    cyborg::KMSBlob blob;
    blob.provider = "none";
    blob.version = 1;
    return blob;
}

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& line : lines) out << line << '\n';
}

TEST(AuditTest, AnAuditedDiskStoreRecordsEachChangeAndVerifiesIntact) {
    TempDir dir;
    const auto plain = cyborg::StorageConfig::Disk(dir.path() / "root");
    const auto audited = plain.WithAudit({"cpp-test", std::nullopt});
    cyborg::CreateIndexKMS(audited, "a", none_blob());
    cyborg::PushIndexKMS(audited, "a", none_blob());
    cyborg::DeleteIndexKMS(audited, "a");
    cyborg::CreateIndexKMS(plain, "unaudited", none_blob());
    const cyborg::AuditReport report = plain.VerifyAudit();
    EXPECT_TRUE(report.intact());
    EXPECT_EQ(report.records, 3u);
    EXPECT_EQ(report.head_seq, 2u);
    ASSERT_TRUE(report.head_hash.has_value());
    EXPECT_EQ(report.break_kind, cyborg::AuditBreakKind::None);
    EXPECT_EQ(report.break_message, "");
    const auto lines = read_lines(dir.path() / "root" / ".audit" / "log.jsonl");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[0].find("\"principal\":\"cpp-test\""), std::string::npos) << lines[0];
}

TEST(AuditTest, VerifyAuditNamesTheFirstBreak) {
    TempDir dir;
    const auto audited = cyborg::StorageConfig::Disk(dir.path() / "root").WithAudit({"cpp-test", "h1"});
    for (const char* name : {"a", "b", "c", "d"}) cyborg::CreateIndexKMS(audited, name, none_blob());
    const fs::path log = dir.path() / "root" / ".audit" / "log.jsonl";
    auto lines = read_lines(log);
    lines.erase(lines.begin() + 2);
    write_lines(log, lines);
    auto report = audited.VerifyAudit();
    EXPECT_EQ(report.break_kind, cyborg::AuditBreakKind::Removed);
    EXPECT_EQ(report.break_seq, 2u);
    EXPECT_EQ(report.records, 2u);
    EXPECT_EQ(report.break_message, "record 2 is missing: record 3 follows record 1");
    // Nothing is appended to a damaged head, and the change is not made.
    lines.back() = "{\"v\":1";
    write_lines(log, lines);
    EXPECT_THROW(cyborg::CreateIndexKMS(audited, "e", none_blob()), cyborg::CorruptDataError);
    EXPECT_FALSE(cyborg::TryGetIndexKMS(audited, "e").has_value());
}

TEST(AuditTest, BadOptionsThrowNamingTheField) {
    const auto memory = cyborg::StorageConfig::Memory();
    try {
        static_cast<void>(memory.WithAudit({"", std::nullopt}));
        FAIL() << "an empty principal was accepted";
    } catch (const cyborg::InvalidArgumentError& e) {
        EXPECT_STREQ(e.what(), "INVALID_ARGUMENT: audit option principal \"\": must not be empty");
    }
    EXPECT_THROW(static_cast<void>(memory.WithAudit({"ok", std::string("bad\nhost")})),
                 cyborg::InvalidArgumentError);
}

TEST(AuditTest, TheResolverAuditsEveryStoreItActsOn) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "root");
    cyborg::KMSClient client;
    const cyborg::KEKResolver keys(client);
    keys.SetAudit(cyborg::AuditOptions{"resolver", std::nullopt});
    cyborg::KEK key;
    const auto kek = keys.CreateIndex(store, "own", std::nullopt, &key);
    EXPECT_EQ(kek, key);
    keys.SetAudit(std::nullopt);
    static_cast<void>(keys.CreateIndex(store, "own2", std::nullopt, &key));
    const auto report = store.VerifyAudit();
    EXPECT_TRUE(report.intact());
    EXPECT_EQ(report.records, 1u);
}

TEST(AuditTest, UnwrapCountsAreAppendedPerIndexOnFlush) {
    TempDir dir;
    const cyborg::KMSClient client = cyb_test::local_client(dir, {{"main", 9}});
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "root");
    const cyborg::KEKResolver keys(client);
    cyborg::AuditOptions options{"cpp-counts", std::nullopt};
    options.unwrap_counts = std::chrono::seconds(3600);
    keys.SetAudit(options);
    static_cast<void>(keys.CreateIndex(store, "a", std::string("main"), nullptr));
    for (int i = 0; i < 3; ++i) {
        keys.Invalidate(store, "a");
        static_cast<void>(keys.Resolve(store, "a"));
        static_cast<void>(keys.Resolve(store, "a"));  // a hit: not counted
    }
    const fs::path log = dir.path() / "root" / ".audit" / "log.jsonl";
    EXPECT_EQ(read_lines(log).size(), 1u);
    keys.FlushUnwrapCounts();
    const auto lines = read_lines(log);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("\"index\":\"a\",\"event\":{\"type\":\"unwraps\",\"count\":3,\"since_ms\":"),
              std::string::npos)
        << lines[1];
    const auto report = store.VerifyAudit();
    EXPECT_TRUE(report.intact());
    EXPECT_EQ(report.records, 2u);
    keys.FlushUnwrapCounts();
    EXPECT_EQ(read_lines(log).size(), 2u);
    // Out of range: thrown naming the field, through the C++ and the C API.
    options.unwrap_counts = std::chrono::seconds(0);
    cyb_test::expect_code<cyborg::InvalidArgumentError>(
        [&] { keys.SetAudit(options); }, CYB_RESULT_INVALID_ARGUMENT,
        "unwrap_counts must be a whole number of seconds in 1..=86400, not 0s");
    options.unwrap_counts = std::chrono::seconds(86401);
    cyb_test::expect_code<cyborg::InvalidArgumentError>(
        [&] { keys.SetAudit(options); }, CYB_RESULT_INVALID_ARGUMENT, "not 86401s");
    cyb_audit_options c_options{};
    c_options.principal = cyb_str{"p", 1};
    c_options.unwrap_counts_seconds = 86401;
    cyb_storage_config* memory = nullptr;
    ASSERT_EQ(cyb_storage_config_new_memory(&memory), CYB_RESULT_OK);
    cyb_storage_config* audited = nullptr;
    EXPECT_EQ(cyb_storage_config_with_audit(memory, &c_options, &audited), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(audited, nullptr);
    c_options.unwrap_counts_seconds = 86400;
    EXPECT_EQ(cyb_storage_config_with_audit(memory, &c_options, &audited), CYB_RESULT_OK);
    cyb_storage_config_free(audited);
    cyb_storage_config_free(memory);
}

TEST(AuditTest, CErrorPathsReturnTheDocumentedCodes) {
    cyb_storage_config* memory = nullptr;
    ASSERT_EQ(cyb_storage_config_new_memory(&memory), CYB_RESULT_OK);
    cyb_audit_options options{};
    cyb_storage_config* audited = nullptr;
    cyb_audit_report report{};
    EXPECT_EQ(cyb_storage_config_with_audit(nullptr, &options, &audited), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_storage_config_with_audit(memory, nullptr, &audited), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_storage_config_with_audit(memory, &options, nullptr), CYB_RESULT_NULL_PARAMETER);
    // An empty principal; then one that is not UTF-8.
    EXPECT_EQ(cyb_storage_config_with_audit(memory, &options, &audited), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_STREQ(cyb_last_error_message(), "audit option principal \"\": must not be empty");
    const char bad[] = "\xff";
    options.principal = cyb_str{bad, 1};
    EXPECT_EQ(cyb_storage_config_with_audit(memory, &options, &audited), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(audited, nullptr);
    EXPECT_EQ(cyb_verify_audit(nullptr, &report), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_verify_audit(memory, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolver_set_audit(nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolver_flush_unwrap_counts(nullptr), CYB_RESULT_NULL_PARAMETER);
    cyb_storage_config_free(memory);
}

TEST(AuditTest, AnOverlongLogLineIsCorrupt) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "root");
    fs::create_directories(dir.path() / "root" / ".audit");
    {
        std::ofstream out(dir.path() / "root" / ".audit" / "log.jsonl");
        out << std::string(100000, 'x');
    }
    EXPECT_THROW(static_cast<void>(store.VerifyAudit()), cyborg::CorruptDataError);
    cyb_audit_report report{};
    report.records = 7;
    EXPECT_EQ(cyb_verify_audit(store.c_handle(), &report), CYB_RESULT_CORRUPT);
    EXPECT_EQ(report.records, 7u);  // untouched on error
}

}  // namespace
