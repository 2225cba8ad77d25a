/* The parent project's program (configured, not built, by CheckSubproject.cmake). */
#include <cyborgdb_core/index_kms.h>

int main(void) { return cyb_version_number() == CYB_KMS_VERSION_NUMBER ? 0 : 1; }
