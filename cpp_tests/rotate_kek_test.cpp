// C++ and C ABI tests of new-KEK rotation (local provider, disk store): RotateKek commits a fresh
// KEK, a callback that throws rolls the rotation back and its exception propagates unchanged, the
// two-phase API finds and finishes a pending rotation, and the C ABI's error codes.
#include <stdexcept>

#include "test_support.hpp"

namespace {

using cyb_test::TempDir;

cyborg::KMSSlot local_slot(const TempDir& dir, const std::string& name, uint8_t fill) {
    const auto path = dir.path() / (name + ".key");
    cyb_test::write_file(path, std::vector<uint8_t>(32, fill));
    return {"local", "file:" + path.string(), "", {}, {}, {}};
}

struct Fixture {
    TempDir dir;
    cyborg::StorageConfig store = cyborg::StorageConfig::Disk(dir.path() / "store");
    cyborg::KMSClient client = [this] {
        cyborg::KMSClientOptions options;
        options.allow_local_provider = true;
        cyborg::KMSClient c(options);
        c.AddSlot("main", local_slot(dir, "main", 1));
        c.AddSlot("other", local_slot(dir, "other", 2));
        return c;
    }();
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

bool fail_callback(void*, const uint8_t*, const uint8_t*) { return false; }

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
