/* elfload.h - the ELF loader (elf.c): validates a guest ELF and copies its segments. */
#ifndef HL_ELFLOAD_H
#define HL_ELFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "base.h"
#include "error.h"

#define HL_ELF_MAX_SEGS 16
#define HL_ELF_MAX_SPAN (512u << 20) /* bytes from HL_IMAGE_BASE to the image end */

enum { HL_SEG_R = 4, HL_SEG_W = 2, HL_SEG_X = 1 }; /* = ELF p_flags bits */

typedef struct hl_segment {
    uint64_t vaddr, memsz, offset, filesz;
    uint32_t flags;
} hl_segment;

typedef struct hl_elf {
    uint64_t entry;
    uint64_t end;    /* page-aligned end of the highest segment */
    uint64_t ro_end; /* page-aligned start of the first writable segment (or end) */
    int nseg;
    hl_segment seg[HL_ELF_MAX_SEGS];
    uint32_t abi_version;
    uint64_t stack_default, heap_default; /* HL_NOTE_TYPE_DEFAULTS, checked; 0: not declared */
} hl_elf;

/* Validates the ELF in data[0, len) (hostile input) and describes its loadable image and the
 * stack and heap sizes it declares (within HL_SCRATCH_MIN..MAX and HL_HEAP_MIN..MAX). */
hl_status hl_elf_parse(const uint8_t *data, size_t len, hl_elf *out, char *err);
/* Copies the segments into mem, which holds guest-physical [0, mem_len). */
void hl_elf_load(const hl_elf *elf, const uint8_t *data, uint8_t *mem, size_t mem_len);

#endif
