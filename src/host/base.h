/* base.h - what every host module shares: guest addresses, the page size, alignment. */
#ifndef HL_BASE_H
#define HL_BASE_H

#include <stdint.h>

#include "hyperlight.h"

#define HL_PAGE HL_PAGE_SIZE
/* clang-format off: it would read (a) as a cast */
#define HL_ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))
#define HL_ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a)-1))
/* clang-format on */

typedef uint64_t hl_gpa; /* guest-physical address (= guest-virtual: identity map) */

#endif
