/* Giving memory back to the system after a burst (glibc malloc). */
#ifndef TBGW_UTIL_HEAP_H
#define TBGW_UTIL_HEAP_H
#include <stddef.h>

/* When the malloc arenas hold at least min_free bytes of free memory, returns their free pages to
 * the system (malloc_trim: the top of every arena and whole free pages inside it). Returns the free
 * bytes the arenas held before (0 when nothing was done). Costs a walk of the arenas' bins. */
size_t tbgw_heap_trim(size_t min_free);
#endif
