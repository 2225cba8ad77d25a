// C++ and C ABI tests of the KMS client against the moto CTest fixture (moto_start seeds
// alias/cyborgdb-test, the 32-byte secret cyborgdb-test/wrap-key and the 16-byte secret
// cyborgdb-test/short-key in us-east-1). Every error path asserts its exact code.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "test_support.hpp"

namespace {

using cyb_test::moto_endpoint;
using cyb_test::expect_code;
using cyb_test::TempDir;

cyborg::KMSClient moto_client() {
    cyborg::KMSClientOptions options;
    options.endpoint_url = moto_endpoint();
    cyborg::KMSClient client(options);
    client.AddSlot("vendor-default", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    client.AddSlot("secrets", {"aws", "cyborgdb-test/wrap-key", "us-east-1", {}, {}, {}});
    client.AddSlot("short", {"aws", "cyborgdb-test/short-key", "us-east-1", {}, {}, {}});
    return client;
}

bool all_zero(const cyborg::KEK& kek) {
    for (std::size_t i = 0; i < kek.size(); ++i) {
        if (kek.data()[i] != 0) {
            return false;
        }
    }
    return true;
}

TEST(KMSClient, WrapStoreGetUnwrapRoundTripOnDisk) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path());
    auto client = moto_client();
    for (const std::string slot : {"vendor-default", "secrets"}) {
        const std::string index = "orders-" + slot;
        auto wrapped = client.WrapNewKEK(index, slot);
        EXPECT_EQ(wrapped.blob.kms_name, slot);
        EXPECT_EQ(wrapped.blob.region, "us-east-1");
        EXPECT_EQ(wrapped.blob.version, 1u);
        EXPECT_GT(wrapped.blob.created_at, 0);
        EXPECT_FALSE(all_zero(wrapped.kek));
        cyborg::CreateIndexKMS(store, index, wrapped.blob);
        const auto stored = cyborg::GetIndexKMS(store, index);
        EXPECT_EQ(stored, wrapped.blob);
        EXPECT_TRUE(client.UnwrapKEK(index, stored) == wrapped.kek) << slot;
    }
}

TEST(KMSClient, EnvelopeOfAnotherIndexIsDecryptFailed) {
    auto client = moto_client();
    for (const std::string slot : {"vendor-default", "secrets"}) {
        const auto wrapped = client.WrapNewKEK("tenant-a", slot);
        expect_code<cyborg::DecryptFailedError>([&] { client.UnwrapKEK("tenant-b", wrapped.blob); },
                                                CYB_RESULT_DECRYPT_FAILED, "index \"tenant-b\"");
    }
}

TEST(KMSClient, RewrapKeepsTheKEK) {
    auto client = moto_client();
    const auto wrapped = client.WrapNewKEK("idx", "vendor-default");
    const auto rewrapped = client.WrapKEK("idx", "secrets", wrapped.kek);
    EXPECT_EQ(rewrapped.provider, "aws");
    EXPECT_TRUE(client.UnwrapKEK("idx", rewrapped) == wrapped.kek);
}

TEST(KMSClient, WrongSizeWrapKeyHasTheDocumentedMessage) {
    auto client = moto_client();
    expect_code<cyborg::WrapKeySizeError>([&] { client.WrapNewKEK("idx", "short"); },
                                          CYB_RESULT_WRAP_KEY_SIZE, "Wrap key must be 32 bytes");
    // WrapKeySizeError is a KMSError and a std::runtime_error.
    EXPECT_THROW(client.WrapNewKEK("idx", "short"), cyborg::KMSError);
}

TEST(KMSClient, UnknownSlotAndNoneEnvelope) {
    auto client = moto_client();
    expect_code<cyborg::UnknownSlotError>([&] { client.WrapNewKEK("idx", "nope"); },
                                          CYB_RESULT_UNKNOWN_SLOT, "KMS slot \"nope\" is not in the registry");
    cyborg::KMSBlob none;
    none.provider = "none";
    expect_code<cyborg::KEKNotWrappedError>([&] { client.UnwrapKEK("idx", none); },
                                            CYB_RESULT_KEK_NOT_WRAPPED, "the caller supplies");
    cyborg::KMSBlob missing_key = client.WrapNewKEK("idx", "vendor-default").blob;
    missing_key.key_id = "alias/does-not-exist";
    // A key the slot does not name is refused before any KMS call, with the line to trust it.
    expect_code<cyborg::UntrustedKeyError>(
        [&] { client.UnwrapKEK("idx", missing_key); }, CYB_RESULT_UNTRUSTED_KEY,
        "trust it by adding this line to the slot: previous_keys: [{provider: aws-kms, key_id: "
        "\"alias/does-not-exist\", region: \"us-east-1\"}]");
    // Trusted, it is looked up in KMS, where it does not exist.
    client.AddPreviousKey("vendor-default", {"aws-kms", "alias/does-not-exist", "us-east-1"});
    expect_code<cyborg::KMSKeyNotFoundError>([&] { client.UnwrapKEK("idx", missing_key); },
                                             CYB_RESULT_KMS_KEY_NOT_FOUND, "kms:Decrypt failed: NotFoundException");
    expect_code<cyborg::UnknownSlotError>([&] { client.AddPreviousKey("nope", {"aws-kms", "k", "us-east-1"}); },
                                          CYB_RESULT_UNKNOWN_SLOT, "KMS slot \"nope\" is not in the registry");
    expect_code<cyborg::InvalidConfigError>([&] { client.AddPreviousKey("vendor-default", {"aws-kms", "k", ""}); },
                                            CYB_RESULT_INVALID_CONFIG,
                                            "KMS slot \"vendor-default\": previous key region is required");
}

