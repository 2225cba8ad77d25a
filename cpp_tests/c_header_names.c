/* Uses every macro, type and enumerator of the C header (check_header_names.py fails if a new one
 * is missing here), compiled as C11 and as C99 with -Wall -Wextra -Wpedantic -Werror. Checks the
 * documented values at compile time and, at run time, that the limit macros are the limits the
 * library applies. Exits 0 on success, 1 with a message on the first failure. Needs no network. */
#include "cyborgdb_core/index_kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CYB_API
#error "the header defines its export macro CYB_API"
#endif

/* A C99 static assertion (_Static_assert is C11). */
#define NAMES_CAT2(a, b) a##b
#define NAMES_CAT(a, b) NAMES_CAT2(a, b)
#define NAMES_STATIC_ASSERT(cond) typedef char NAMES_CAT(names_static_assert_, __LINE__)[(cond) ? 1 : -1]

/* Values the documentation states. */
NAMES_STATIC_ASSERT(CYB_KMS_VERSION_MAJOR >= 0 && CYB_KMS_VERSION_MINOR >= 0 && CYB_KMS_VERSION_PATCH >= 0);
NAMES_STATIC_ASSERT(CYB_KMS_VERSION_NUMBER == CYB_KMS_VERSION_MAJOR * 10000 + CYB_KMS_VERSION_MINOR * 100 + CYB_KMS_VERSION_PATCH);
NAMES_STATIC_ASSERT(CYB_MAX_INDEX_NAME_LEN == 255);
NAMES_STATIC_ASSERT(CYB_MAX_STRING_FIELD_LEN == 2048);
NAMES_STATIC_ASSERT(CYB_MAX_WRAPPED_KEK_LEN == 8192);
NAMES_STATIC_ASSERT(CYB_KEK_LEN == 32);
NAMES_STATIC_ASSERT(CYB_KEK_CACHE_DISABLED == -1);
NAMES_STATIC_ASSERT(CYB_KEK_REVALIDATE_OFF == -1);
NAMES_STATIC_ASSERT(CYB_KEK_CACHE_DEFAULT_MAX_ENTRIES == 100000);
NAMES_STATIC_ASSERT(CYB_MAX_WARM_UP_PARALLELISM == 256);
NAMES_STATIC_ASSERT(CYB_MAX_S3_PREFIX_LEN == 820);
NAMES_STATIC_ASSERT(CYB_MAX_ATTEMPTS == 10);
NAMES_STATIC_ASSERT(CYB_RETRY_MODE_DEFAULT == 0 && CYB_RETRY_MODE_STANDARD == 1 &&
                    CYB_RETRY_MODE_ADAPTIVE == 2);
NAMES_STATIC_ASSERT(CYB_S3_SSE_NONE == 0 && CYB_S3_SSE_S3 == 1 && CYB_S3_SSE_KMS == 2);
NAMES_STATIC_ASSERT(sizeof(cyb_result) == 4);
NAMES_STATIC_ASSERT(sizeof(cyb_drift_status) == 4);
NAMES_STATIC_ASSERT(CYB_DRIFT_IN_SYNC == 0 && CYB_DRIFT_DRIFTED == 1 && CYB_DRIFT_REWRAPPED == 2 &&
                    CYB_DRIFT_NOT_WRAPPED == 3 && CYB_DRIFT_FAILED == 4);
NAMES_STATIC_ASSERT(CYB_AUDIT_BREAK_NONE == 0 && CYB_AUDIT_BREAK_CHANGED == 1 &&
                    CYB_AUDIT_BREAK_REMOVED == 2 && CYB_AUDIT_BREAK_REORDERED == 3 &&
                    CYB_AUDIT_BREAK_TRUNCATED == 4 && CYB_AUDIT_BREAK_FORK == 5);
NAMES_STATIC_ASSERT(CYB_AUDIT_MESSAGE_LEN == 512);
NAMES_STATIC_ASSERT(sizeof(cyb_rotation_state) == 4);
NAMES_STATIC_ASSERT(CYB_ROTATION_PENDING == 0 && CYB_ROTATION_COMMITTED == 1 &&
                    CYB_ROTATION_STALE == 2);
NAMES_STATIC_ASSERT(sizeof(cyb_log_level) == 4);
NAMES_STATIC_ASSERT(CYB_LOG_LEVEL_OFF == 0 && CYB_LOG_LEVEL_ERROR == 1 && CYB_LOG_LEVEL_WARN == 2 &&
                    CYB_LOG_LEVEL_INFO == 3 && CYB_LOG_LEVEL_DEBUG == 4 && CYB_LOG_LEVEL_TRACE == 5);

