// Declarations only: Ponder resolves the OpenBLAS entry points with dlsym after choosing a kernel,
// so this module deliberately has no `link` line.
#include <cblas.h>
