/* The log callback used from strict C11 (-Wall -Wextra -Wpedantic -Werror): events reach the
 * callback with their level, target and userdata; the threshold filters; strings are
 * NUL-terminated; NULL removes the callback. Exits 0 on success, 1 with a message on failure. */
#include "cyborgdb_core/index_kms.h"

#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",  \
                    __FILE__, __LINE__, #cond, cyb_last_error_message());  \
            return 1;                                                       \
        }                                                                   \
    } while (0)

/* What the callback saw. Only the test's main thread triggers events here (registry loads and
 * resolves run on the caller's thread), so no locking is needed. */
typedef struct {
    int events;
    int registry_events;
    int resolve_failures;
    int bad_strings;
    cyb_log_level worst_level_seen;
} log_seen;

static void record_event(void *userdata, const cyb_log_record *record) {
    log_seen *seen = (log_seen *)userdata;
    seen->events++;
    if (record->target[record->target_len] != '\0' || record->message[record->message_len] != '\0' ||
        strlen(record->target) != record->target_len || strlen(record->message) != record->message_len) {
        seen->bad_strings++;
    }
    if (record->level > seen->worst_level_seen) {
        seen->worst_level_seen = record->level;
    }
    if (record->level == CYB_LOG_LEVEL_INFO && strcmp(record->target, "cyborgdb_kms::kms") == 0 &&
        strstr(record->message, "KMS registry changed: 1 slots") != NULL) {
        seen->registry_events++;
    }
    if (record->level == CYB_LOG_LEVEL_WARN && strcmp(record->target, "cyborgdb_kms::resolver") == 0 &&
        strstr(record->message, "resolving a KEK failed (NotFound)") != NULL) {
        seen->resolve_failures++;
    }
}

static const char registry_yaml[] =
    "kms:\n  registry:\n    main: {provider: aws-kms, key_id: alias/c-log, region: us-east-1}\n";

int main(void) {
    log_seen seen = {0, 0, 0, 0, CYB_LOG_LEVEL_OFF};
    cyb_kms_client *client = NULL;
    CHECK(cyb_kms_client_new(NULL, &client) == CYB_RESULT_OK);
    cyb_kek_resolver *resolver = NULL;
    CHECK(cyb_kek_resolver_new(client, NULL, &resolver) == CYB_RESULT_OK);
    cyb_storage_config *store = NULL;
    CHECK(cyb_storage_config_new_memory(&store) == CYB_RESULT_OK);
    unsigned char kek[32];

    /* WARN: the failed resolve arrives, the INFO registry change does not. */
    CHECK(cyb_set_log_callback(CYB_LOG_LEVEL_WARN, record_event, &seen) == CYB_RESULT_OK);
    CHECK(cyb_kms_client_load_registry_yaml(client, registry_yaml, strlen(registry_yaml), NULL) ==
          CYB_RESULT_OK);
    CHECK(cyb_kek_resolve(resolver, store, "missing", 7, kek, sizeof kek) == CYB_RESULT_NOT_FOUND);
    CHECK(seen.resolve_failures == 1);
    CHECK(seen.registry_events == 0);
    CHECK(seen.worst_level_seen == CYB_LOG_LEVEL_WARN);

    /* INFO: the registry change arrives too. */
    CHECK(cyb_set_log_callback(CYB_LOG_LEVEL_INFO, record_event, &seen) == CYB_RESULT_OK);
    CHECK(cyb_kms_client_load_registry_yaml(client, registry_yaml, strlen(registry_yaml), NULL) ==
          CYB_RESULT_OK);
    CHECK(seen.registry_events == 1);

    /* NULL removes the callback: nothing more arrives. */
    CHECK(cyb_set_log_callback(CYB_LOG_LEVEL_TRACE, NULL, &seen) == CYB_RESULT_OK);
    int before = seen.events;
    CHECK(cyb_kms_client_load_registry_yaml(client, registry_yaml, strlen(registry_yaml), NULL) ==
          CYB_RESULT_OK);
    CHECK(cyb_kek_resolve(resolver, store, "missing", 7, kek, sizeof kek) == CYB_RESULT_NOT_FOUND);
    CHECK(seen.events == before);
    CHECK(seen.bad_strings == 0);

    /* A level that is not a cyb_log_level is refused and changes nothing. */
    CHECK(cyb_set_log_callback(6, record_event, &seen) == CYB_RESULT_INVALID_ARGUMENT);
    CHECK(strstr(cyb_last_error_message(), "level 6 is not a cyb_log_level") != NULL);
    CHECK(cyb_kms_client_load_registry_yaml(client, registry_yaml, strlen(registry_yaml), NULL) ==
          CYB_RESULT_OK);
    CHECK(seen.events == before);

    cyb_storage_config_free(store);
    cyb_kek_resolver_free(resolver);
    cyb_kms_client_free(client);
    return 0;
}
