/* The C header compiled as strict C11 (-std=c11 -Wall -Wextra -Wpedantic -Werror) and used:
 * a small program over the C ABI. Exits 0 on success, 1 with a message on the first failure. */
#include "cyborgdb_core/index_kms.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(cyb_result) == sizeof(uint32_t), "cyb_result is a uint32_t in C");
_Static_assert(CYB_RESULT_NOT_FOUND == 200, "result numbers are stable");
_Static_assert(CYB_MAX_INDEX_NAME_LEN == 255, "limit macro");

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
    puts("c_header_test: ok");
    return 0;
}
