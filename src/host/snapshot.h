/* snapshot.h - snapshots (snapshot.c, snapfile.c): immutable guest states. */
#ifndef HL_SNAPSHOT_H
#define HL_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "functions.h"
#include "image.h"
#include "layout.h"
#include "vm.h"

/* An immutable guest state: memory image, vCPU state, layout, function tables. Shared by
 * the sandboxes made from it and by its child snapshots; freed with its last reference. */
struct hl_snapshot {
    int refs;
    uint64_t generation;
    bool has_cpu; /* false for the image a sandbox boots from (before initialisation) */
    hl_cpu_state cpu;
    hl_layout lo;
    hl_image img;
    uint8_t *view;      /* read-only mapping of the whole image */
    uint64_t slot0_sum; /* checksum of [0, lo.ro_end): code, PEB, page tables */
    int nguestfns;
    hl_guestfn *guestfns;
    int nhostfns;
    hl_hostfn *hostfns; /* names and signatures only */
    int nfiles;
    hl_file files[HL_MAX_FILES]; /* the files mapped when it was taken */
};

/* Creates a snapshot of image (img) (whose ownership moves to it) and computes its slot-0
 * checksum. */
hl_status hl_snapshot_from_image(hl_snapshot **out, const hl_layout *lo, hl_image *img, char *err);
/* The same with slot 0's checksum known (a snapshot taken from a sandbox has its parent's). */
hl_status hl_snapshot_from_image_sum(hl_snapshot **out, const hl_layout *lo, hl_image *img, uint64_t sum, char *err);
void hl_snapshot_ref(hl_snapshot *s);

#endif