TEST(KMSClient, RegistryFromYAMLWithEnvironmentSubstitution) {
    ASSERT_EQ(setenv("CYB_TEST_KEY_ALIAS", "alias/cyborgdb-test", 1), 0);
    auto client = moto_client();
    const std::string yaml =
        "kms:\n"
        "  registry:\n"
        "    vendor-default:\n"
        "      provider: aws-kms\n"
        "      key_id: ${CYB_TEST_KEY_ALIAS}\n"
        "      region: ${CYB_TEST_UNSET_REGION:-us-east-1}\n";
    EXPECT_EQ(client.LoadRegistryYAML(yaml), 1u);
    const auto wrapped = client.WrapNewKEK("idx", "vendor-default");
    EXPECT_EQ(wrapped.blob.key_id, "alias/cyborgdb-test");
    // The YAML replaced the registry: the programmatic slots are gone.
    EXPECT_THROW(client.WrapNewKEK("idx", "secrets"), cyborg::UnknownSlotError);
    expect_code<cyborg::InvalidConfigError>(
        [&] { client.LoadRegistryYAML("kms:\n  registry:\n    s: {provider: aws, key_id: '${CYB_TEST_UNSET_VAR}', region: r}\n"); },
        CYB_RESULT_INVALID_CONFIG, "KMS slot \"s\": key_id: environment variable CYB_TEST_UNSET_VAR is not set");
    // A failed load leaves the registry in use unchanged.
    EXPECT_TRUE(client.UnwrapKEK("idx", wrapped.blob) == wrapped.kek);
    TempDir dir;
    cyb_test::write_file(dir.path() / "cyborgdb.yaml", std::vector<uint8_t>(yaml.begin(), yaml.end()));
    EXPECT_EQ(client.LoadRegistryFile(dir.path() / "cyborgdb.yaml"), 1u);
    expect_code<cyborg::InvalidConfigError>([&] { client.LoadRegistryFile(dir.path() / "absent.yaml"); },
                                            CYB_RESULT_INVALID_CONFIG, "cannot read KMS registry file");
}

TEST(KMSClient, SlotValidationNamesSlotAndField) {
    cyborg::KMSClient client;
    expect_code<cyborg::InvalidConfigError>([&] { client.AddSlot("s", {"gcp", "k", "r", {}, {}, {}}); },
                                            CYB_RESULT_INVALID_CONFIG, "KMS slot \"s\": provider must be");
    expect_code<cyborg::InvalidConfigError>([&] { client.AddSlot("s", {"aws", "k", "", {}, {}, {}}); },
                                            CYB_RESULT_INVALID_CONFIG, "KMS slot \"s\": region is required");
    expect_code<cyborg::InvalidConfigError>(
        [&] { client.AddSlot("s", {"aws", "k", "r", std::string("arn:aws:iam::1:role/x"), {}, {}}); },
        CYB_RESULT_INVALID_CONFIG, "external_id is required when role_arn is set");
}

TEST(KMSClient, InvalidOptionsAndUnreachableEndpoint) {
    cyborg::KMSClientOptions bad;
    bad.endpoint_url = "127.0.0.1:4566";
    expect_code<cyborg::InvalidConfigError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS endpoint_url \"127.0.0.1:4566\" must start with http:// or https://");
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    cyborg::KMSClientOptions refused;
    refused.endpoint_url = "http://127.0.0.1:9";
    refused.max_attempts = 1;
    cyborg::KMSClient client(refused);
    client.AddSlot("k", {"aws-kms", "alias/x", "us-east-1", {}, {}, {}});
    expect_code<cyborg::KMSUnavailableError>([&] { client.WrapNewKEK("idx", "k"); },
                                             CYB_RESULT_KMS_UNAVAILABLE, "kms:Encrypt failed: unreachable");
}

TEST(KMSClient, KEKWipesOnMoveAndComparesByValue) {
    auto client = moto_client();
    auto wrapped = client.WrapNewKEK("idx", "secrets");
    const cyborg::KEK copy = wrapped.kek.Clone();
    cyborg::KEK moved = std::move(wrapped.kek);
    EXPECT_TRUE(all_zero(wrapped.kek));  // NOLINT(bugprone-use-after-move): wiped on purpose
    EXPECT_TRUE(moved == copy);
    EXPECT_FALSE(moved == cyborg::KEK());
}

