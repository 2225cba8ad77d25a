// The log callback from C++ (SetLogCallback with a std::function) and through the C ABI: levels,
// threshold and targets of real events, a throwing callback, re-entry, and replacing the callback
// while other threads log (the old userdata is never used once cyb_set_log_callback returns).
// Each test runs in its own process (gtest_discover_tests), so the process-wide callback of one
// test never sees another's events.
#include <atomic>
#include <thread>

#include "test_support.hpp"

namespace {

using cyb_test::TempDir;

struct Event {
    cyborg::LogLevel level;
    std::string target;
    std::string message;
};

/// Events collected from any thread.
class Collector {
public:
    cyborg::LogCallback callback() {
        return [this](cyborg::LogLevel level, std::string_view target, std::string_view message) {
            std::lock_guard<std::mutex> lock(mutex_);
            events_.push_back({level, std::string(target), std::string(message)});
        };
    }
    std::vector<Event> events() {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_;
    }
    bool has(cyborg::LogLevel level, const std::string& target, const std::string& text) {
        for (const auto& e : events()) {
            if (e.level == level && e.target == target && e.message.find(text) != std::string::npos) {
                return true;
            }
        }
        return false;
    }

private:
    std::mutex mutex_;
    std::vector<Event> events_;
};

/// A client with the one local slot "main".
cyborg::KMSClient main_client(const TempDir& dir) {
    return cyb_test::local_client(dir, {{"main", 7}});
}

cyborg::KEKCacheOptions one_entry() {
    cyborg::KEKCacheOptions options;
    options.ttl = std::chrono::hours(1);
    options.max_entries = 1;
    return options;
}

TEST(Logging, DebugThresholdReceivesCacheAndKmsEventsButNoTrace) {
    TempDir dir;
    Collector seen;
    cyborg::SetLogCallback(cyborg::LogLevel::Debug, seen.callback());
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(main_client(dir), one_entry());
    resolver.CreateIndex(store, "alpha", std::string("main"));
    resolver.CreateIndex(store, "beta", std::string("main"));
    resolver.Resolve(store, "alpha");
    resolver.Resolve(store, "beta");  // evicts alpha: max_entries 1
    cyborg::ClearLogCallback();

    EXPECT_TRUE(seen.has(cyborg::LogLevel::Info, "cyborgdb_kms::kms", "KMS registry changed: 1 slots"));
    EXPECT_TRUE(seen.has(cyborg::LogLevel::Debug, "cyborgdb_kms::kms",
                         "wrapped a KEK for index \"alpha\" through slot \"main\" (local)"));
    EXPECT_TRUE(seen.has(cyborg::LogLevel::Debug, "cyborgdb_kms::kms",
                         "unwrapped the KEK of index \"beta\" through slot \"main\" (local)"));
    EXPECT_TRUE(seen.has(cyborg::LogLevel::Debug, "cyborgdb_kms::cache", "cached the KEK of index \"alpha\""));
    EXPECT_TRUE(seen.has(cyborg::LogLevel::Debug, "cyborgdb_kms::cache",
                         "evicted the KEK of index \"alpha\" to stay within max_entries 1"));
    for (const auto& e : seen.events()) {
        EXPECT_NE(e.level, cyborg::LogLevel::Trace) << e.message;
    }
}

TEST(Logging, ThresholdFiltersAndTraceAddsCacheMisses) {
    TempDir dir;
    Collector warn_only;
    cyborg::SetLogCallback(cyborg::LogLevel::Warn, warn_only.callback());
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(main_client(dir), one_entry());
    resolver.CreateIndex(store, "alpha", std::string("main"));
    resolver.Resolve(store, "alpha");
    EXPECT_THROW(resolver.Resolve(store, "missing"), cyborg::NotFoundError);
    const auto warnings = warn_only.events();
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].level, cyborg::LogLevel::Warn);
    EXPECT_EQ(warnings[0].target, "cyborgdb_kms::resolver");
    EXPECT_NE(warnings[0].message.find("resolving a KEK failed (NotFound): index \"missing\": no KMS envelope is stored"),
              std::string::npos)
        << warnings[0].message;

    Collector everything;
    cyborg::SetLogCallback(cyborg::LogLevel::Trace, everything.callback());
    resolver.Invalidate(store, "alpha");
    resolver.Resolve(store, "alpha");
    cyborg::ClearLogCallback();
    EXPECT_TRUE(everything.has(cyborg::LogLevel::Trace, "cyborgdb_kms::resolver",
                               "KEK cache miss for index \"alpha\""));
    EXPECT_TRUE(everything.has(cyborg::LogLevel::Debug, "cyborgdb_kms::cache",
                               "invalidated the cached KEK of index \"alpha\""));
    EXPECT_EQ(warn_only.events().size(), 1u);  // the replaced callback got nothing more
}

