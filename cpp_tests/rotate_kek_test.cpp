// C++ and C ABI tests of new-KEK rotation (local provider, disk store): RotateKek commits a fresh
// KEK, a callback that throws rolls the rotation back and its exception propagates unchanged, the
// two-phase API finds and finishes a pending rotation, drift repair in new-KEK mode
// (CheckDriftNewKek), and the C ABI's error codes.
#include <map>
#include <stdexcept>

#include "test_support.hpp"

namespace {

using cyb_test::local_slot;
using cyb_test::TempDir;

struct Fixture {
    TempDir dir;
    cyborg::StorageConfig store = cyborg::StorageConfig::Disk(dir.path() / "store");
    cyborg::KMSClient client = cyb_test::local_client(dir);  // "main" (fill 1), "other" (fill 2)
    cyborg::KEKResolver resolver{client};
};

/// The engine's own error type, to show RotateKek rethrows it as is.
struct EngineError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

TEST(RotateKek, CommitsAFreshKekAndCallsTheCallbackWithBothKeks) {
    Fixture f;
    const auto old_kek = f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    cyborg::KEK seen_old;
    cyborg::KEK seen_new;
    const auto blob = f.resolver.RotateKek(
        f.store, "orders", "other", [&](const cyborg::KEK& o, const cyborg::KEK& n) {
            seen_old = o.Clone();
            seen_new = n.Clone();
        });
    EXPECT_TRUE(seen_old == old_kek);
    EXPECT_TRUE(seen_new != old_kek);
    EXPECT_EQ(blob.kms_name, "other");
    EXPECT_EQ(blob.version, 2u);
    EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == seen_new);
    EXPECT_FALSE(f.resolver.PendingRotation(f.store, "orders").has_value());
}

TEST(RotateKek, AThrowingCallbackRollsBackAndItsExceptionPropagates) {
    Fixture f;
    const auto old_kek = f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    const auto envelope = f.dir.path() / "store" / "orders.kms";
    const auto before = cyb_test::read_file(envelope);
    try {
        f.resolver.RotateKek(f.store, "orders", "other",
                             [](const cyborg::KEK&, const cyborg::KEK&) {
                                 throw EngineError("disk full while re-wrapping the DEK");
                             });
        FAIL() << "RotateKek returned";
    } catch (const EngineError& e) {
        EXPECT_STREQ(e.what(), "disk full while re-wrapping the DEK");
    }
    EXPECT_EQ(cyb_test::read_file(envelope), before);
    EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / "orders.rot"));
    EXPECT_FALSE(f.resolver.PendingRotation(f.store, "orders").has_value());
    EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == old_kek);
    // A library failure surfaces as its own exception.
    EXPECT_THROW(f.resolver.RotateKek(f.store, "orders", "nope",
                                      [](const cyborg::KEK&, const cyborg::KEK&) {}),
                 cyborg::UnknownSlotError);
}

TEST(RotateKek, TwoPhaseBeginPendingCommitAndAbort) {
    Fixture f;
    const auto old_kek = f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    {
        const auto rotation = f.resolver.BeginRotation(f.store, "orders", "other");
        EXPECT_TRUE(rotation.State() == cyborg::RotationState::kPending);
        EXPECT_TRUE(rotation.OldKek() == old_kek);
        EXPECT_THROW(f.resolver.BeginRotation(f.store, "orders", "other"), cyborg::ConflictError);
        EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == old_kek);
        f.resolver.AbortRotation(f.store, rotation);
        EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == old_kek);
    }
    const auto begun = f.resolver.BeginRotation(f.store, "orders", "other");
    const auto found = f.resolver.PendingRotation(f.store, "orders");
    ASSERT_TRUE(found.has_value());
    EXPECT_TRUE(found->NewKek() == begun.NewKek());
    const auto blob = f.resolver.CommitRotation(f.store, *found);
    EXPECT_EQ(blob.version, 2u);
    EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == begun.NewKek());
    EXPECT_THROW(f.resolver.AbortRotation(f.store, begun), cyborg::ConflictError);
}