TEST(KMSClient, OneClientManyThreads) {
    auto client = moto_client();
    const auto wrapped = client.WrapNewKEK("shared", "vendor-default");
    std::vector<std::thread> threads;
    std::atomic<int> matches{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i) {
                if (client.UnwrapKEK("shared", wrapped.blob) == wrapped.kek) {
                    ++matches;
                }
            }
        });
    }
    // Registry changes while others unwrap are safe.
    client.AddSlot("extra", {"aws", "cyborgdb-test/wrap-key", "us-east-1", {}, {}, {}});
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(matches.load(), 40);
}

// ---------------------------------------------------------------------------------------------
// C ABI argument checks: exact codes, outputs untouched on error.
// ---------------------------------------------------------------------------------------------

TEST(KMSClientCAbi, NullAndInvalidArguments) {
    EXPECT_EQ(cyb_kms_client_new(nullptr, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_test::last_error(), "cyb_kms_client_new: argument `out_client` is NULL");
    cyb_kms_client* raw = nullptr;
    ASSERT_EQ(cyb_kms_client_new(nullptr, &raw), CYB_RESULT_OK);  // NULL options: defaults
    std::unique_ptr<cyb_kms_client, void (*)(cyb_kms_client*)> client(raw, cyb_kms_client_free);
    cyb_kms_client_free(nullptr);

    cyb_kms_client_options bad_utf8{};
    const char invalid[] = {'\xff', '\xfe'};
    bad_utf8.endpoint_url = cyb_str{invalid, 2};
    cyb_kms_client* unused = nullptr;
    EXPECT_EQ(cyb_kms_client_new(&bad_utf8, &unused), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(unused, nullptr);

    EXPECT_EQ(cyb_kms_client_add_slot(client.get(), "s", 1, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_client_add_slot(nullptr, "s", 1, nullptr), CYB_RESULT_NULL_PARAMETER);
    cyb_kms_slot none_slot{};
    none_slot.provider = cyb_str{"none", 4};
    EXPECT_EQ(cyb_kms_client_add_slot(client.get(), "s", 1, &none_slot), CYB_RESULT_INVALID_CONFIG);
    cyb_kms_slot bad_key{};
    bad_key.provider = cyb_str{"aws", 3};
    bad_key.key_id = cyb_str{invalid, 2};
    EXPECT_EQ(cyb_kms_client_add_slot(client.get(), "s", 1, &bad_key), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_client_add_slot(client.get(), nullptr, 3, &bad_key), CYB_RESULT_NULL_PARAMETER);

    // Previous keys: every argument check with its exact code.
    cyb_kms_slot good_slot{};
    good_slot.provider = cyb_str{"aws-kms", 7};
    good_slot.key_id = cyb_str{"alias/new", 9};
    good_slot.region = cyb_str{"us-east-1", 9};
    ASSERT_EQ(cyb_kms_client_add_slot(client.get(), "s", 1, &good_slot), CYB_RESULT_OK);
    cyb_kms_slot old_key{};
    old_key.provider = cyb_str{"aws-kms", 7};
    old_key.key_id = cyb_str{"alias/old", 9};
    old_key.region = cyb_str{"us-east-1", 9};
    EXPECT_EQ(cyb_kms_client_add_previous_key(nullptr, "s", 1, &old_key), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), nullptr, 1, &old_key), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, nullptr), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_test::last_error(), "cyb_kms_client_add_previous_key: argument `key` is NULL");
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), invalid, 2, &old_key), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "t", 1, &old_key), CYB_RESULT_UNKNOWN_SLOT);
    cyb_kms_slot with_role = old_key;
    with_role.role_arn = cyb_str{"arn:aws:iam::1:role/x", 21};
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, &with_role), CYB_RESULT_INVALID_ARGUMENT);
    cyb_kms_slot none_key = old_key;
    none_key.provider = cyb_str{"none", 4};
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, &none_key), CYB_RESULT_INVALID_CONFIG);
    cyb_kms_slot bad_utf8_key = old_key;
    bad_utf8_key.key_id = cyb_str{invalid, 2};
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, &bad_utf8_key), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, &old_key), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kms_client_add_previous_key(client.get(), "s", 1, &old_key), CYB_RESULT_OK);  // no-op

    std::size_t slots = 99;
    EXPECT_EQ(cyb_kms_client_load_registry_yaml(client.get(), nullptr, 5, &slots), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_client_load_registry_yaml(client.get(), "kms: [", 6, &slots), CYB_RESULT_INVALID_CONFIG);
    EXPECT_EQ(slots, 99u);
    EXPECT_EQ(cyb_kms_client_load_registry_yaml(client.get(), "kms:\n  registry:\n", 17, nullptr), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kms_client_load_registry_file(client.get(), "", 0, &slots), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_client_load_registry_file(client.get(), "/nonexistent.yaml", 17, &slots),
              CYB_RESULT_INVALID_CONFIG);

    uint8_t kek[33];
    std::memset(kek, 0xAA, sizeof kek);
    cyb_kms_blob* blob = nullptr;
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), "idx", 3, "s", 1, &blob, kek, 31), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_test::last_error(), "out_kek_len must be 32 (a KEK is 32 bytes), not 31");
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), "idx", 3, "s", 1, &blob, nullptr, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), "idx", 3, "s", 1, nullptr, kek, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), "idx", 3, "s", 1, &blob, kek, 32), CYB_RESULT_UNKNOWN_SLOT);
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), invalid, 2, "s", 1, &blob, kek, 32), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_wrap_new_kek(client.get(), "", 0, "s", 1, &blob, kek, 32), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_wrap_kek(client.get(), "idx", 3, "s", 1, kek, 16, &blob), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_test::last_error(), "a KEK is 32 bytes, not 16");
    EXPECT_EQ(cyb_kms_wrap_kek(client.get(), "idx", 3, "s", 1, nullptr, 32, &blob), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(blob, nullptr);

    cyb_kms_blob* none_blob = nullptr;
    ASSERT_EQ(cyb_kms_blob_new(&none_blob), CYB_RESULT_OK);
    cyb_test::BlobPtr owned(none_blob);
    ASSERT_EQ(cyb_kms_blob_set_provider(none_blob, "none", 4), CYB_RESULT_OK);
    EXPECT_EQ(cyb_kms_unwrap_kek(client.get(), "idx", 3, none_blob, kek, 32), CYB_RESULT_KEK_NOT_WRAPPED);
    EXPECT_EQ(cyb_kms_unwrap_kek(client.get(), "idx", 3, nullptr, kek, 32), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_kms_unwrap_kek(client.get(), "idx", 3, none_blob, kek, 33), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_kms_unwrap_kek(nullptr, "idx", 3, none_blob, kek, 32), CYB_RESULT_NULL_PARAMETER);
    for (uint8_t byte : kek) {
        EXPECT_EQ(byte, 0xAA);  // never written on error
    }
}

