// C++ and C ABI tests of the KEK resolver: cache hits and misses counted through the statistics,
// the two creation modes, re-wrap, drift, warm-up, invalidation, single flight across threads
// (against the moto CTest fixture), and every C ABI error path with its exact code.
#include <atomic>
#include <thread>

#include "test_support.hpp"

namespace {

using cyb_test::moto_endpoint;
using cyb_test::expect_code;
using cyb_test::TempDir;

using cyb_test::local_client;  // slots "main" (fill 1) and "other" (fill 2)
using cyb_test::local_slot;

cyborg::KEKCacheOptions hour() {
    cyborg::KEKCacheOptions options;
    options.ttl = std::chrono::hours(1);
    return options;
}

TEST(KEKResolver, MissThenHitsCountedInTheStatistics) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "store");
    const auto client = local_client(dir);
    const cyborg::KEKResolver resolver(client, hour());
    const auto kek = resolver.CreateIndex(store, "orders", std::string("main"));
    EXPECT_EQ(resolver.Stats().provider_calls, 1u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(resolver.Resolve(store, "orders") == kek);
    }
    const auto stats = resolver.Stats();
    EXPECT_EQ(stats.misses, 1u);
    EXPECT_EQ(stats.hits, 4u);
    EXPECT_EQ(stats.provider_calls, 2u);
    EXPECT_EQ(stats.entries, 1u);
    EXPECT_EQ(stats.errors, 0u);
}

TEST(KEKResolver, CallerSuppliedKeysAreRecordedAsNoneAndNeverCached) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(local_client(dir), hour());
    cyborg::KEK key;
    key.data()[0] = 42;
    const auto kek = resolver.CreateIndex(store, "sdk", std::nullopt, &key);
    EXPECT_TRUE(kek == key);
    EXPECT_EQ(cyborg::GetIndexKMS(store, "sdk").provider, "none");
    expect_code<cyborg::KEKNotWrappedError>([&] { resolver.Resolve(store, "sdk"); },
                                            CYB_RESULT_KEK_NOT_WRAPPED, "none");
    const auto stats = resolver.Stats();
    EXPECT_EQ(stats.entries, 0u);
    EXPECT_EQ(stats.provider_calls, 0u);
    EXPECT_EQ(stats.errors, 1u);
}

TEST(KEKResolver, CreationNeedsExactlyOneOfKmsNameAndIndexKey) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(local_client(dir), hour());
    const cyborg::KEK key;
    expect_code<cyborg::InvalidArgumentError>(
        [&] { resolver.CreateIndex(store, "x", std::string("main"), &key); },
        CYB_RESULT_INVALID_ARGUMENT, "index_key and kms_name are mutually exclusive");
    expect_code<cyborg::InvalidArgumentError>(
        [&] { resolver.CreateIndex(store, "x", std::nullopt); }, CYB_RESULT_INVALID_ARGUMENT,
        "one of kms_name");
    expect_code<cyborg::UnknownSlotError>(
        [&] { resolver.CreateIndex(store, "x", std::string("nope")); }, CYB_RESULT_UNKNOWN_SLOT,
        "nope");
    EXPECT_FALSE(cyborg::TryGetIndexKMS(store, "x").has_value());
    resolver.CreateIndex(store, "x", std::string("main"));
    expect_code<cyborg::AlreadyExistsError>(
        [&] { resolver.CreateIndex(store, "x", std::string("other")); },
        CYB_RESULT_ALREADY_EXISTS, "x");
    EXPECT_EQ(cyborg::GetIndexKMS(store, "x").kms_name, "main");
}

TEST(KEKResolver, RewrapKeepsTheKekAndInvalidates) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "store");
    const cyborg::KEKResolver resolver(local_client(dir), hour());
    const auto kek = resolver.CreateIndex(store, "idx", std::string("main"));
    resolver.Resolve(store, "idx");
    const auto blob = resolver.Rewrap(store, "idx", "other");
    EXPECT_EQ(blob.kms_name, "other");
    EXPECT_EQ(blob.version, 2u);
    EXPECT_EQ(cyborg::GetIndexKMS(store, "idx"), blob);
    EXPECT_EQ(resolver.Stats().entries, 0u);
    EXPECT_EQ(resolver.Stats().invalidations, 1u);
    EXPECT_TRUE(resolver.Resolve(store, "idx") == kek);
    expect_code<cyborg::UnknownSlotError>([&] { resolver.Rewrap(store, "idx", "nope"); },
                                          CYB_RESULT_UNKNOWN_SLOT, "nope");
    EXPECT_EQ(cyborg::GetIndexKMS(store, "idx"), blob);
}

