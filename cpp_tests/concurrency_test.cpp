// Many threads on one store at once (Memory and Disk): distinct creates all succeed, racing
// creates on one name have exactly one winner, concurrent push/get never see a torn envelope.
// Threads start together through a StartGate (condition variable), never through sleeps.
#include "cyborgdb_core/index_kms.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace cyb_test;

namespace {

constexpr int kThreads = 16;

/// A self-consistent envelope: every field encodes `n`, so a mix of two envelopes is detectable.
cyborg::KMSBlob numbered_blob(uint32_t n) {
    cyborg::KMSBlob b;
    const std::string s = std::to_string(n);
    b.kms_name = "kms-" + s;
    b.provider = n % 2 == 0 ? "aws-kms" : "aws";
    b.key_id = "key-" + s + std::string(n % 7 * 100, 'k');
    b.region = "region-" + s;
    b.wrapped_kek.assign(32 + n % 97, static_cast<uint8_t>(n));
    b.version = n;
    b.created_at = 1000000 + n;
    return b;
}

/// True if `b` is exactly numbered_blob(b.version).
bool consistent(const cyborg::KMSBlob& b) { return b == numbered_blob(b.version); }

/// Runs `body(i)` on kThreads threads released at once; rethrows nothing (bodies record results).
template <typename Body>
void run_together(int n, Body body) {
    StartGate gate;
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&gate, &body, i] {
            gate.wait();
            body(i);
        });
    }
    gate.open_when(n);
    for (auto& t : threads) t.join();
}

}  // namespace

class Concurrency : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(Stores, Concurrency, testing::Values(Backend::Memory, Backend::Disk),
                         backend_name);

TEST_P(Concurrency, CreatesOnDistinctNamesAllSucceed) {
    std::atomic<int> ok{0};
    run_together(kThreads, [&](int i) {
        try {
            cyborg::CreateIndexKMS(config(), "index-" + std::to_string(i), numbered_blob(i));
            ++ok;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "thread " << i << ": " << e.what();
        }
    });
    EXPECT_EQ(ok.load(), kThreads);
    for (int i = 0; i < kThreads; ++i) {
        EXPECT_EQ(cyborg::GetIndexKMS(config(), "index-" + std::to_string(i)), numbered_blob(i));
    }
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()).size(), static_cast<size_t>(kThreads)) << "no temp files left";
    }
}

TEST_P(Concurrency, CreatesRacingOnOneNameHaveExactlyOneWinner) {
    for (int round = 0; round < 5; ++round) {
        const std::string name = "contended-" + std::to_string(round);
        std::atomic<int> winners{0};
        std::atomic<int> already_exists{0};
        std::atomic<int> winner{-1};
        run_together(kThreads, [&](int i) {
            try {
                cyborg::CreateIndexKMS(config(), name, numbered_blob(i));
                ++winners;
                winner = i;
            } catch (const cyborg::AlreadyExistsError& e) {
                EXPECT_EQ(e.code(), CYB_RESULT_ALREADY_EXISTS);
                EXPECT_EQ(std::string(e.what()),
                          "ALREADY_EXISTS: index \"" + name + "\": a KMS envelope already exists");
                ++already_exists;
            } catch (const std::exception& e) {
                ADD_FAILURE() << "thread " << i << ": " << e.what();
            }
        });
        ASSERT_EQ(winners.load(), 1) << name;
        EXPECT_EQ(already_exists.load(), kThreads - 1) << name;
        EXPECT_EQ(cyborg::GetIndexKMS(config(), name), numbered_blob(winner.load())) << name;
    }
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()).size(), 5u) << "no temp files left";
    }
}

TEST_P(Concurrency, PushAndGetNeverObserveATornEnvelope) {
    const int iterations = GetParam() == Backend::Memory ? 300 : 30;
    cyborg::CreateIndexKMS(config(), "hot", numbered_blob(0));
    std::atomic<int> reads{0};
    std::atomic<int> torn{0};
    run_together(kThreads, [&](int i) {
        try {
            for (int k = 0; k < iterations; ++k) {
                if (i % 2 == 0) {  // writers: each pushes its own envelopes
                    cyborg::PushIndexKMS(config(), "hot", numbered_blob(1 + i * iterations + k));
                } else {  // readers
                    const cyborg::KMSBlob got = cyborg::GetIndexKMS(config(), "hot");
                    ++reads;
                    if (!consistent(got)) ++torn;
                }
            }
        } catch (const std::exception& e) {
            ADD_FAILURE() << "thread " << i << ": " << e.what();
        }
    });
    EXPECT_EQ(reads.load(), kThreads / 2 * iterations);
    EXPECT_EQ(torn.load(), 0);
    EXPECT_TRUE(consistent(cyborg::GetIndexKMS(config(), "hot")));
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()), (std::set<std::string>{"hot.kms"})) << "no temp files left";
    }
}

TEST_P(Concurrency, MixedOperationsAndPerThreadErrorMessages) {
    // Every thread works on its own index and on one shared index; its last error message is its own.
    run_together(kThreads, [&](int i) {
        const std::string own = "own-" + std::to_string(i);
        try {
            for (int k = 0; k < 10; ++k) {
                EXPECT_EQ(cyborg::TryGetIndexKMS(config(), own), std::nullopt);
                try {
                    cyborg::GetIndexKMS(config(), own);
                    ADD_FAILURE() << "expected NotFoundError";
                } catch (const cyborg::NotFoundError& e) {
                    EXPECT_EQ(std::string(e.what()),
                              "NOT_FOUND: index \"" + own + "\": no KMS envelope is stored");
                }
                cyborg::CreateIndexKMS(config(), own, numbered_blob(i));
                EXPECT_EQ(cyborg::GetIndexKMS(config(), own), numbered_blob(i));
                cyborg::PushIndexKMS(config(), "shared", numbered_blob(100 + i));
                cyborg::DeleteIndexKMS(config(), own);
                cyborg::DeleteIndexKMS(config(), own);
            }
        } catch (const std::exception& e) {
            ADD_FAILURE() << own << ": " << e.what();
        }
    });
    const cyborg::KMSBlob shared = cyborg::GetIndexKMS(config(), "shared");
    EXPECT_TRUE(consistent(shared));
    EXPECT_GE(shared.version, 100u);
    EXPECT_LT(shared.version, 100u + kThreads);
    if (GetParam() == Backend::Disk) {
        EXPECT_EQ(list_dir(root()), (std::set<std::string>{"shared.kms"}));
    }
}