// fork(): a client and resolver made (and used) before the fork throw ForkedProcessError in the
// child — through the C++ API and as CYB_RESULT_FORKED_PROCESS through the C ABI — instead of
// hanging; destroying them there prints nothing; a Disk store and a client made in the child work.
// The child reports failures on its stderr, which the parent reads through a pipe; alarm() kills a
// child that hangs.
TEST(KMSClient, ForkedChildGetsForkedProcessAndNewClientsWork) {
    TempDir dir;
    const auto store = cyborg::StorageConfig::Disk(dir.path());
    auto client = std::make_unique<cyborg::KMSClient>(moto_client());
    auto resolver = std::make_unique<cyborg::KEKResolver>(*client);
    const auto wrapped = client->WrapNewKEK("idx", "vendor-default");
    cyborg::CreateIndexKMS(store, "idx", wrapped.blob);
    ASSERT_TRUE(resolver->Resolve(store, "idx") == wrapped.kek);  // runtime and sweeper running

    int err_pipe[2];
    ASSERT_EQ(pipe(err_pipe), 0);
    std::fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        alarm(60);
        dup2(err_pipe[1], 2);
        close(err_pipe[0]);
        close(err_pipe[1]);
        int failures = 0;
        auto fail = [&](const char* what) {
            std::fprintf(stderr, "%s\n", what);
            ++failures;
        };
        auto expect_forked = [&](const char* what, const std::function<void()>& call) {
            try {
                call();
                fail(what);
            } catch (const cyborg::ForkedProcessError& e) {
                if (e.code() != CYB_RESULT_FORKED_PROCESS) fail(what);
            } catch (...) {
                fail(what);
            }
        };
        expect_forked("unwrap", [&] { client->UnwrapKEK("idx", wrapped.blob); });
        expect_forked("wrap", [&] { client->WrapNewKEK("other", "vendor-default"); });
        expect_forked("resolve", [&] { resolver->Resolve(store, "idx"); });
        const cyb_test::BlobPtr c_blob = cyborg::detail::to_c_blob(wrapped.blob);
        uint8_t kek[32] = {0};
        if (cyb_kms_unwrap_kek(client->c_handle(), "idx", 3, c_blob.get(), kek, sizeof kek) !=
            CYB_RESULT_FORKED_PROCESS) {
            fail("C ABI unwrap");
        }
        resolver.reset();
        client.reset();
        try {
            if (!(cyborg::GetIndexKMS(store, "idx") == wrapped.blob)) fail("disk get");
            const auto fresh = moto_client();
            if (!(fresh.UnwrapKEK("idx", wrapped.blob) == wrapped.kek)) fail("new client unwrap");
            const cyborg::KEKResolver fresh_resolver(fresh);
            if (!(fresh_resolver.Resolve(store, "idx") == wrapped.kek)) fail("new resolver");
        } catch (const std::exception& e) {
            fail(e.what());
        }
        std::fflush(nullptr);
        _exit(failures == 0 ? 0 : 1);
    }
    close(err_pipe[1]);
    std::string child_stderr;
    char buffer[4096];
    for (ssize_t n; (n = read(err_pipe[0], buffer, sizeof buffer)) > 0;) {
        child_stderr.append(buffer, static_cast<std::size_t>(n));
    }
    close(err_pipe[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status)
                                   << " (SIGALRM: it hung); stderr: " << child_stderr;
    EXPECT_EQ(WEXITSTATUS(status), 0) << child_stderr;
    EXPECT_EQ(child_stderr, "");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AWS settings (issue #14): per-service endpoints, retry mode and attempts

TEST(KMSClientSettings, EachServiceGoesToItsOwnEndpoint) {
    // The shared endpoint is closed: a call succeeds only if its service's own endpoint routed it.
    cyborg::KMSClientOptions options;
    options.endpoint_url = "http://127.0.0.1:9";
    options.kms_endpoint_url = moto_endpoint();
    options.secrets_manager_endpoint_url = moto_endpoint();
    options.sts_endpoint_url = moto_endpoint();
    options.max_attempts = 1;
    options.retry_mode = cyborg::RetryMode::Adaptive;
    cyborg::KMSClient client(options);
    client.AddSlot("kms", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    client.AddSlot("secrets", {"aws", "cyborgdb-test/wrap-key", "us-east-1", {}, {}, {}});
    const cyborg::WrappedKEK kms = client.WrapNewKEK("idx", "kms");
    EXPECT_EQ(client.UnwrapKEK("idx", kms.blob), kms.kek);
    const cyborg::WrappedKEK secrets = client.WrapNewKEK("idx", "secrets");
    EXPECT_EQ(client.UnwrapKEK("idx", secrets.blob), secrets.kek);

    // KMS alone pointed at the closed port: KMS calls fail, Secrets Manager calls still work.
    options.endpoint_url = moto_endpoint();
    options.kms_endpoint_url = "http://127.0.0.1:9";
    options.secrets_manager_endpoint_url.reset();
    cyborg::KMSClient kms_closed(options);
    kms_closed.AddSlot("kms", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    kms_closed.AddSlot("secrets", {"aws", "cyborgdb-test/wrap-key", "us-east-1", {}, {}, {}});
    expect_code<cyborg::KMSUnavailableError>([&] { kms_closed.WrapNewKEK("idx", "kms"); },
                                             CYB_RESULT_KMS_UNAVAILABLE, "kms:Encrypt failed: unreachable");
    const cyborg::WrappedKEK again = kms_closed.WrapNewKEK("idx", "secrets");
    EXPECT_EQ(kms_closed.UnwrapKEK("idx", again.blob), again.kek);
}

TEST(KMSClientSettings, BadEndpointsAndAttemptsAreInvalidConfig) {
    cyborg::KMSClientOptions bad;
    bad.kms_endpoint_url = "ftp://x";
    expect_code<cyborg::InvalidConfigError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS kms_endpoint_url \"ftp://x\" must start with http:// or https://");
    bad = {};
    bad.sts_endpoint_url = "http://10.1.2.3";
    expect_code<cyborg::InvalidConfigError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS client: sts_endpoint_url \"http://10.1.2.3\" is plain http");
    bad.allow_insecure_http = true;
    cyborg::KMSClient allowed(bad);
    bad = {};
    bad.secrets_manager_endpoint_url = "http://[::1";
    expect_code<cyborg::InvalidConfigError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS secrets_manager_endpoint_url \"http://[::1\" is not a valid URL");
    bad = {};
    bad.max_attempts = 11;
    expect_code<cyborg::InvalidConfigError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS client max_attempts must be at most 10 (got 11)");
    bad = {};
    bad.retry_mode = static_cast<cyborg::RetryMode>(7);
    expect_code<cyborg::InvalidArgumentError>([&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_ARGUMENT,
                                              "options.retry_mode is 7");
}

TEST(KMSClientSettingsCAbi, NewFieldsAreCheckedWithExactCodes) {
    cyb_kms_client* out = nullptr;
    cyb_kms_client_options options{};
    options.retry_mode = 3;
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, nullptr);
    EXPECT_EQ(cyb_test::last_error(),
              "options.retry_mode is 3: use CYB_RETRY_MODE_DEFAULT (0), "
              "CYB_RETRY_MODE_STANDARD (1) or CYB_RETRY_MODE_ADAPTIVE (2)");
    options = cyb_kms_client_options{};
    options.sts_endpoint_url = cyb_str{nullptr, 4};
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(out, nullptr);
    const char invalid[] = {'\xff', '\xfe'};
    options = cyb_kms_client_options{};
    options.kms_endpoint_url = cyb_str{invalid, 2};
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(out, nullptr);
    options = cyb_kms_client_options{};
    options.timeouts.max_attempts = 11;
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_CONFIG);
    EXPECT_EQ(out, nullptr);
    const std::string endpoint = "http://127.0.0.1:4566";
    options = cyb_kms_client_options{};
    options.retry_mode = CYB_RETRY_MODE_ADAPTIVE;
    options.kms_endpoint_url = cyb_str{endpoint.data(), endpoint.size()};
    options.secrets_manager_endpoint_url = cyb_str{endpoint.data(), endpoint.size()};
    options.sts_endpoint_url = cyb_str{endpoint.data(), endpoint.size()};
    ASSERT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_OK);
    cyb_kms_client_free(out);
}

