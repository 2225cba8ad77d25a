// The Disk store's files: where envelopes live (<root>/<storage key>.kms), that hostile index
// names never reach outside the root, and that truncated / garbage / foreign / empty files are
// CORRUPT (naming the index) without the failed calls changing anything.
#include "cyborgdb_core/index_kms.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace cyb_test;

namespace {

class DiskTest : public testing::Test {
protected:
    fs::path parent() const { return dir_.path(); }
    fs::path root() const { return dir_.path() / "root"; }
    const cyborg::StorageConfig& config() const { return config_; }

private:
    TempDir dir_;
    cyborg::StorageConfig config_ = cyborg::StorageConfig::Disk(dir_.path() / "root");
};

std::string cjk(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "\xe9\x8d\xb5";  // U+9375, 3 bytes
    return s;
}

/// Expects get(`name`) to fail with CORRUPT naming the index, through both APIs, and the stored
/// file to be unchanged by the failed call.
void expect_corrupt(const cyborg::StorageConfig& config, const fs::path& file, const std::string& name,
                    const std::string& context) {
    const std::vector<uint8_t> before = read_file(file);
    const std::string prefix = "CORRUPT: index \"" + name + "\": stored KMS envelope at \"" +
                               file.string() + "\" is corrupt: ";
    try {
        cyborg::GetIndexKMS(config, name);
        ADD_FAILURE() << context << ": expected CorruptDataError";
    } catch (const cyborg::CorruptDataError& e) {
        EXPECT_EQ(e.code(), CYB_RESULT_CORRUPT) << context;
        EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << context << ": " << e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << context << ": wrong exception " << e.what();
    }
    EXPECT_THROW(cyborg::TryGetIndexKMS(config, name), cyborg::CorruptDataError) << context;
    cyb_kms_blob* out = reinterpret_cast<cyb_kms_blob*>(uintptr_t{0x99});
    EXPECT_EQ(cyb_index_kms_get(config.c_handle(), name.data(), name.size(), &out), CYB_RESULT_CORRUPT)
        << context;
    EXPECT_EQ(out, reinterpret_cast<cyb_kms_blob*>(uintptr_t{0x99})) << context;
    EXPECT_EQ(read_file(file), before) << context << ": a failed get changed the file";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

TEST_F(DiskTest, EnvelopeFileNamesAndModes) {
    EXPECT_FALSE(fs::exists(root())) << "nothing is created before the first write";
    cyborg::CreateIndexKMS(config(), "idx", aws_kms_blob());
    cyborg::CreateIndexKMS(config(), "my_index", aws_kms_blob());
    cyborg::CreateIndexKMS(config(), "My Index", aws_kms_blob());
    cyborg::CreateIndexKMS(config(), "../x", aws_kms_blob());
    cyborg::CreateIndexKMS(config(), cjk(85), aws_kms_blob());  // 255 bytes: hashed key
    const std::set<std::string> files = list_dir(root());
    EXPECT_EQ(files.count("idx.kms"), 1u);
    EXPECT_EQ(files.count("my_index.kms"), 1u);
    EXPECT_EQ(files.count("%4Dy%20%49ndex.kms"), 1u);
    EXPECT_EQ(files.count("%2E%2E%2Fx.kms"), 1u);
    EXPECT_EQ(files.size(), 5u);
    int hashed = 0;
    for (const auto& f : files) hashed += std::regex_match(f, std::regex("~[0-9a-f]{64}\\.kms"));
    EXPECT_EQ(hashed, 1);

    struct stat st {};
    ASSERT_EQ(stat(root().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(stat((root() / "idx.kms").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(list_dir(parent()), (std::set<std::string>{"root"}));
}

TEST(DiskLayout, RootAndMissingParentsAreCreatedOnFirstWrite) {
    TempDir dir;
    const fs::path deep = dir.path() / "a" / "b" / "c";
    const auto config = cyborg::StorageConfig::Disk(deep);
    EXPECT_EQ(cyborg::TryGetIndexKMS(config, "idx"), std::nullopt);
    cyborg::DeleteIndexKMS(config, "idx");
    EXPECT_FALSE(fs::exists(dir.path() / "a")) << "reads and deletes create nothing";
    cyborg::PushIndexKMS(config, "idx", aws_kms_blob());
    EXPECT_EQ(list_dir(deep), (std::set<std::string>{"idx.kms"}));
}

TEST(DiskLayout, HostileNamesRoundTripAndStayInsideTheRoot) {
    // The root sits three levels deep in a private temp dir, so even "../../x" would land inside
    // it: a recursive listing of the temp dir then proves nothing was written outside the root.
    TempDir dir;
    const fs::path parent = dir.path() / "l1" / "l2";
    const fs::path root = parent / "root";
    const auto config = cyborg::StorageConfig::Disk(root);
    std::vector<std::string> names = {
        " ", ".", "..", "...", "../../etc/passwd", "../../../x", "/abs", "/", "a/b", "a\\b",
        "a/../../b", "./x", "x.kms", ".kms", "idx.kms.tmp", ".cyborgdb-kms.1.2.3.tmp", "~root", "~",
        "%", "%2E", "%2e", "A", "a", "CON", "nul", "-rf", "*", "?", "$(reboot)",
        "name\nwith\nnewlines", "tab\there", std::string("\x01\x02\x1b[31m\x7f", 7),
        "\xc3\xa9", "e\xcc\x81",  // é precomposed and with a combining accent
        "\xf0\x9f\x94\x91 key", cjk(85), cjk(67) + "ab", std::string(255, '.'),
        std::string(255, '/'),
    };
    for (const auto& n : names) ASSERT_LE(n.size(), 255u) << n;
    const char* const outside[] = {"/abs", "/abs.kms", "/etc/passwd.kms", "/b.kms", "/x.kms"};
    for (const char* path : outside) ASSERT_FALSE(fs::exists(path)) << path;

    for (size_t i = 0; i < names.size(); ++i) {
        cyborg::CreateIndexKMS(config, names[i], aws_kms_blob("n" + std::to_string(i)));
    }
    for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(cyborg::GetIndexKMS(config, names[i]), aws_kms_blob("n" + std::to_string(i)))
            << "name #" << i;
        EXPECT_THROW(cyborg::CreateIndexKMS(config, names[i], aws_kms_blob()), cyborg::AlreadyExistsError);
    }

    // One regular file per name, directly in the root, with an inert name.
    EXPECT_EQ(list_dir(root).size(), names.size());
    for (const auto& entry : fs::directory_iterator(root)) {
        EXPECT_TRUE(entry.is_regular_file()) << entry.path();
        const std::string f = entry.path().filename().string();
        EXPECT_TRUE(std::regex_match(f, std::regex("([a-z0-9_%A-F-]{1,200}|~[0-9a-f]{64})\\.kms"))) << f;
    }
    // The root's parent holds only the root; nothing anywhere else under the temp dir.
    EXPECT_EQ(list_dir(parent), (std::set<std::string>{"root"}));
    EXPECT_EQ(list_dir(parent.parent_path()), (std::set<std::string>{"l2"}));
    EXPECT_EQ(list_dir(dir.path()), (std::set<std::string>{"l1"}));
    size_t everything = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
        const fs::path rel = fs::relative(entry.path(), dir.path());
        const bool in_root = rel.parent_path() == fs::path("l1/l2/root");
        const bool a_parent = rel == fs::path("l1") || rel == fs::path("l1/l2") || rel == fs::path("l1/l2/root");
        EXPECT_TRUE(in_root || a_parent) << rel;
        ++everything;
    }
    EXPECT_EQ(everything, names.size() + 3);
    for (const char* path : outside) EXPECT_FALSE(fs::exists(path)) << path;

    for (size_t i = 0; i < names.size(); ++i) cyborg::DeleteIndexKMS(config, names[i]);
    EXPECT_TRUE(list_dir(root).empty());
    for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(cyborg::TryGetIndexKMS(config, names[i]), std::nullopt);
    }
}

// ---------------------------------------------------------------------------------------------
// Corruption: for index "idx" the envelope is <root>/idx.kms
// ---------------------------------------------------------------------------------------------

TEST_F(DiskTest, EveryTruncationIsCorrupt) {
    const cyborg::KMSBlob original = aws_kms_blob("orig");
    cyborg::CreateIndexKMS(config(), "idx", original);
    const fs::path file = root() / "idx.kms";
    const std::vector<uint8_t> good = read_file(file);
    ASSERT_GT(good.size(), 200u);
    for (size_t len = 0; len < good.size(); ++len) {
        write_file(file, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(len)));
        expect_corrupt(config(), file, "idx", "truncated to " + std::to_string(len));
        if (HasFailure()) break;  // one length is enough to diagnose
    }
    // Appended bytes are caught too.
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    write_file(file, longer);
    expect_corrupt(config(), file, "idx", "one byte appended");
    // The original bytes read back intact.
    write_file(file, good);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx"), original);
}

TEST_F(DiskTest, EmptyGarbageAndForeignFilesAreCorrupt) {
    const cyborg::KMSBlob original = aws_kms_blob("orig");
    cyborg::CreateIndexKMS(config(), "idx", original);
    const fs::path file = root() / "idx.kms";
    const std::vector<uint8_t> good = read_file(file);

    write_file(file, {});
    expect_corrupt(config(), file, "idx", "empty file");

    std::mt19937 rng(12345);
    for (size_t size : {size_t{1}, size_t{4}, size_t{11}, size_t{12}, size_t{64}, good.size(), size_t{4096},
                        size_t{65536}, size_t{65537}, size_t{200000}}) {
        std::vector<uint8_t> garbage(size);
        for (auto& b : garbage) b = static_cast<uint8_t>(rng());
        write_file(file, garbage);
        expect_corrupt(config(), file, "idx", "random garbage of " + std::to_string(size) + " bytes");
    }
    write_file(file, std::vector<uint8_t>(good.size(), 0));
    expect_corrupt(config(), file, "idx", "zeros");
    write_file(file, std::vector<uint8_t>(good.size(), 0xFF));
    expect_corrupt(config(), file, "idx", "0xFF bytes");
    const std::string text = "{\"kms_name\": \"prod-kms\", \"provider\": \"aws-kms\"}\n";
    write_file(file, std::vector<uint8_t>(text.begin(), text.end()));
    expect_corrupt(config(), file, "idx", "a JSON file");
    // The valid envelope with its file identifier changed ("CKMS" -> "XKMS").
    std::vector<uint8_t> wrong_id = good;
    bool replaced = false;
    for (size_t i = 0; i + 4 <= wrong_id.size(); ++i) {
        if (std::string(wrong_id.begin() + static_cast<long>(i), wrong_id.begin() + static_cast<long>(i) + 4) == "CKMS") {
            wrong_id[i] = 'X';
            replaced = true;
            break;
        }
    }
    ASSERT_TRUE(replaced) << "the envelope carries the CKMS file identifier";
    write_file(file, wrong_id);
    expect_corrupt(config(), file, "idx", "wrong file identifier");
    // A damaged field (the checksum catches what the verifier cannot): flip a byte of key_id.
    std::vector<uint8_t> flipped = good;
    const std::string key_id = original.key_id;
    auto at = std::search(flipped.begin(), flipped.end(), key_id.begin(), key_id.end());
    ASSERT_NE(at, flipped.end());
    *(at + 5) ^= 0x01;
    write_file(file, flipped);
    expect_corrupt(config(), file, "idx", "flipped key_id byte");

    // Another index's valid envelope copied over idx.kms: it records its own index name.
    cyborg::CreateIndexKMS(config(), "other", aws_kms_blob("other"));
    fs::copy_file(root() / "other.kms", file, fs::copy_options::overwrite_existing);
    expect_corrupt(config(), file, "idx", "envelope of index \"other\"");
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "other"), aws_kms_blob("other"));

