// Helper process of the multi-process create race (multiprocess_test.cpp).
//
// Usage: race_child <disk root> <index name> <id>
//   1. opens the Disk store and prepares its envelope (key_id "child-<id>");
//   2. writes one byte to stdout: "ready";
//   3. blocks reading stdin until EOF — the parent closes the pipe to release every child at once;
//   4. calls CreateIndexKMS and reports through its exit code:
//        0 created, 1 ALREADY_EXISTS, 2 any other error (printed on stderr), 3 usage/pipe error.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "cyborgdb_core/index_kms.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: race_child <root> <index> <id>\n");
        return 3;
    }
    try {
        const cyborg::StorageConfig config = cyborg::StorageConfig::Disk(argv[1]);
        const std::string id = argv[3];
        cyborg::KMSBlob blob;
        blob.kms_name = "race";
        blob.provider = "aws-kms";
        blob.key_id = "child-" + id;
        blob.region = "us-east-1";
        blob.wrapped_kek.assign(48, static_cast<unsigned char>(std::stoi(id)));
        blob.version = static_cast<uint32_t>(std::stoul(id));

        const char ready = 'r';
        if (write(STDOUT_FILENO, &ready, 1) != 1) {
            std::perror("race_child: write ready");
            return 3;
        }
        char buf[16];
        for (;;) {  // until EOF: the parent releases all children by closing the pipe
            const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n == 0) break;
            if (n < 0 && errno != EINTR) {
                std::perror("race_child: read release");
                return 3;
            }
        }

        try {
            cyborg::CreateIndexKMS(config, argv[2], blob);
            return 0;
        } catch (const cyborg::AlreadyExistsError&) {
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "race_child %s: %s\n", argv[3], e.what());
        return 2;
    }
}
