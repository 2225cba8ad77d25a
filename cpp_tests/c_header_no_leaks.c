/* The C header takes no name from the includer: a program may define, before and after including
 * it, every name earlier headers leaked (DEFAULT_MAX_ENTRIES, FORMAT_V1, Kek_LEN,
 * MAX_WARM_UP_PARALLELISM, MAX_S3_PREFIX_LEN and the names it expanded to, the type Kek, the old
 * include guard). Compiled with -Wall -Wextra -Wpedantic -Werror: a macro the header redefined
 * would be an error (redefinition, or a declaration below expanded into nonsense), and so would a
 * conflicting `Kek`. Building this file is the test; running it only checks the values stayed ours. */

/* Before: as macros with other values, and as a type. */
#define DEFAULT_MAX_ENTRIES "mine"
#define FORMAT_V1 "mine"
#define MAX_OBJECT_KEY_LEN 7
#define MAX_STORAGE_KEY_LEN 3
typedef double Kek;

#include "cyborgdb_core/index_kms.h"

#include <stdio.h>
#include <string.h>

#ifdef CYBORGDB_CORE_INDEX_KMS_H
#error "the old include guard name is defined by the header"
#endif

/* After: as ordinary identifiers (a macro of the same name would turn these into syntax errors). */
static const int Kek_LEN = 5;
enum { MAX_WARM_UP_PARALLELISM = 3 };
static int MAX_S3_PREFIX_LEN(void) { return MAX_OBJECT_KEY_LEN - MAX_STORAGE_KEY_LEN; }
struct Kek {
    Kek value;
};

int main(void) {
    struct Kek kek = {2.5};
    if (strcmp(DEFAULT_MAX_ENTRIES, "mine") != 0 || strcmp(FORMAT_V1, "mine") != 0 || Kek_LEN != 5 ||
        MAX_WARM_UP_PARALLELISM != 3 || MAX_S3_PREFIX_LEN() != 4 || kek.value != 2.5 ||
        CYB_KEK_LEN != 32) {
        fputs("c_header_no_leaks: a name defined here changed meaning\n", stderr);
        return 1;
    }
    puts("c_header_no_leaks: ok");
    return 0;
}