TEST(KMSClient, ReplicaRegionsLoadFromYAMLAndFailoverStatsStartAtZero) {
    cyborg::KMSClient client{cyborg::KMSClientOptions{}};
    const std::string slot =
        "kms:\n  registry:\n    mrk:\n      provider: aws-kms\n"
        "      key_id: arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab\n"
        "      region: us-east-1\n";
    EXPECT_EQ(client.LoadRegistryYAML(slot + "      replica_regions: [us-west-2, eu-west-1]\n"), 1u);
    const cyb_kms_failover_stats stats = client.Stats();
    EXPECT_EQ(stats.region_failovers, 0u);
    EXPECT_EQ(stats.replica_unwraps, 0u);
    expect_code<cyborg::InvalidConfigError>(
        [&] { client.LoadRegistryYAML(slot + "      replica_regions: [us-west-2, us-east-1]\n"); },
        CYB_RESULT_INVALID_CONFIG, "KMS slot \"mrk\": replica_regions[1] is the slot's own region");
}

// KMSSlot::replica_regions reaches the registry through AddSlot (cyb_kms_slot.replica_regions):
// an envelope recorded in a listed replica region is trusted (drift: kDrifted) and its unwrap
// fails over to the slot's region (counted in Stats) — here both regions are a closed port, so
// the failover ends unavailable; without the field the same envelope is UNTRUSTED_KEY before any
// KMS call. Validation is the YAML's, naming the field.
TEST(KMSClient, ReplicaRegionsGivenToAddSlotAreTrustedAndFailedOver) {
    const std::string mrk = "key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const std::string primary_arn = "arn:aws:kms:us-east-1:111122223333:" + mrk;
    const std::string replica_arn = "arn:aws:kms:us-west-2:111122223333:" + mrk;
    cyborg::KMSClientOptions refused;
    refused.endpoint_url = "http://127.0.0.1:9";
    refused.max_attempts = 1;
    const auto store = cyborg::StorageConfig::Memory();
    const cyborg::KMSBlob replica_envelope{
        "mrk", "aws-kms", replica_arn, "us-west-2", std::vector<uint8_t>(64, 7), 1, 0};
    cyborg::PushIndexKMS(store, "orders", replica_envelope);
    {
        cyborg::KMSClient plain(refused);
        plain.AddSlot("mrk", {"aws-kms", primary_arn, "us-east-1", {}, {}, {}});
        const cyborg::KEKResolver resolver(plain);
        expect_code<cyborg::UntrustedKeyError>([&] { resolver.Resolve(store, "orders"); },
                                               CYB_RESULT_UNTRUSTED_KEY, "us-west-2");
        EXPECT_EQ(plain.Stats().region_failovers, 0u);
    }
    cyborg::KMSClient client(refused);
    cyborg::KMSSlot slot{"aws-kms", primary_arn, "us-east-1", {}, {}, {}};
    slot.replica_regions = {"us-west-2"};
    client.AddSlot("mrk", slot);
    const cyborg::KEKResolver resolver(client);
    expect_code<cyborg::KMSUnavailableError>([&] { resolver.Resolve(store, "orders"); },
                                             CYB_RESULT_KMS_UNAVAILABLE,
                                             "after failing over through regions \"us-west-2\", \"us-east-1\"");
    EXPECT_EQ(client.Stats().region_failovers, 1u);
    EXPECT_EQ(client.Stats().replica_unwraps, 0u);
    const auto report = resolver.CheckDrift(store);
    ASSERT_EQ(report.size(), 1u);
    EXPECT_EQ(report[0].status, cyborg::DriftStatus::kDrifted);

    slot.replica_regions = {"us-west-2", "us-east-1"};
    expect_code<cyborg::InvalidConfigError>([&] { client.AddSlot("s", slot); }, CYB_RESULT_INVALID_CONFIG,
                                            "KMS slot \"s\": replica_regions[1] is the slot's own region");
    slot.replica_regions = {"us-west-2", "Mars"};
    expect_code<cyborg::InvalidConfigError>(
        [&] { client.AddSlot("s", slot); }, CYB_RESULT_INVALID_CONFIG,
        "KMS slot \"s\": replica_regions[1] is not an AWS region name (e.g. us-west-2)");
    slot.key_id = "alias/not-multi-region";
    slot.replica_regions = {"us-west-2"};
    expect_code<cyborg::InvalidConfigError>(
        [&] { client.AddSlot("s", slot); }, CYB_RESULT_INVALID_CONFIG,
        "KMS slot \"s\": key_id must name a multi-Region key (an mrk- key id, or its key ARN in the "
        "slot's region) when replica_regions is set");
}

