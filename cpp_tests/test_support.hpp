// Shared helpers of the C/C++ tests: temp directories, a start gate for threads, file access,
// owned C handles and a parameter for running a test on Memory and on Disk storage.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cyborgdb_core/index_kms.hpp"

namespace cyb_test {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "cyb-kms-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        }
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

/// A one-shot gate: threads wait() until open() — so they all start at once (C++17 has no latch).
class StartGate {
public:
    /// Blocks until `open()`; counts the waiter so the opener can wait for everyone to arrive.
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        ++waiting_;
        arrived_.notify_all();
        opened_cv_.wait(lock, [this] { return opened_; });
    }
    /// Waits until `n` threads are blocked in wait(), then releases them all.
    void open_when(int n) {
        std::unique_lock<std::mutex> lock(mutex_);
        arrived_.wait(lock, [this, n] { return waiting_ >= n; });
        opened_ = true;
        opened_cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::condition_variable opened_cv_;
    int waiting_ = 0;
    bool opened_ = false;
};

inline std::vector<uint8_t> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        throw std::runtime_error("cannot write " + path.string());
    }
}

/// The names of the entries of `dir` (empty if it does not exist).
inline std::set<std::string> list_dir(const fs::path& dir) {
    std::set<std::string> names;
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        return names;
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

/// Runs `call` and checks it throws `Exception` with result `code` and `needle` in what().
template <typename Exception>
void expect_code(const std::function<void()>& call, cyb_result code, const std::string& needle) {
    try {
        call();
        ADD_FAILURE() << "expected an exception with code " << cyb_result_name(code);
    } catch (const Exception& e) {
        EXPECT_EQ(e.code(), code);
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

inline std::string last_error() { return cyb_last_error_message(); }

/// http://127.0.0.1:<port> of the moto server the CTest fixture `moto` started (tests registered
/// with cyb_gtest_moto get its state directory in CYB_MOTO_STATE_DIR).
inline std::string moto_endpoint() {
    const char* dir = std::getenv("CYB_MOTO_STATE_DIR");
    if (dir == nullptr) {
        throw std::runtime_error("CYB_MOTO_STATE_DIR is not set: run through CTest (fixture moto)");
    }
    std::ifstream file(std::string(dir) + "/port");
    std::string port;
    if (!(file >> port)) {
        throw std::runtime_error("cannot read the moto port from CYB_MOTO_STATE_DIR/port");
    }
    return "http://127.0.0.1:" + port;
}

/// Seconds since the epoch from CLOCK_REALTIME, the clock the library stamps created_at with.
/// Not std::time(): glibc answers it from the coarse clock, which lags by up to a tick, so at a
/// second boundary it can still say N after the library stamped N + 1.
inline int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// A valid aws-kms envelope, distinguishable by `tag`.
inline cyborg::KMSBlob aws_kms_blob(const std::string& tag = "a") {
    cyborg::KMSBlob blob;
    blob.kms_name = "prod-kms-" + tag;
    blob.provider = "aws-kms";
    blob.key_id = "arn:aws:kms:us-east-1:123456789012:key/" + tag;
    blob.region = "us-east-1";
    blob.wrapped_kek.assign(184, static_cast<uint8_t>(tag.empty() ? 0 : tag[0]));
    blob.wrapped_kek[0] = static_cast<uint8_t>(tag.size());
    blob.version = 1;
    blob.created_at = 1700000000;
    return blob;
}

// Owned C handles.
struct ConfigDeleter {
    void operator()(cyb_storage_config* c) const noexcept { cyb_storage_config_free(c); }
};
using ConfigPtr = std::unique_ptr<cyb_storage_config, ConfigDeleter>;
using BlobPtr = cyborg::detail::BlobPtr;

inline ConfigPtr c_memory() {
    cyb_storage_config* raw = nullptr;
    EXPECT_EQ(cyb_storage_config_new_memory(&raw), CYB_RESULT_OK);
    return ConfigPtr(raw);
}

inline ConfigPtr c_disk(const fs::path& root) {
    const std::string s = root.string();
    cyb_storage_config* raw = nullptr;
    EXPECT_EQ(cyb_storage_config_new_disk(s.data(), s.size(), &raw), CYB_RESULT_OK);
    return ConfigPtr(raw);
}

inline std::string str(cyb_str s) { return s.len == 0 ? std::string() : std::string(s.data, s.len); }

inline std::vector<uint8_t> bytes(cyb_bytes b) {
    return b.len == 0 ? std::vector<uint8_t>() : std::vector<uint8_t>(b.data, b.data + b.len);
}

/// A `local` (development-only) slot whose master key is the 32-byte file `dir/<name>.key`
/// filled with `fill` (written here).
inline cyborg::KMSSlot local_slot(const TempDir& dir, const std::string& name, uint8_t fill) {
    const auto path = dir.path() / (name + ".key");
    write_file(path, std::vector<uint8_t>(32, fill));
    return {"local", "file:" + path.string(), "", {}, {}, {}};
}

/// A client with the local provider enabled and one `local_slot` per (name, fill).
inline cyborg::KMSClient local_client(
    const TempDir& dir,
    const std::vector<std::pair<std::string, uint8_t>>& slots = {{"main", 1}, {"other", 2}}) {
    cyborg::KMSClientOptions options;
    options.allow_local_provider = true;
    cyborg::KMSClient client(options);
    for (const auto& [name, fill] : slots) {
        client.AddSlot(name, local_slot(dir, name, fill));
    }
    return client;
}

/// Which kind of store a parameterized test runs on.
enum class Backend { Memory, Disk };

inline std::string backend_name(const testing::TestParamInfo<Backend>& info) {
    return info.param == Backend::Memory ? "Memory" : "Disk";
}

/// Fixture base: `config()` is a fresh store of the parameter's kind (Disk in a temp dir).
class StoreTest : public testing::TestWithParam<Backend> {
protected:
    StoreTest()
        : config_(GetParam() == Backend::Memory ? cyborg::StorageConfig::Memory()
                                                 : cyborg::StorageConfig::Disk(dir_.path() / "root")) {}
    const cyborg::StorageConfig& config() const { return config_; }
    const fs::path& root_parent() const { return dir_.path(); }
    fs::path root() const { return dir_.path() / "root"; }

private:
    TempDir dir_;
    cyborg::StorageConfig config_;
};

}  // namespace cyb_test

namespace cyborg {
// Readable failures in gtest assertions.
inline void PrintTo(const KMSBlob& b, std::ostream* os) {
    *os << "KMSBlob{kms_name=\"" << b.kms_name << "\", provider=\"" << b.provider << "\", key_id=\""
        << b.key_id << "\", region=\"" << b.region << "\", wrapped_kek=<" << b.wrapped_kek.size()
        << " bytes>, version=" << b.version << ", created_at=" << b.created_at << "}";
}
}  // namespace cyborg
