#include "util/heap.h"

#include <malloc.h>

size_t tbgw_heap_trim(size_t min_free) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks < min_free) return 0;
    malloc_trim(0);
    return mi.fordblks;
#else
    (void)min_free;
    return 0;
#endif
}
