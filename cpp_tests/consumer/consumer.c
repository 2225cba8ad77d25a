/* Consumer of the installed C header (shared or static library). */
#include <cyborgdb_core/index_kms.h>

#include <stdio.h>

int main(void) {
    cyb_storage_config *config = NULL;
    cyb_kms_blob *blob = NULL;
    if (cyb_storage_config_new_memory(&config) != CYB_RESULT_OK) return 1;
    if (cyb_kms_blob_new(&blob) != CYB_RESULT_OK) return 1;
    if (cyb_kms_blob_set_provider(blob, "none", 4) != CYB_RESULT_OK) return 1;
    if (cyb_index_kms_create(config, "idx", 3, blob) != CYB_RESULT_OK) return 1;
    cyb_result rc = cyb_index_kms_create(config, "idx", 3, blob);
    printf("consumer_c: second create: %s: %s\n", cyb_result_name(rc), cyb_last_error_message());
    cyb_kms_blob_free(blob);
    cyb_storage_config_free(config);
    return rc == CYB_RESULT_ALREADY_EXISTS ? 0 : 1;
}