TEST(KEKResolver, DriftIsReportedThenRewrapped) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "store");
    auto client = local_client(dir);
    const cyborg::KEKResolver resolver(client, hour());
    const auto kek = resolver.CreateIndex(store, "a", std::string("main"));
    const cyborg::KEK key;
    resolver.CreateIndex(store, "sdk", std::nullopt, &key);
    auto report = resolver.CheckDrift(store);
    ASSERT_EQ(report.size(), 2u);
    EXPECT_EQ(report[0].index_name, "a");
    EXPECT_EQ(report[0].status, cyborg::DriftStatus::kInSync);
    EXPECT_EQ(report[1].status, cyborg::DriftStatus::kNotWrapped);
    const std::string old_key_id = "file:" + (dir.path() / "main.key").string();
    client.AddSlot("main", local_slot(dir, "main-new", 9));  // the old key file stays readable
    // Until the operator trusts the old key for the slot, its envelopes are refused, not drift.
    report = resolver.CheckDrift(store);
    EXPECT_EQ(report[0].status, cyborg::DriftStatus::kFailed);
    expect_code<cyborg::UntrustedKeyError>([&] { resolver.Resolve(store, "a"); }, CYB_RESULT_UNTRUSTED_KEY,
                                           "previous_keys: [{provider: local, key_id: \"" + old_key_id);
    client.AddPreviousKey("main", {"local", old_key_id, ""});
    report = resolver.CheckDrift(store);
    EXPECT_EQ(report[0].status, cyborg::DriftStatus::kDrifted);
    ASSERT_TRUE(report[0].stored && report[0].configured);
    EXPECT_NE(report[0].stored->key_id, report[0].configured->key_id);
    EXPECT_EQ(report[0].kms_name, "main");
    EXPECT_EQ(resolver.CheckDrift(store, true)[0].status, cyborg::DriftStatus::kRewrapped);
    EXPECT_EQ(resolver.CheckDrift(store)[0].status, cyborg::DriftStatus::kInSync);
    EXPECT_TRUE(resolver.Resolve(store, "a") == kek);
}

TEST(KEKResolver, WarmUpGivesOneCodePerIndex) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(local_client(dir), hour());
    std::vector<std::string> names;
    for (int i = 0; i < 10; ++i) {
        names.push_back("idx-" + std::to_string(i));
        resolver.CreateIndex(store, names.back(), std::string("main"));
    }
    names.insert(names.begin() + 2, "missing");
    const auto codes = resolver.WarmUp(store, names, 3);
    ASSERT_EQ(codes.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(codes[i], names[i] == "missing" ? CYB_RESULT_NOT_FOUND : CYB_RESULT_OK) << names[i];
    }
    EXPECT_EQ(resolver.Stats().entries, 10u);
    expect_code<cyborg::InvalidArgumentError>([&] { resolver.WarmUp(store, names, 0); },
                                              CYB_RESULT_INVALID_ARGUMENT, "parallelism");
}

TEST(KEKResolver, InvalidateOneOrAll) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(local_client(dir), hour());
    for (const char* name : {"a", "b", "c"}) {
        resolver.CreateIndex(store, name, std::string("main"));
        resolver.Resolve(store, name);
    }
    EXPECT_TRUE(resolver.Invalidate(store, "a"));
    EXPECT_FALSE(resolver.Invalidate(store, "a"));
    EXPECT_EQ(resolver.InvalidateAll(), 2u);
    const auto stats = resolver.Stats();
    EXPECT_EQ(stats.entries, 0u);
    EXPECT_EQ(stats.invalidations, 3u);
    const auto calls = stats.provider_calls;
    resolver.Resolve(store, "b");
    EXPECT_EQ(resolver.Stats().provider_calls, calls + 1);
}

TEST(KEKResolver, AZeroTtlDisablesCaching) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Memory();
    cyborg::KEKCacheOptions options;
    options.ttl = std::chrono::milliseconds(0);
    const cyborg::KEKResolver resolver(local_client(dir), options);
    resolver.CreateIndex(store, "idx", std::string("main"));
    resolver.Resolve(store, "idx");
    resolver.Resolve(store, "idx");
    EXPECT_EQ(resolver.Stats().hits, 0u);
    EXPECT_EQ(resolver.Stats().provider_calls, 3u);
}

