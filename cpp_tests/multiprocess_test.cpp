// A multi-process create race on one Disk store: children (race_child) are spawned with
// posix_spawn, each reports "ready" on a pipe and blocks on another; the parent closes that pipe
// to release them all at once. Exactly one must win; the others get ALREADY_EXISTS.
#include "cyborgdb_core/index_kms.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "test_support.hpp"

#ifndef RACE_CHILD_PATH
#error "RACE_CHILD_PATH must be defined (path of the race_child executable)"
#endif

extern char** environ;

using namespace cyb_test;

namespace {

constexpr int kChildren = 8;

struct Pipe {
    int read = -1;
    int write = -1;
    Pipe() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        read = fds[0];
        write = fds[1];
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    void close_read() {
        if (read >= 0) ::close(read);
        read = -1;
    }
    void close_write() {
        if (write >= 0) ::close(write);
        write = -1;
    }
};

/// Spawns race_child with stdin = `release.read` and stdout = `ready.write`. All pipe ends are
/// O_CLOEXEC, so a child holds only the two ends it is given (dup2 clears the flag on 0 and 1):
/// the release pipe reaches EOF exactly when the parent closes its write end.
pid_t spawn_child(const Pipe& release, const Pipe& ready, const std::vector<std::string>& args) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, release.read, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, ready.write, STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn");
    return pid;
}

int wait_exit_code(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
    }
    if (!WIFEXITED(status)) return 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

}  // namespace

TEST(MultiProcess, CreateRaceOnDiskHasExactlyOneWinner) {
    TempDir dir;
    const fs::path root = dir.path() / "root";
    const auto config = cyborg::StorageConfig::Disk(root);
    constexpr int kRounds = 4;
    for (int round = 0; round < kRounds; ++round) {
        const std::string name = "raced-" + std::to_string(round);
        Pipe release;
        Pipe ready;
        std::vector<pid_t> pids;
        for (int i = 0; i < kChildren; ++i) {
            pids.push_back(spawn_child(release, ready,
                                       {RACE_CHILD_PATH, root.string(), name, std::to_string(i)}));
        }
        ready.close_write();   // so a crashed child shows up as EOF instead of a hang
        release.close_read();  // only the children read it
        int ready_count = 0;
        char buf[kChildren];
        while (ready_count < kChildren) {
            const ssize_t n = ::read(ready.read, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            ready_count += static_cast<int>(n);
        }
        EXPECT_EQ(ready_count, kChildren) << "a child died before it was ready";
        release.close_write();  // go: every child sees EOF at once

        int winners = 0;
        int losers = 0;
        int winner = -1;
        for (int i = 0; i < kChildren; ++i) {
            const int code = wait_exit_code(pids[i]);
            if (code == 0) {
                ++winners;
                winner = i;
            } else if (code == 1) {
                ++losers;
            } else {
                ADD_FAILURE() << "child " << i << " exited with " << code;
            }
        }
        ASSERT_EQ(winners, 1) << name;
        EXPECT_EQ(losers, kChildren - 1) << name;
        const cyborg::KMSBlob got = cyborg::GetIndexKMS(config, name);
        EXPECT_EQ(got.key_id, "child-" + std::to_string(winner));
        EXPECT_EQ(got.version, static_cast<uint32_t>(winner));
        EXPECT_EQ(got.wrapped_kek, std::vector<uint8_t>(48, static_cast<uint8_t>(winner)));
    }
    // Only the envelopes are left: the losers' temp files are gone.
    std::set<std::string> expected;
    for (int round = 0; round < kRounds; ++round) expected.insert("raced-" + std::to_string(round) + ".kms");
    EXPECT_EQ(list_dir(root), expected);
}