/* Every type, by value or (opaque handles) by pointer. */
struct every_type {
    cyb_result result;
    cyb_drift_status drift_status;
    cyb_str str;
    cyb_bytes bytes;
    cyb_kek_cache_options cache_options;
    cyb_drift_entry drift_entry;
    cyb_kek_cache_stats cache_stats;
    cyb_kms_failover_stats failover_stats;
    cyb_aws_timeouts timeouts;
    cyb_kms_client_options client_options;
    cyb_kms_region_endpoint region_endpoint;
    cyb_kms_slot slot;
    cyb_s3_credentials s3_credentials;
    cyb_s3_options s3_options;
    cyb_audit_options audit_options;
    cyb_audit_report audit_report;
    cyb_drift_report *drift_report;
    cyb_kek_rotation *rotation;
    cyb_rotation_state rotation_state;
    cyb_kek_rotate_callback rotate_callback;
    cyb_kek_resolver *resolver;
    cyb_kms_blob *blob;
    cyb_kms_client *client;
    cyb_storage_config *storage_config;
    cyb_log_level log_level;
    cyb_log_record log_record;
    cyb_log_callback log_callback;
};

struct result_name {
    cyb_result code;
    const char *name;
};

/* Every result code with the name cyb_result_name gives it. */
static const struct result_name RESULT_NAMES[] = {
    {CYB_RESULT_OK, "OK"},
    {CYB_RESULT_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {CYB_RESULT_NULL_PARAMETER, "NULL_PARAMETER"},
    {CYB_RESULT_CALLBACK_FAILED, "CALLBACK_FAILED"},
    {CYB_RESULT_NOT_FOUND, "NOT_FOUND"},
    {CYB_RESULT_ALREADY_EXISTS, "ALREADY_EXISTS"},
    {CYB_RESULT_CORRUPT, "CORRUPT"},
    {CYB_RESULT_CONFLICT, "CONFLICT"},
    {CYB_RESULT_IO, "IO"},
    {CYB_RESULT_STORAGE_UNAVAILABLE, "STORAGE_UNAVAILABLE"},
    {CYB_RESULT_STORAGE_ACCESS_DENIED, "STORAGE_ACCESS_DENIED"},
    {CYB_RESULT_DECRYPT_FAILED, "DECRYPT_FAILED"},
    {CYB_RESULT_KMS_ACCESS_DENIED, "KMS_ACCESS_DENIED"},
    {CYB_RESULT_KMS_KEY_NOT_FOUND, "KMS_KEY_NOT_FOUND"},
    {CYB_RESULT_KMS_KEY_DISABLED, "KMS_KEY_DISABLED"},
    {CYB_RESULT_KMS_THROTTLED, "KMS_THROTTLED"},
    {CYB_RESULT_KMS_UNAVAILABLE, "KMS_UNAVAILABLE"},
    {CYB_RESULT_KMS_BAD_RESPONSE, "KMS_BAD_RESPONSE"},
    {CYB_RESULT_WRAP_KEY_SIZE, "WRAP_KEY_SIZE"},
    {CYB_RESULT_UNKNOWN_SLOT, "UNKNOWN_SLOT"},
    {CYB_RESULT_INVALID_CONFIG, "INVALID_CONFIG"},
    {CYB_RESULT_KEK_NOT_WRAPPED, "KEK_NOT_WRAPPED"},
    {CYB_RESULT_UNTRUSTED_KEY, "UNTRUSTED_KEY"},
    {CYB_RESULT_PANIC, "PANIC"},
    {CYB_RESULT_FORKED_PROCESS, "FORKED_PROCESS"},
};

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, cyb_last_error_message());                      \
            return 1;                                                                \
        }                                                                            \
    } while (0)

/* cyb_storage_config_new_s3 with a prefix of `len` bytes ending in '/'. */
static cyb_result s3_store_with_prefix(size_t len) {
    char *prefix = malloc(len);
    cyb_s3_options options;
    cyb_storage_config *config = NULL;
    cyb_result rc;
    if (prefix == NULL) {
        return CYB_RESULT_PANIC;
    }
    memset(prefix, 'p', len);
    prefix[len - 1] = '/';
    memset(&options, 0, sizeof options);
    options.prefix.data = prefix;
    options.prefix.len = len;
    rc = cyb_storage_config_new_s3("bucket", 6, &options, &config);
    cyb_storage_config_free(config);
    free(prefix);
    return rc;
}