TEST(KEKResolver, RevalidationIntervalsAreCheckedAndAnUnchangedEnvelopeIsNotReUnwrapped) {
    TempDir dir;
    const auto client = local_client(dir);
    cyborg::KEKCacheOptions negative;
    negative.revalidate = std::chrono::milliseconds(-1);
    expect_code<cyborg::InvalidArgumentError>([&] { cyborg::KEKResolver r(client, negative); },
                                              CYB_RESULT_INVALID_ARGUMENT,
                                              "revalidation interval must not be negative");
    cyborg::KEKCacheOptions too_long;
    too_long.revalidate = std::chrono::milliseconds(3600001);
    expect_code<cyborg::InvalidConfigError>(
        [&] { cyborg::KEKResolver r(client, too_long); }, CYB_RESULT_INVALID_CONFIG,
        "the KEK envelope revalidation interval must be at most 3600s, not 3600.001s");
    // A 1 ms interval: every resolve after the first is (almost surely) a check; an unchanged
    // envelope is confirmed without a second unwrap, and the KEK stays the same either way.
    const auto store = cyborg::StorageConfig::Disk(dir.path() / "store");
    cyborg::KEKCacheOptions quick = hour();
    quick.revalidate = std::chrono::milliseconds(1);
    const cyborg::KEKResolver resolver(client, quick);
    const auto kek = resolver.CreateIndex(store, "idx", std::string("main"));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(resolver.Resolve(store, "idx") == kek);
    }
    EXPECT_EQ(resolver.Stats().provider_calls, 2u);  // the wrap and one unwrap
}