TEST(KMSClientCAbi, ReplicaRegionArgumentsGetExactCodes) {
    cyb_kms_client* raw = nullptr;
    ASSERT_EQ(cyb_kms_client_new(nullptr, &raw), CYB_RESULT_OK);
    const std::string provider = "aws-kms";
    const std::string key_id = "mrk-1a2b";
    const std::string region = "us-east-1";
    cyb_kms_slot slot{};
    slot.provider = cyb_str{provider.data(), provider.size()};
    slot.key_id = cyb_str{key_id.data(), key_id.size()};
    slot.region = cyb_str{region.data(), region.size()};
    slot.replica_regions = nullptr;
    slot.replica_region_count = 1;
    EXPECT_EQ(cyb_kms_client_add_slot(raw, "s", 1, &slot), CYB_RESULT_NULL_PARAMETER);
    EXPECT_NE(cyb_test::last_error().find("slot.replica_regions"), std::string::npos)
        << cyb_test::last_error();
    const char bad_utf8[] = {'\xff'};
    const cyb_str regions[] = {{"us-west-2", 9}, {bad_utf8, 1}};
    slot.replica_regions = regions;
    slot.replica_region_count = 2;
    EXPECT_EQ(cyb_kms_client_add_slot(raw, "s", 1, &slot), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(cyb_test::last_error().find("slot.replica_regions[1]"), std::string::npos)
        << cyb_test::last_error();
    slot.replica_region_count = 1;
    EXPECT_EQ(cyb_kms_client_add_slot(raw, "s", 1, &slot), CYB_RESULT_OK);
    // A previous key never fails over: replica regions are refused there.
    EXPECT_EQ(cyb_kms_client_add_previous_key(raw, "s", 1, &slot), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_test::last_error(),
              "key: replica_region_count must be 0 (a previous key never fails over)");
    cyb_kms_client_free(raw);
}

// ---------------------------------------------------------------------------------------------
// A KMS endpoint per region (KMSClientOptions::kms_region_endpoint_urls,
// cyb_kms_client_options.kms_region_endpoint_urls)

// The shared endpoint is a closed port: a KMS call succeeds only if the region's own endpoint
// routed it. The region's entry wins over kms_endpoint_url; an entry for another region routes
// nothing of this one; Secrets Manager never uses it.
TEST(KMSClientSettings, RegionEndpointRoutesKMSCallsOfThatRegionOnly) {
    cyborg::KMSClientOptions options;
    options.endpoint_url = "http://127.0.0.1:9";
    options.kms_endpoint_url = "http://127.0.0.1:9";
    options.kms_region_endpoint_urls = {{"us-east-1", moto_endpoint()}};
    options.max_attempts = 1;
    cyborg::KMSClient client(options);
    client.AddSlot("kms", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    client.AddSlot("secrets", {"aws", "cyborgdb-test/wrap-key", "us-east-1", {}, {}, {}});
    const cyborg::WrappedKEK wrapped = client.WrapNewKEK("idx", "kms");
    EXPECT_EQ(client.UnwrapKEK("idx", wrapped.blob), wrapped.kek);
    expect_code<cyborg::KMSUnavailableError>([&] { client.WrapNewKEK("idx", "secrets"); },
                                             CYB_RESULT_KMS_UNAVAILABLE, "unreachable");

    options.kms_region_endpoint_urls = {{"us-west-2", moto_endpoint()}};
    cyborg::KMSClient other_region(options);
    other_region.AddSlot("kms", {"aws-kms", "alias/cyborgdb-test", "us-east-1", {}, {}, {}});
    expect_code<cyborg::KMSUnavailableError>([&] { other_region.WrapNewKEK("idx", "kms"); },
                                             CYB_RESULT_KMS_UNAVAILABLE, "kms:Encrypt failed: unreachable");
}

// A failover to a replica region goes to the endpoint given for that region. The slot's region
// (us-east-1) is mapped to a closed port, the replica (us-west-2) to moto. moto cannot decrypt a
// multi-Region ciphertext (it truncates the mrk- key id, tests/kms_failover.rs), and holds no
// such key: its answer ends the failover with KMS_KEY_NOT_FOUND (never failed over further),
// which only moto can give — without the replica's entry the same unwrap ends unavailable.
TEST(KMSClient, FailoverUsesTheReplicaRegionsEndpoint) {
    const std::string mrk = "key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const std::string primary_arn = "arn:aws:kms:us-east-1:111122223333:" + mrk;
    const cyborg::KMSBlob envelope{
        "mrk", "aws-kms", primary_arn, "us-east-1", std::vector<uint8_t>(64, 7), 1, 0};
    cyborg::KMSSlot slot{"aws-kms", primary_arn, "us-east-1", {}, {}, {}};
    slot.replica_regions = {"us-west-2"};
    cyborg::KMSClientOptions options;
    options.endpoint_url = "http://127.0.0.1:9";
    options.max_attempts = 1;
    options.kms_region_endpoint_urls = {{"us-east-1", "http://127.0.0.1:9"}, {"us-west-2", moto_endpoint()}};
    cyborg::KMSClient client(options);
    client.AddSlot("mrk", slot);
    expect_code<cyborg::KMSKeyNotFoundError>([&] { client.UnwrapKEK("orders", envelope); },
                                             CYB_RESULT_KMS_KEY_NOT_FOUND, "kms:Decrypt failed: NotFoundException");
    EXPECT_EQ(client.Stats().region_failovers, 1u);
    EXPECT_EQ(client.Stats().replica_unwraps, 0u);

    options.kms_region_endpoint_urls.erase("us-west-2");
    cyborg::KMSClient unmapped(options);
    unmapped.AddSlot("mrk", slot);
    expect_code<cyborg::KMSUnavailableError>([&] { unmapped.UnwrapKEK("orders", envelope); },
                                             CYB_RESULT_KMS_UNAVAILABLE,
                                             "after failing over through regions \"us-east-1\", \"us-west-2\"");
    EXPECT_EQ(unmapped.Stats().region_failovers, 1u);
}

TEST(KMSClientSettings, BadRegionEndpointIsInvalidConfigNamingTheRegion) {
    cyborg::KMSClientOptions bad;
    bad.kms_region_endpoint_urls = {{"us-west-2", "ftp://127.0.0.1"}};
    expect_code<cyborg::InvalidConfigError>(
        [&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
        "KMS kms_region_endpoint_urls[\"us-west-2\"] \"ftp://127.0.0.1\" must start with http:// or https://");
    bad.kms_region_endpoint_urls = {{"eu-west-1", moto_endpoint()}, {"us-west-2", "http://10.1.2.3:4566"}};
    expect_code<cyborg::InvalidConfigError>(
        [&] { cyborg::KMSClient c(bad); }, CYB_RESULT_INVALID_CONFIG,
        "KMS client: kms_region_endpoint_urls[\"us-west-2\"] \"http://10.1.2.3:4566\" is plain http to another host");
    bad.allow_insecure_http = true;
    const cyborg::KMSClient allowed(bad);
}

TEST(KMSClientSettingsCAbi, RegionEndpointArgumentsGetExactCodes) {
    const std::string loopback = "http://127.0.0.1:9";
    cyb_kms_client* out = nullptr;
    cyb_kms_client_options options{};
    options.kms_region_endpoint_urls = nullptr;
    options.kms_region_endpoint_url_count = 1;
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_NULL_PARAMETER);
    EXPECT_EQ(cyb_test::last_error(), "cyb_kms_client_new: argument `options.kms_region_endpoint_urls` is NULL");
    EXPECT_EQ(out, nullptr);

    const char invalid[] = {'\xff'};
    cyb_kms_region_endpoint entries[] = {
        {cyb_str{"us-west-2", 9}, cyb_str{loopback.data(), loopback.size()}},
        {cyb_str{invalid, 1}, cyb_str{loopback.data(), loopback.size()}},
    };
    options.kms_region_endpoint_urls = entries;
    options.kms_region_endpoint_url_count = 2;
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(cyb_test::last_error().find("options.kms_region_endpoint_urls[1].region is not valid UTF-8"),
              std::string::npos)
        << cyb_test::last_error();
    EXPECT_EQ(out, nullptr);
    entries[1] = {cyb_str{"eu-west-1", 9}, cyb_str{invalid, 1}};
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(cyb_test::last_error().find("options.kms_region_endpoint_urls[1].url is not valid UTF-8"),
              std::string::npos)
        << cyb_test::last_error();

    entries[1] = {cyb_str{"us-west-2", 9}, cyb_str{loopback.data(), loopback.size()}};
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_ARGUMENT);
    EXPECT_EQ(cyb_test::last_error(),
              "options.kms_region_endpoint_urls[1].region \"us-west-2\" is given twice");
    EXPECT_EQ(out, nullptr);

    const std::string remote = "http://10.1.2.3:4566";
    entries[1] = {cyb_str{"eu-west-1", 9}, cyb_str{remote.data(), remote.size()}};
    EXPECT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_INVALID_CONFIG);
    EXPECT_NE(cyb_test::last_error().find("kms_region_endpoint_urls[\"eu-west-1\"] \"http://10.1.2.3:4566\" is "
                                          "plain http to another host"),
              std::string::npos)
        << cyb_test::last_error();
    EXPECT_EQ(out, nullptr);

    entries[1] = {cyb_str{"eu-west-1", 9}, cyb_str{loopback.data(), loopback.size()}};
    ASSERT_EQ(cyb_kms_client_new(&options, &out), CYB_RESULT_OK);
    cyb_kms_client_free(out);
}
