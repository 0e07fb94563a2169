/* internal.h - every host module's header, for the tests and the benchmark's floor that
 * look inside the library. The library's own files include only what each one uses. */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include "base.h"
#include "call.h"
#include "cancel.h"
#include "clock.h"
#include "config.h"
#include "confine.h"
#include "coredump.h"
#include "elfload.h"
#include "error.h"
#include "fault.h"
#include "functions.h"
#include "hostcall.h"
#include "image.h"
#include "io.h"
#include "layout.h"
#include "pagetable.h"
#include "sandbox.h"
#include "snapshot.h"
#include "vm.h"
#include "x86_64.h"

#endif