/// Points slot "main" at a new key and trusts its old one, so every envelope under "main" drifts.
void move_main_to_a_new_key(Fixture& f) {
    const std::string old_key_id = "file:" + (f.dir.path() / "main.key").string();
    f.client.AddSlot("main", local_slot(f.dir, "main-new", 3));
    f.client.AddPreviousKey("main", {"local", old_key_id, ""});
}

const cyborg::DriftEntry& entry_for(const std::vector<cyborg::DriftEntry>& report,
                                    const std::string& index_name) {
    for (const auto& entry : report) {
        if (entry.index_name == index_name) {
            return entry;
        }
    }
    throw std::logic_error("no drift entry for " + index_name);
}

TEST(CheckDriftNewKek, RotatesEachDriftedIndexAndAThrowingCallbackRollsBackOnlyItsIndex) {
    Fixture f;
    const auto orders_kek = f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    const auto fails_kek = f.resolver.CreateIndex(f.store, "fails", std::string("main"));
    f.resolver.CreateIndex(f.store, "synced", std::string("other"));
    const auto fails_envelope = cyb_test::read_file(f.dir.path() / "store" / "fails.kms");
    move_main_to_a_new_key(f);

    std::map<std::string, std::pair<cyborg::KEK, cyborg::KEK>> seen;
    const auto report = f.resolver.CheckDriftNewKek(
        f.store, [&](const std::string& index, const cyborg::KEK& o, const cyborg::KEK& n) {
            seen.emplace(index, std::make_pair(o.Clone(), n.Clone()));
            if (index == "fails") {
                throw EngineError("engine busy re-wrapping fails");
            }
        });
    ASSERT_EQ(report.size(), 3u);
    ASSERT_EQ(seen.size(), 2u);  // the two drifted indexes, not the one in sync

    const auto& orders = entry_for(report, "orders");
    EXPECT_EQ(orders.status, cyborg::DriftStatus::kRewrapped);
    EXPECT_EQ(orders.error_code, CYB_RESULT_OK);
    EXPECT_FALSE(orders.callback_error);
    EXPECT_TRUE(seen.at("orders").first == orders_kek);
    EXPECT_TRUE(seen.at("orders").second != orders_kek);
    EXPECT_TRUE(f.resolver.Resolve(f.store, "orders") == seen.at("orders").second);
    EXPECT_EQ(cyborg::GetIndexKMS(f.store, "orders").version, 2u);

    const auto& fails = entry_for(report, "fails");
    EXPECT_EQ(fails.status, cyborg::DriftStatus::kFailed);
    EXPECT_EQ(fails.error_code, CYB_RESULT_CALLBACK_FAILED);
    EXPECT_NE(fails.error_message.find("rolled back"), std::string::npos) << fails.error_message;
    ASSERT_TRUE(fails.callback_error);
    try {
        std::rethrow_exception(fails.callback_error);
    } catch (const EngineError& e) {
        EXPECT_STREQ(e.what(), "engine busy re-wrapping fails");
    }
    EXPECT_TRUE(seen.at("fails").first == fails_kek);
    EXPECT_EQ(cyb_test::read_file(f.dir.path() / "store" / "fails.kms"), fails_envelope);
    EXPECT_FALSE(f.resolver.PendingRotation(f.store, "fails").has_value());
    EXPECT_TRUE(f.resolver.Resolve(f.store, "fails") == fails_kek);

    EXPECT_EQ(entry_for(report, "synced").status, cyborg::DriftStatus::kInSync);
    // A second run finds only the index whose engine step failed.
    const auto again = f.resolver.CheckDrift(f.store);
    EXPECT_EQ(entry_for(again, "orders").status, cyborg::DriftStatus::kInSync);
    EXPECT_EQ(entry_for(again, "fails").status, cyborg::DriftStatus::kDrifted);
}

bool fail_callback(void*, const uint8_t*, const uint8_t*) { return false; }

/// Counts its calls in `*context` and accepts only the index named "orders".
bool drift_callback(void* context, const char* name, size_t name_len, const uint8_t*,
                    const uint8_t*) {
    ++*static_cast<int*>(context);
    return std::string(name, name_len) == "orders";
}

