/* The C header compiled as strict C11 (-std=c11 -Wall -Wextra -Wpedantic -Werror) and used:
 * a small program over the C ABI. Exits 0 on success, 1 with a message on the first failure. */
/* POSIX for mkstemp/write/unlink in the KMS part; the header itself needs nothing beyond C11. */
#define _POSIX_C_SOURCE 200809L

#include "cyborgdb_core/index_kms.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(cyb_result) == sizeof(uint32_t), "cyb_result is a uint32_t in C");
_Static_assert(CYB_RESULT_NOT_FOUND == 200, "result numbers are stable");
_Static_assert(CYB_MAX_INDEX_NAME_LEN == 255, "limit macro");
_Static_assert(CYB_RESULT_DECRYPT_FAILED == 400, "KMS result numbers are stable");
/* CYB_KMS_VERSION_NUMBER works in #if, for compile-time version checks. */
#if CYB_KMS_VERSION_NUMBER != CYB_KMS_VERSION_MAJOR * 10000 + CYB_KMS_VERSION_MINOR * 100 + CYB_KMS_VERSION_PATCH
#error "CYB_KMS_VERSION_NUMBER is not major * 10000 + minor * 100 + patch"
#endif

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",  \
                    __FILE__, __LINE__, #cond, cyb_last_error_message());  \
            return 1;                                                       \
        }                                                                   \
    } while (0)

static int str_eq(cyb_str s, const char *expected) {
    return s.len == strlen(expected) && memcmp(s.data, expected, s.len) == 0;
}