TEST(KEKResolver, SixtyFourThreadsOnOneColdIndexMakeOneKmsCall) {
    cyborg::KMSClientOptions options;
    options.endpoint_url = moto_endpoint();
    cyborg::KMSClient client(options);
    client.AddSlot("vendor-default", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(client, hour());
    const auto kek = resolver.CreateIndex(store, "hot", std::string("vendor-default"));
    cyb_test::StartGate gate;
    std::atomic<int> matches{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 64; ++i) {
        threads.emplace_back([&] {
            gate.wait();
            if (resolver.Resolve(store, "hot") == kek) {
                ++matches;
            }
        });
    }
    gate.open_when(64);
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(matches.load(), 64);
    const auto stats = resolver.Stats();
    EXPECT_EQ(stats.provider_calls, 2u);  // the wrap at creation, then one Decrypt
    EXPECT_EQ(stats.hits + stats.misses, 64u);
}

// ---- C ABI ------------------------------------------------------------------------------------

struct ResolverDeleter {
    void operator()(cyb_kek_resolver* r) const noexcept { cyb_kek_resolver_free(r); }
};
using ResolverPtr = std::unique_ptr<cyb_kek_resolver, ResolverDeleter>;

TEST(KEKResolverC, NullsBadSizesAndOptionsGetExactCodes) {
    TempDir dir;
    const auto client = local_client(dir);
    const auto config = cyb_test::c_memory();
    cyb_kek_resolver* raw = nullptr;
    EXPECT_EQ(cyb_kek_resolver_new(nullptr, nullptr, &raw), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolver_new(client.c_handle(), nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    cyb_kek_cache_options bad{};
    bad.ttl_ms = -5;
    EXPECT_EQ(cyb_kek_resolver_new(client.c_handle(), &bad, &raw), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(cyb_test::last_error().find("ttl_ms"), std::string::npos);
    EXPECT_EQ(raw, nullptr);
    bad.ttl_ms = 0;
    bad.revalidate_ms = -2;
    EXPECT_EQ(cyb_kek_resolver_new(client.c_handle(), &bad, &raw), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(cyb_test::last_error().find("options.revalidate_ms must be positive, 0 (default) or "
                                          "CYB_KEK_REVALIDATE_OFF (-1), not -2"),
              std::string::npos);
    EXPECT_EQ(raw, nullptr);
    bad.revalidate_ms = 3600001;
    EXPECT_EQ(cyb_kek_resolver_new(client.c_handle(), &bad, &raw), CYB_RESULT_INVALID_CONFIG);
    EXPECT_EQ(raw, nullptr);
    bad.revalidate_ms = CYB_KEK_REVALIDATE_OFF;
    ASSERT_EQ(cyb_kek_resolver_new(client.c_handle(), &bad, &raw), CYB_RESULT_OK);
    cyb_kek_resolver_free(raw);
    raw = nullptr;
    ASSERT_EQ(cyb_kek_resolver_new(client.c_handle(), nullptr, &raw), CYB_RESULT_OK);
    const ResolverPtr resolver(raw);

    uint8_t kek[32];
    std::memset(kek, 0xAB, sizeof kek);
    EXPECT_EQ(cyb_kek_create_index(resolver.get(), config.get(), "i", 1, "main", 4, nullptr, 0,
                                   kek, 32),
              CYB_RESULT_OK);
    uint8_t out[32];
    std::memset(out, 0xCD, sizeof out);
    EXPECT_EQ(cyb_kek_resolve(nullptr, config.get(), "i", 1, out, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), nullptr, "i", 1, out, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), nullptr, 1, out, 32),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "i", 1, nullptr, 32),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "i", 1, out, 31),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "\xff", 1, out, 32),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "", 0, out, 32),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "nope", 4, out, 32),
              CYB_RESULT_NOT_FOUND);
    for (uint8_t b : out) {
        ASSERT_EQ(b, 0xCD) << "out_kek must be untouched on error";
    }
    ASSERT_EQ(cyb_kek_resolve(resolver.get(), config.get(), "i", 1, out, 32), CYB_RESULT_OK);
    EXPECT_EQ(std::memcmp(out, kek, 32), 0);

    const uint8_t key[32] = {1};
    EXPECT_EQ(cyb_kek_create_index(resolver.get(), config.get(), "j", 1, "main", 4, key, 32, kek,
                                   32),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_test::last_error(), "index_key and kms_name are mutually exclusive");
    EXPECT_EQ(cyb_kek_create_index(resolver.get(), config.get(), "j", 1, nullptr, 0, key, 16, kek,
                                   32),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_create_index(resolver.get(), config.get(), "j", 1, nullptr, 0, nullptr, 0,
                                   kek, 32),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_create_index(resolver.get(), config.get(), "j", 1, "main", 4, nullptr, 0,
                                   nullptr, 32),
              CYB_RESULT_NULL_PARAMETER);

    EXPECT_EQ(cyb_kek_rewrap(resolver.get(), config.get(), "i", 1, "zzz", 3, nullptr),
              CYB_RESULT_UNKNOWN_SLOT);
    EXPECT_EQ(cyb_kek_rewrap(resolver.get(), config.get(), "i", 1, "other", 5, nullptr),
              CYB_RESULT_OK);

    const cyb_str names[2] = {{"i", 1}, {"nope", 4}};
    cyb_result codes[2] = {CYB_RESULT_PANIC, CYB_RESULT_PANIC};
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), nullptr, 2, 2, codes),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), names, 2, 2, nullptr),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), names, 2, 0, codes),
              CYB_RESULT_INVALID_ARGUMENT);
    const cyb_str bad_name[1] = {{"\xfe", 1}};
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), bad_name, 1, 1, codes),
              CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), names, 2, 2, codes), CYB_RESULT_OK);
    EXPECT_EQ(codes[0], CYB_RESULT_OK);
    EXPECT_EQ(codes[1], CYB_RESULT_NOT_FOUND);
    EXPECT_EQ(cyb_kek_warm_up(resolver.get(), config.get(), nullptr, 0, 1, nullptr), CYB_RESULT_OK);

    cyb_drift_report* report = nullptr;
    EXPECT_EQ(cyb_kek_check_drift(resolver.get(), config.get(), false, nullptr),
              CYB_RESULT_NULL_PARAMETER);
    ASSERT_EQ(cyb_kek_check_drift(resolver.get(), config.get(), false, &report), CYB_RESULT_OK);
    EXPECT_EQ(cyb_drift_report_len(report), 1u);
    cyb_drift_entry entry{};
    EXPECT_EQ(cyb_drift_report_entry(report, 1, &entry), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_drift_report_entry(report, 0, nullptr), CYB_RESULT_NULL_PARAMETER);
    ASSERT_EQ(cyb_drift_report_entry(report, 0, &entry), CYB_RESULT_OK);
    EXPECT_EQ(cyb_test::str(entry.index_name), "i");
    EXPECT_EQ(entry.status, CYB_DRIFT_IN_SYNC);
    EXPECT_EQ(cyb_test::str(entry.kms_name), "other");
    EXPECT_EQ(entry.error_code, CYB_RESULT_OK);
    cyb_drift_report_free(report);
    EXPECT_EQ(cyb_drift_report_len(nullptr), 0u);
    cyb_drift_report_free(nullptr);

    bool removed = false;
    EXPECT_EQ(cyb_kek_invalidate(resolver.get(), nullptr, "i", 1, &removed),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_invalidate(resolver.get(), config.get(), "i", 1, nullptr), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kek_invalidate(resolver.get(), config.get(), "i", 1, &removed), CYB_RESULT_OK);
    EXPECT_FALSE(removed);
    EXPECT_EQ(cyb_kek_invalidate_all(nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_resolver_stats(resolver.get(), nullptr), CYB_RESULT_NULL_PARAMETER);
    cyb_kek_cache_stats stats{};
    ASSERT_EQ(cyb_kek_resolver_stats(resolver.get(), &stats), CYB_RESULT_OK);
    EXPECT_GE(stats.errors, 1u);
    cyb_kek_resolver_free(nullptr);
}

}  // namespace