TEST(CheckDriftNewKek, CAbiCodes) {
    Fixture f;
    f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    f.resolver.CreateIndex(f.store, "refused", std::string("main"));
    move_main_to_a_new_key(f);
    const auto* r = f.resolver.c_handle();
    const auto* s = f.store.c_handle();
    cyb_drift_report* report = nullptr;
    int calls = 0;
    EXPECT_EQ(cyb_kek_check_drift_new_kek(r, s, nullptr, &calls, &report),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_check_drift_new_kek(nullptr, s, drift_callback, &calls, &report),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_check_drift_new_kek(r, nullptr, drift_callback, &calls, &report),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_check_drift_new_kek(r, s, drift_callback, &calls, nullptr),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(report, nullptr);
    ASSERT_EQ(cyb_kek_check_drift_new_kek(r, s, drift_callback, &calls, &report), CYB_RESULT_OK);
    EXPECT_EQ(calls, 2);
    ASSERT_EQ(cyb_drift_report_len(report), 2u);
    cyb_drift_entry entry{};
    ASSERT_EQ(cyb_drift_report_entry(report, 0, &entry), CYB_RESULT_OK);  // index-name order
    EXPECT_EQ(std::string(entry.index_name.data, entry.index_name.len), "orders");
    EXPECT_EQ(entry.status, CYB_DRIFT_REWRAPPED);
    EXPECT_EQ(entry.error_code, CYB_RESULT_OK);
    ASSERT_EQ(cyb_drift_report_entry(report, 1, &entry), CYB_RESULT_OK);
    EXPECT_EQ(std::string(entry.index_name.data, entry.index_name.len), "refused");
    EXPECT_EQ(entry.status, CYB_DRIFT_FAILED);
    EXPECT_EQ(entry.error_code, CYB_RESULT_CALLBACK_FAILED);
    const std::string message(entry.error_message.data, entry.error_message.len);
    EXPECT_NE(message.find("returned false"), std::string::npos) << message;
    EXPECT_NE(message.find("refused"), std::string::npos) << message;
    cyb_drift_report_free(report);
    EXPECT_EQ(cyborg::GetIndexKMS(f.store, "refused").version, 1u);
}

TEST(RotateKek, CAbiCodes) {
    Fixture f;
    f.resolver.CreateIndex(f.store, "orders", std::string("main"));
    const auto* r = f.resolver.c_handle();
    const auto* s = f.store.c_handle();
    EXPECT_EQ(cyb_kek_rotate_kek(r, s, "orders", 6, "other", 5, nullptr, nullptr, nullptr),
              CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_rotate_kek(r, s, "orders", 6, "other", 5, fail_callback, nullptr, nullptr),
              CYB_RESULT_CALLBACK_FAILED);
    EXPECT_NE(std::string(cyb_last_error_message()).find("rolled back"), std::string::npos);
    cyb_kek_rotation* none = nullptr;
    EXPECT_EQ(cyb_kek_pending_rotation(r, s, "orders", 6, &none), CYB_RESULT_OK);
    EXPECT_EQ(none, nullptr);
    cyb_kek_rotation* rotation = nullptr;
    ASSERT_EQ(cyb_kek_begin_rotation(r, s, "orders", 6, "other", 5, &rotation), CYB_RESULT_OK);
    uint8_t kek[32];
    EXPECT_EQ(cyb_kek_rotation_new_kek(rotation, kek, 31), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kek_rotation_old_kek(nullptr, kek, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_rotation_state(rotation), CYB_ROTATION_PENDING);
    EXPECT_EQ(cyb_kek_rotation_state(nullptr), CYB_ROTATION_STALE);
    cyb_kek_rotation* second = nullptr;
    EXPECT_EQ(cyb_kek_begin_rotation(r, s, "orders", 6, "other", 5, &second), CYB_RESULT_CONFLICT);
    EXPECT_EQ(cyb_kek_commit_rotation(r, s, nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kek_commit_rotation(r, s, rotation, nullptr), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kek_abort_rotation(r, s, rotation), CYB_RESULT_CONFLICT);
    cyb_kek_rotation_free(rotation);
    cyb_kek_rotation_free(nullptr);
}

}  // namespace