    // Restoring the original bytes restores the envelope exactly.
    write_file(file, good);
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx"), original);
}

TEST_F(DiskTest, CorruptEnvelopesCanBeReplacedOrDeletedButNotCreatedOver) {
    cyborg::CreateIndexKMS(config(), "idx", aws_kms_blob("orig"));
    const fs::path file = root() / "idx.kms";
    const std::vector<uint8_t> junk = {'j', 'u', 'n', 'k'};
    write_file(file, junk);
    // Create is a strict insert: the (corrupt) file exists, so ALREADY_EXISTS, file untouched.
    EXPECT_THROW(cyborg::CreateIndexKMS(config(), "idx", aws_kms_blob("new")), cyborg::AlreadyExistsError);
    EXPECT_EQ(read_file(file), junk);
    // Push replaces it.
    cyborg::PushIndexKMS(config(), "idx", aws_kms_blob("pushed"));
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "idx"), aws_kms_blob("pushed"));
    // Delete removes a corrupt file.
    write_file(file, junk);
    cyborg::DeleteIndexKMS(config(), "idx");
    EXPECT_FALSE(fs::exists(file));
    EXPECT_EQ(cyborg::TryGetIndexKMS(config(), "idx"), std::nullopt);
    EXPECT_TRUE(list_dir(root()).empty());
}

TEST_F(DiskTest, ADirectoryInPlaceOfTheEnvelopeIsAnIOError) {
    cyborg::CreateIndexKMS(config(), "other", aws_kms_blob("other"));
    fs::create_directory(root() / "idx.kms");
    try {
        cyborg::GetIndexKMS(config(), "idx");
        FAIL() << "expected IOError";
    } catch (const cyborg::IOError& e) {
        EXPECT_EQ(e.code(), CYB_RESULT_IO);
        EXPECT_EQ(std::string(e.what()).rfind("IO: index \"idx\": cannot read ", 0), 0u) << e.what();
    }
    EXPECT_THROW(cyborg::PushIndexKMS(config(), "idx", aws_kms_blob()), cyborg::IOError);
    EXPECT_THROW(cyborg::CreateIndexKMS(config(), "idx", aws_kms_blob()), cyborg::AlreadyExistsError);
    EXPECT_TRUE(fs::is_directory(root() / "idx.kms"));
    EXPECT_EQ(list_dir(root()), (std::set<std::string>{"idx.kms", "other.kms"})) << "temp files removed";
    EXPECT_EQ(cyborg::GetIndexKMS(config(), "other"), aws_kms_blob("other"));
}