int main(void) {
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", CYB_KMS_VERSION_MAJOR, CYB_KMS_VERSION_MINOR,
             CYB_KMS_VERSION_PATCH);
    CHECK(strcmp(cyb_version(), version) == 0);
    CHECK(cyb_version_number() == CYB_KMS_VERSION_NUMBER);

    cyb_storage_config *config = NULL;
    CHECK(cyb_storage_config_new_memory(&config) == CYB_RESULT_OK);

    cyb_kms_blob *blob = NULL;
    CHECK(cyb_kms_blob_new(&blob) == CYB_RESULT_OK);
    static const uint8_t kek[4] = {1, 2, 3, 4};
    CHECK(cyb_kms_blob_set_kms_name(blob, "prod-kms", 8) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_provider(blob, "aws-kms", 7) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_key_id(blob, "alias/x", 7) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_region(blob, "us-east-1", 9) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_wrapped_kek(blob, kek, sizeof kek) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_version(blob, 7) == CYB_RESULT_OK);
    CHECK(cyb_kms_blob_set_created_at(blob, 1700000000) == CYB_RESULT_OK);

    CHECK(cyb_index_kms_create(config, "c_index", 7, blob) == CYB_RESULT_OK);
    cyb_result rc = cyb_index_kms_create(config, "c_index", 7, blob);
    CHECK(rc == CYB_RESULT_ALREADY_EXISTS);
    CHECK(strcmp(cyb_result_name(rc), "ALREADY_EXISTS") == 0);
    CHECK(strstr(cyb_last_error_message(), "c_index") != NULL);

    cyb_kms_blob *got = NULL;
    CHECK(cyb_index_kms_get(config, "c_index", 7, &got) == CYB_RESULT_OK);
    CHECK(str_eq(cyb_kms_blob_provider(got), "aws-kms"));
    CHECK(str_eq(cyb_kms_blob_kms_name(got), "prod-kms"));
    CHECK(str_eq(cyb_kms_blob_key_id(got), "alias/x"));
    CHECK(str_eq(cyb_kms_blob_region(got), "us-east-1"));
    cyb_bytes wrapped = cyb_kms_blob_wrapped_kek(got);
    CHECK(wrapped.len == sizeof kek && memcmp(wrapped.data, kek, sizeof kek) == 0);
    CHECK(cyb_kms_blob_version(got) == 7);
    CHECK(cyb_kms_blob_created_at(got) == 1700000000);
    cyb_kms_blob_free(got);

    CHECK(cyb_index_kms_push(config, "c_index", 7, blob) == CYB_RESULT_OK);
    CHECK(cyb_index_kms_delete(config, "c_index", 7) == CYB_RESULT_OK);
    got = NULL;
    CHECK(cyb_index_kms_get(config, "c_index", 7, &got) == CYB_RESULT_NOT_FOUND);
    CHECK(got == NULL);

    cyb_kms_blob_free(blob);
    cyb_storage_config_free(config);
    cyb_kms_blob_free(NULL);
    cyb_storage_config_free(NULL);

    /* KMS client from C: zero-initialized options are the defaults; a local (development-only)
     * slot wraps and unwraps without any network. */
    char key_path[] = "/tmp/cyb-c-header-test-XXXXXX";
    int fd = mkstemp(key_path);
    CHECK(fd >= 0);
    static const uint8_t master_key[32] = {42};
    CHECK(write(fd, master_key, sizeof master_key) == (ssize_t)sizeof master_key);
    close(fd);
    char key_id[64];
    snprintf(key_id, sizeof key_id, "file:%s", key_path);

    cyb_kms_client_options options = {0};
    options.allow_local_provider = true;
    cyb_kms_client *client = NULL;
    CHECK(cyb_kms_client_new(&options, &client) == CYB_RESULT_OK);
    cyb_kms_slot slot = {0};
    slot.provider.data = "local";
    slot.provider.len = 5;
    slot.key_id.data = key_id;
    slot.key_id.len = strlen(key_id);
    CHECK(cyb_kms_client_add_slot(client, "dev", 3, &slot) == CYB_RESULT_OK);

    uint8_t created[32], unwrapped[32];
    cyb_kms_blob *envelope = NULL;
    CHECK(cyb_kms_wrap_new_kek(client, "c_index", 7, "dev", 3, &envelope, created, sizeof created) ==
          CYB_RESULT_OK);
    CHECK(str_eq(cyb_kms_blob_provider(envelope), "local"));
    CHECK(cyb_kms_unwrap_kek(client, "c_index", 7, envelope, unwrapped, sizeof unwrapped) ==
          CYB_RESULT_OK);
    CHECK(memcmp(created, unwrapped, 32) == 0);
    memset(unwrapped, 0, sizeof unwrapped);
    rc = cyb_kms_unwrap_kek(client, "other", 5, envelope, unwrapped, sizeof unwrapped);
    CHECK(rc == CYB_RESULT_DECRYPT_FAILED);
    for (size_t i = 0; i < sizeof unwrapped; ++i) {
        CHECK(unwrapped[i] == 0); /* untouched on error */
    }
    memset(created, 0, sizeof created);
    cyb_kms_blob_free(envelope);

    /* The resolver from C: create a KMS-backed index, resolve it twice (one unwrap, one hit). */
    cyb_kek_cache_options cache_options = {0};
    cache_options.ttl_ms = 60000;
    cyb_kek_resolver *resolver = NULL;
    CHECK(cyb_kek_resolver_new(client, &cache_options, &resolver) == CYB_RESULT_OK);
    cyb_storage_config *memory = NULL;
    CHECK(cyb_storage_config_new_memory(&memory) == CYB_RESULT_OK);
    CHECK(cyb_kek_create_index(resolver, memory, "r", 1, "dev", 3, NULL, 0, created,
                               sizeof created) == CYB_RESULT_OK);
    for (int i = 0; i < 2; ++i) {
        CHECK(cyb_kek_resolve(resolver, memory, "r", 1, unwrapped, sizeof unwrapped) ==
              CYB_RESULT_OK);
        CHECK(memcmp(created, unwrapped, 32) == 0);
    }
    cyb_kek_cache_stats stats = {0};
    CHECK(cyb_kek_resolver_stats(resolver, &stats) == CYB_RESULT_OK);
    CHECK(stats.hits == 1 && stats.misses == 1 && stats.provider_calls == 2 && stats.entries == 1);
    bool removed = false;
    CHECK(cyb_kek_invalidate(resolver, memory, "r", 1, &removed) == CYB_RESULT_OK && removed);
    memset(created, 0, sizeof created);
    memset(unwrapped, 0, sizeof unwrapped);
    cyb_kms_failover_stats failover_stats = {1, 1};
    CHECK(cyb_kms_client_stats(client, &failover_stats) == CYB_RESULT_OK);
    CHECK(failover_stats.region_failovers == 0 && failover_stats.replica_unwraps == 0);
    CHECK(cyb_kms_client_stats(client, NULL) == CYB_RESULT_NULL_PARAMETER);
    cyb_kek_resolver_free(resolver);
    cyb_storage_config_free(memory);
    cyb_kms_client_free(client);
    cyb_kms_client_free(NULL);
    unlink(key_path);
    puts("c_header_test: ok");
    return 0;
}
