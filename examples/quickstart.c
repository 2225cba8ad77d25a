/* A KEK for index "orders" and its envelope on local disk, from C. Run it in an empty directory:
 *   export CYB_DEV_MASTER_KEY=$(openssl rand -hex 32)   # the "local" provider's master key
 * The "local" provider is for development only; production slots are "aws-kms" or "aws". */
#include <cyborgdb_core/index_kms.h>

#include <stdio.h>
#include <string.h>

#define S(text) text, strlen(text)

int main(void) {
    cyb_kms_client_options options = {0};
    options.allow_local_provider = true; /* development only: never in production */
    cyb_kms_slot slot = {0};
    slot.provider = (cyb_str){S("local")};
    slot.key_id = (cyb_str){S("env:CYB_DEV_MASTER_KEY")};
    cyb_kms_client *kms = NULL;
    cyb_kek_resolver *keys = NULL;
    cyb_storage_config *store = NULL;
    uint8_t kek[32], same[32];

    cyb_result rc = cyb_kms_client_new(&options, &kms);
    if (rc == CYB_RESULT_OK) rc = cyb_kms_client_add_slot(kms, S("dev"), &slot);
    if (rc == CYB_RESULT_OK) rc = cyb_kek_resolver_new(kms, NULL, &keys);
    if (rc == CYB_RESULT_OK) rc = cyb_storage_config_new_disk(S("example-data"), &store);
    /* create_index: a fresh random KEK wrapped through slot "dev", its envelope stored once */
    if (rc == CYB_RESULT_OK)
        rc = cyb_kek_create_index(keys, store, S("orders"), S("dev"), NULL, 0, kek, 32);
    /* every request on the index: the KEK from the cache, or one read + unwrap */
    if (rc == CYB_RESULT_OK) rc = cyb_kek_resolve(keys, store, S("orders"), same, 32);
    if (rc == CYB_RESULT_OK)
        printf("same KEK: %s\n", memcmp(kek, same, 32) == 0 ? "yes" : "no");
    else
        fprintf(stderr, "%s: %s\n", cyb_result_name(rc), cyb_last_error_message());
    cyb_storage_config_free(store);
    cyb_kek_resolver_free(keys);
    cyb_kms_client_free(kms);
    return rc == CYB_RESULT_OK ? 0 : 1;
}
