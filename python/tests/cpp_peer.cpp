// The C++ side of python/tests/test_cpp_interop.py: index_kms.hpp as an engine uses it, in its own
// process. Usage:
//   cpp_peer resolve KEY_FILE DISK_ROOT INDEX     prints the index's KEK in hex (slot "dev": the
//                                                 development-only "local" provider, file:KEY_FILE)
//   cpp_peer get DISK_ROOT INDEX                           prints the envelope, one field a line
//   cpp_peer push DISK_ROOT INDEX KMS_NAME PROVIDER KEY_ID REGION WRAPPED_HEX VERSION CREATED_AT
// Errors: the exception's text on stderr, exit 1.
#include <cyborgdb_core/index_kms.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

std::string hex(const uint8_t* data, std::size_t len) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < len; ++i) {
        out += digits[data[i] >> 4];
        out += digits[data[i] & 15];
    }
    return out;
}

std::vector<uint8_t> unhex(const std::string& text) {
    std::vector<uint8_t> out;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
        out.push_back(static_cast<uint8_t>(std::stoi(text.substr(i, 2), nullptr, 16)));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.size() == 4 && args[0] == "resolve") {
            cyborg::KMSClientOptions options;
            options.allow_local_provider = true;
            cyborg::KMSClient kms(options);
            cyborg::KMSSlot slot;
            slot.provider = "local";
            slot.key_id = "file:" + args[1];
            kms.AddSlot("dev", slot);
            const cyborg::KEKResolver keys(kms);
            const cyborg::KEK kek = keys.Resolve(cyborg::StorageConfig::Disk(args[2]), args[3]);
            std::cout << hex(kek.data(), cyborg::KEK::kSize) << "\n";
            return 0;
        }
        if (args.size() == 3 && args[0] == "get") {
            const cyborg::KMSBlob blob =
                cyborg::GetIndexKMS(cyborg::StorageConfig::Disk(args[1]), args[2]);
            std::cout << blob.kms_name << "\n" << blob.provider << "\n" << blob.key_id << "\n"
                      << blob.region << "\n" << hex(blob.wrapped_kek.data(), blob.wrapped_kek.size())
                      << "\n" << blob.version << "\n" << blob.created_at << "\n";
            return 0;
        }
        if (args.size() == 10 && args[0] == "push") {
            cyborg::KMSBlob blob;
            blob.kms_name = args[3];
            blob.provider = args[4];
            blob.key_id = args[5];
            blob.region = args[6];
            blob.wrapped_kek = unhex(args[7]);
            blob.version = static_cast<uint32_t>(std::stoul(args[8]));
            blob.created_at = std::stoll(args[9]);
            cyborg::PushIndexKMS(cyborg::StorageConfig::Disk(args[1]), args[2], blob);
            return 0;
        }
        std::cerr << "usage: see the comment at the top of cpp_peer.cpp\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