int main(void) {
    struct every_type all;
    char version[32];
    size_t i;
    cyb_kms_client *client = NULL;
    cyb_kek_resolver *resolver = NULL;
    cyb_storage_config *memory = NULL;
    cyb_kek_cache_options cache_options;
    cyb_kek_cache_stats stats;

    memset(&all, 0, sizeof all);
    CHECK(all.result == CYB_RESULT_OK && all.drift_status == CYB_DRIFT_IN_SYNC);

    snprintf(version, sizeof version, "%d.%d.%d", CYB_KMS_VERSION_MAJOR, CYB_KMS_VERSION_MINOR,
             CYB_KMS_VERSION_PATCH);
    CHECK(strcmp(cyb_version(), version) == 0);
    CHECK(cyb_version_number() == CYB_KMS_VERSION_NUMBER);

    for (i = 0; i < sizeof RESULT_NAMES / sizeof RESULT_NAMES[0]; ++i) {
        CHECK(strcmp(cyb_result_name(RESULT_NAMES[i].code), RESULT_NAMES[i].name) == 0);
    }

    /* The limit macros are the limits the library applies. */
    CHECK(s3_store_with_prefix(CYB_MAX_S3_PREFIX_LEN) == CYB_RESULT_OK);
    CHECK(s3_store_with_prefix(CYB_MAX_S3_PREFIX_LEN + 1) == CYB_RESULT_INVALID_ARGUMENT);

    {
        /* CYB_MAX_ATTEMPTS is the attempts limit; the enumerated option values are accepted. */
        cyb_kms_client_options client_options;
        cyb_s3_options s3_options;
        cyb_kms_client *limited = NULL;
        cyb_storage_config *s3 = NULL;
        memset(&client_options, 0, sizeof client_options);
        client_options.timeouts.max_attempts = CYB_MAX_ATTEMPTS;
        client_options.retry_mode = CYB_RETRY_MODE_ADAPTIVE;
        CHECK(cyb_kms_client_new(&client_options, &limited) == CYB_RESULT_OK);
        cyb_kms_client_free(limited);
        limited = NULL;
        client_options.timeouts.max_attempts = CYB_MAX_ATTEMPTS + 1;
        client_options.retry_mode = CYB_RETRY_MODE_STANDARD;
        CHECK(cyb_kms_client_new(&client_options, &limited) == CYB_RESULT_INVALID_CONFIG);
        client_options.timeouts.max_attempts = 0;
        client_options.retry_mode = CYB_RETRY_MODE_ADAPTIVE + 1;
        CHECK(cyb_kms_client_new(&client_options, &limited) == CYB_RESULT_INVALID_ARGUMENT);
        {
            /* A KMS endpoint per region: accepted once, a region given twice is refused. */
            cyb_kms_region_endpoint region_endpoints[2];
            region_endpoints[0].region.data = "us-west-2";
            region_endpoints[0].region.len = 9;
            region_endpoints[0].url.data = "http://127.0.0.1:9";
            region_endpoints[0].url.len = 18;
            region_endpoints[1] = region_endpoints[0];
            client_options.retry_mode = CYB_RETRY_MODE_DEFAULT;
            client_options.kms_region_endpoint_urls = region_endpoints;
            client_options.kms_region_endpoint_url_count = 1;
            CHECK(cyb_kms_client_new(&client_options, &limited) == CYB_RESULT_OK);
            cyb_kms_client_free(limited);
            limited = NULL;
            client_options.kms_region_endpoint_url_count = 2;
            CHECK(cyb_kms_client_new(&client_options, &limited) == CYB_RESULT_INVALID_ARGUMENT);
            client_options.kms_region_endpoint_urls = NULL;
            client_options.kms_region_endpoint_url_count = 0;
        }
        memset(&s3_options, 0, sizeof s3_options);
        s3_options.server_side_encryption = CYB_S3_SSE_S3;
        s3_options.retry_mode = CYB_RETRY_MODE_DEFAULT;
        CHECK(cyb_storage_config_new_s3("bucket", 6, &s3_options, &s3) == CYB_RESULT_OK);
        cyb_storage_config_free(s3);
        s3 = NULL;
        s3_options.server_side_encryption = CYB_S3_SSE_KMS + 1;
        CHECK(cyb_storage_config_new_s3("bucket", 6, &s3_options, &s3) == CYB_RESULT_INVALID_ARGUMENT);
        s3_options.server_side_encryption = CYB_S3_SSE_NONE;
        s3_options.timeouts.max_attempts = CYB_MAX_ATTEMPTS + 1;
        CHECK(cyb_storage_config_new_s3("bucket", 6, &s3_options, &s3) == CYB_RESULT_INVALID_ARGUMENT);
    }

    CHECK(cyb_kms_client_new(NULL, &client) == CYB_RESULT_OK);
    memset(&cache_options, 0, sizeof cache_options);
    cache_options.ttl_ms = CYB_KEK_CACHE_DISABLED;
    cache_options.max_entries = CYB_KEK_CACHE_DEFAULT_MAX_ENTRIES;
    cache_options.revalidate_ms = CYB_KEK_REVALIDATE_OFF;
    cache_options.stale_if_error = CYB_KEK_STALE_IF_ERROR_ON;
    CHECK(cyb_kek_resolver_new(client, &cache_options, &resolver) == CYB_RESULT_OK);
    cyb_kek_resolver_free(resolver);
    resolver = NULL;
    cache_options.stale_if_error = CYB_KEK_STALE_IF_ERROR_OFF;
    CHECK(cyb_kek_resolver_new(client, &cache_options, &resolver) == CYB_RESULT_OK);
    CHECK(cyb_storage_config_new_memory(&memory) == CYB_RESULT_OK);
    CHECK(cyb_kek_warm_up(resolver, memory, NULL, 0, CYB_MAX_WARM_UP_PARALLELISM, NULL) ==
          CYB_RESULT_OK);
    CHECK(cyb_kek_warm_up(resolver, memory, NULL, 0, CYB_MAX_WARM_UP_PARALLELISM + 1, NULL) ==
          CYB_RESULT_INVALID_ARGUMENT);
    {
        /* A caller-supplied KEK must be exactly CYB_KEK_LEN bytes. */
        uint8_t key[CYB_KEK_LEN + 1], out[CYB_KEK_LEN];
        memset(key, 7, sizeof key);
        CHECK(cyb_kek_create_index(resolver, memory, "k", 1, NULL, 0, key, CYB_KEK_LEN + 1, out,
                                   CYB_KEK_LEN) == CYB_RESULT_INVALID_ARGUMENT);
        CHECK(cyb_kek_create_index(resolver, memory, "k", 1, NULL, 0, key, CYB_KEK_LEN, out,
                                   CYB_KEK_LEN) == CYB_RESULT_OK);
        CHECK(memcmp(key, out, CYB_KEK_LEN) == 0);
    }
    {
        /* The custody audit: one record per change on an audited handle; an intact chain. */
        cyb_audit_options audit_options;
        cyb_audit_report report;
        cyb_storage_config *audited = NULL;
        uint8_t key[CYB_KEK_LEN], out[CYB_KEK_LEN];
        memset(&audit_options, 0, sizeof audit_options);
        audit_options.principal.data = "names-test";
        audit_options.principal.len = 10;
        CHECK(cyb_storage_config_with_audit(memory, &audit_options, &audited) == CYB_RESULT_OK);
        CHECK(cyb_kek_resolver_set_audit(resolver, &audit_options) == CYB_RESULT_OK);
        CHECK(cyb_kek_resolver_set_audit(resolver, NULL) == CYB_RESULT_OK);
        audit_options.unwrap_counts_seconds = 0; /* off; 1..86400: per-index unwrap counts */
        CHECK(cyb_kek_resolver_flush_unwrap_counts(resolver) == CYB_RESULT_OK);
        CHECK(cyb_kek_resolver_flush_unwrap_counts(NULL) == CYB_RESULT_NULL_PARAMETER);
        memset(key, 9, sizeof key);
        CHECK(cyb_kek_create_index(resolver, audited, "a", 1, NULL, 0, key, CYB_KEK_LEN, out,
                                   CYB_KEK_LEN) == CYB_RESULT_OK);
        memset(&report, 0xff, sizeof report);
        CHECK(cyb_verify_audit(memory, &report) == CYB_RESULT_OK);
        CHECK(report.records == 1 && report.has_head && report.head_seq == 0);
        CHECK(report.break_kind == CYB_AUDIT_BREAK_NONE && report.break_seq == 0);
        CHECK(report.break_message[0] == '\0');
        cyb_storage_config_free(audited);
    }
    memset(&stats, 0, sizeof stats);
    CHECK(cyb_kek_resolver_stats(resolver, &stats) == CYB_RESULT_OK);
    CHECK(stats.entries == 0); /* CYB_KEK_CACHE_DISABLED: nothing cached */

    cyb_kek_resolver_free(resolver);
    cyb_storage_config_free(memory);
    cyb_kms_client_free(client);
    puts("c_header_names: ok");
    return 0;
}