namespace {

/// The one envelope file under `root`.
std::filesystem::path envelope_file(const std::filesystem::path& root) {
    for (const auto& entry : std::filesystem::directory_iterator(root)) {
        if (entry.path().extension() == ".kms") {
            return entry.path();
        }
    }
    ADD_FAILURE() << "no envelope in " << root;
    return {};
}

/// A resolver revalidating every millisecond, with `stale_if_error`, and the KEK it cached for
/// "idx" in a Disk store under `dir`; then the envelope file is replaced by a directory, so every
/// later check fails with IO_ERROR (a transient storage error).
struct BrokenDiskFixture {
    TempDir dir;
    cyborg::StorageConfig store = cyborg::StorageConfig::Disk(dir.path() / "store");
    cyborg::KMSClient client = local_client(dir);
    cyborg::KEKResolver resolver;
    cyborg::KEK kek;

    explicit BrokenDiskFixture(std::optional<bool> stale_if_error)
        : resolver(client, options(stale_if_error)),
          kek(resolver.CreateIndex(store, "idx", std::string("main"))) {
        EXPECT_TRUE(resolver.Resolve(store, "idx") == kek);
        const auto path = envelope_file(dir.path() / "store");
        std::filesystem::remove(path);
        std::filesystem::create_directory(path);
    }

    static cyborg::KEKCacheOptions options(std::optional<bool> stale_if_error) {
        cyborg::KEKCacheOptions options = hour();
        options.revalidate = std::chrono::milliseconds(1);
        options.stale_if_error = stale_if_error;
        return options;
    }
};

}  // namespace

// On by default: once the interval passes, the failed check serves the cached KEK (counted),
// and the resolves before and after it return the same KEK. No sleep: resolves repeat until the
// check happens (each one before it is a hit).
TEST(KEKResolver, StaleIfErrorServesTheCachedKEKWhenTheCheckFails) {
    BrokenDiskFixture fixture(std::nullopt);
    while (fixture.resolver.Stats().stale_served == 0) {
        EXPECT_TRUE(fixture.resolver.Resolve(fixture.store, "idx") == fixture.kek);
    }
    const auto stats = fixture.resolver.Stats();
    EXPECT_EQ(stats.stale_served, 1u);
    EXPECT_EQ(stats.errors, 0u);
    EXPECT_EQ(stats.provider_calls, 2u);  // the wrap at creation and the first unwrap
}

// Off: the same failed check throws IOError, and is not counted as stale.
TEST(KEKResolver, StaleIfErrorOffThrowsTheChecksError) {
    BrokenDiskFixture fixture(false);
    bool thrown = false;
    while (!thrown) {
        try {
            EXPECT_TRUE(fixture.resolver.Resolve(fixture.store, "idx") == fixture.kek);
        } catch (const cyborg::IOError& e) {
            EXPECT_EQ(e.code(), CYB_RESULT_IO);
            EXPECT_NE(std::string(e.what()).find("it is a directory, not a regular file"),
                      std::string::npos)
                << e.what();
            thrown = true;
        }
    }
    EXPECT_EQ(fixture.resolver.Stats().stale_served, 0u);
    EXPECT_EQ(fixture.resolver.Stats().errors, 1u);
}

TEST(KEKResolverC, StaleIfErrorOptionValuesGetExactCodes) {
    TempDir dir;
    const auto client = local_client(dir);
    cyb_kek_cache_options options{};
    cyb_kek_resolver* raw = nullptr;
    for (const int32_t good : {0, CYB_KEK_STALE_IF_ERROR_ON, CYB_KEK_STALE_IF_ERROR_OFF}) {
        options.stale_if_error = good;
        ASSERT_EQ(cyb_kek_resolver_new(client.c_handle(), &options, &raw), CYB_RESULT_OK) << good;
        cyb_kek_resolver_free(raw);
        raw = nullptr;
    }
    options.stale_if_error = 2;
    EXPECT_EQ(cyb_kek_resolver_new(client.c_handle(), &options, &raw), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(raw, nullptr);
    EXPECT_NE(cyb_test::last_error().find(
                  "options.stale_if_error must be 0 (default), CYB_KEK_STALE_IF_ERROR_ON (1) or "
                  "CYB_KEK_STALE_IF_ERROR_OFF (-1), not 2"),
              std::string::npos)
        << cyb_test::last_error();
}