TEST(Logging, AThrowingCallbackLosesItsEventAndNothingElse) {
    TempDir dir;
    std::atomic<int> calls{0};
    cyborg::SetLogCallback(cyborg::LogLevel::Trace,
                           [&](cyborg::LogLevel, std::string_view, std::string_view) {
                               ++calls;
                               throw std::runtime_error("callback failure");
                           });
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(main_client(dir), one_entry());
    const auto kek = resolver.CreateIndex(store, "alpha", std::string("main"));
    EXPECT_TRUE(resolver.Resolve(store, "alpha") == kek);
    cyborg::ClearLogCallback();
    EXPECT_GE(calls.load(), 3);
}

TEST(Logging, SettingFromInsideACallbackIsRefused) {
    TempDir dir;
    std::atomic<int> refused{0};
    cyborg::SetLogCallback(cyborg::LogLevel::Info,
                           [&](cyborg::LogLevel, std::string_view, std::string_view) {
                               try {
                                   cyborg::ClearLogCallback();
                               } catch (const cyborg::InvalidArgumentError& e) {
                                   if (std::string(e.what()).find("inside a log callback") !=
                                       std::string::npos) {
                                       ++refused;
                                   }
                               }
                               // The C ABI refuses too (and never deadlocks).
                               if (cyb_set_log_callback(CYB_LOG_LEVEL_OFF, nullptr, nullptr) ==
                                   CYB_RESULT_INVALID_ARGUMENT) {
                                   ++refused;
                               }
                           });
    main_client(dir);  // one Info event: the registry change
    cyborg::ClearLogCallback();
    EXPECT_EQ(refused.load(), 2);
}

/// Userdata of the C ABI test below: marked retired once cyb_set_log_callback has replaced it.
struct Generation {
    std::atomic<bool> retired{false};
    std::atomic<int>* used_after_retirement;
    std::atomic<int>* delivered;
};

void count_late_use(void* userdata, const cyb_log_record*) {
    auto* generation = static_cast<Generation*>(userdata);
    if (generation->retired.load()) {
        ++*generation->used_after_retirement;
    }
    ++*generation->delivered;
}

TEST(Logging, NoCallWithOldUserdataAfterReplacementWhileThreadsLog) {
    TempDir dir;
    const auto client = main_client(dir);
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KEKResolver resolver(client, one_entry());
    resolver.CreateIndex(store, "alpha", std::string("main"));
    resolver.CreateIndex(store, "beta", std::string("main"));

    std::atomic<int> late_uses{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> loggers;
    for (const char* index : {"alpha", "beta", "missing"}) {
        loggers.emplace_back([&, index] {
            while (!stop.load()) {
                try {
                    resolver.Resolve(store, index);  // misses, fills, evictions, failures
                } catch (const cyborg::NotFoundError&) {
                }
            }
        });
    }
    // C ABI: each replaced userdata is checked for late calls, then freed (ASan sees any later use).
    // Keeps replacing until the loggers have delivered many events during the replacements.
    std::atomic<int> delivered{0};
    std::unique_ptr<Generation> current;
    for (int i = 0; (i < 300 || delivered.load() < 2000) && i < 10000000; ++i) {
        auto next = std::make_unique<Generation>();
        next->used_after_retirement = &late_uses;
        next->delivered = &delivered;
        ASSERT_EQ(cyb_set_log_callback(i % 2 ? CYB_LOG_LEVEL_TRACE : CYB_LOG_LEVEL_DEBUG,
                                       count_late_use, next.get()),
                  CYB_RESULT_OK);
        if (current) {
            current->retired.store(true);
        }
        current = std::move(next);
    }
    ASSERT_EQ(cyb_set_log_callback(CYB_LOG_LEVEL_OFF, nullptr, nullptr), CYB_RESULT_OK);
    current->retired.store(true);
    // C++: each replaced std::function is destroyed by SetLogCallback (ASan sees any later use).
    std::atomic<int> cpp_calls{0};
    for (int i = 0; (i < 300 || cpp_calls.load() < 2000) && i < 10000000; ++i) {
        auto owned = std::make_shared<int>(i);
        cyborg::SetLogCallback(cyborg::LogLevel::Trace,
                               [owned, &cpp_calls](cyborg::LogLevel, std::string_view, std::string_view) {
                                   cpp_calls += *owned >= 0 ? 1 : 0;
                               });
    }
    cyborg::ClearLogCallback();
    stop.store(true);
    for (auto& t : loggers) {
        t.join();
    }
    EXPECT_EQ(late_uses.load(), 0);
    EXPECT_GE(delivered.load(), 2000);
    EXPECT_GE(cpp_calls.load(), 2000);
}

}  // namespace
