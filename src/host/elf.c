/* elf.c - validates and loads guest ELF images (hostile input: every field is checked). */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include "elfload.h"
#include "error.h"

static bool add_overflows(uint64_t a, uint64_t b, uint64_t *sum) { return __builtin_add_overflow(a, b, sum); }

/* Reads the notes named HL_NOTE_NAME in the PT_NOTE segment data[off, off+len): the ABI
 * version (*have_abi) and the declared sizes (out->stack_default, heap_default). A second
 * sizes note is an error (-1); a malformed segment ends the scan. */
static int scan_notes(const uint8_t *data, uint64_t off, uint64_t len, hl_elf *out, bool *have_abi, bool *have_sizes)
{
    const uint64_t namesz_want = sizeof HL_NOTE_NAME; /* includes the NUL */
    uint64_t pos = 0;
    while (len - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        uint64_t name_len, desc_len;
        const uint8_t *desc;
        memcpy(&nh, data + off + pos, sizeof nh);
        pos += sizeof nh;
        name_len = HL_ALIGN_UP((uint64_t)nh.n_namesz, 4);
        desc_len = HL_ALIGN_UP((uint64_t)nh.n_descsz, 4);
        if (name_len > len - pos || desc_len > len - pos - name_len) return 0;
        desc = data + off + pos + name_len;
        if (nh.n_namesz == namesz_want && memcmp(data + off + pos, HL_NOTE_NAME, namesz_want) == 0) {
            if (nh.n_type == HL_NOTE_TYPE_ABI && nh.n_descsz == 4 && !*have_abi) {
                memcpy(&out->abi_version, desc, 4);
                *have_abi = true;
            } else if (nh.n_type == HL_NOTE_TYPE_DEFAULTS && nh.n_descsz == HL_NOTE_DEFAULTS_DESC) {
                if (*have_sizes) return -1;
                memcpy(&out->stack_default, desc, 8); /* little-endian, as the host */
                memcpy(&out->heap_default, desc + 8, 8);
                *have_sizes = true;
            }
        }
        pos += name_len + desc_len;
    }
    return 0;
}

/* The sizes a guest declares (0: none) must be what the configuration's setters accept. */
static hl_status check_defaults(const hl_elf *e, char *err)
{
    if (e->stack_default && (e->stack_default < HL_SCRATCH_MIN || e->stack_default > HL_SCRATCH_MAX))
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: declared stack size %llu is outside %u..%u",
                       (unsigned long long)e->stack_default, HL_SCRATCH_MIN, HL_SCRATCH_MAX);
    if (e->heap_default && (e->heap_default < HL_HEAP_MIN || e->heap_default > HL_HEAP_MAX))
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: declared heap size %llu is outside %u..%u",
                       (unsigned long long)e->heap_default, HL_HEAP_MIN, HL_HEAP_MAX);
    return HL_OK;
}

hl_status hl_elf_parse(const uint8_t *data, size_t len, hl_elf *out, char *err)
{
    Elf64_Ehdr eh;
    bool have_note = false, have_sizes = false, seen_w = false;
    uint64_t prev_end = HL_IMAGE_BASE;

    memset(out, 0, sizeof *out);
    out->ro_end = 0;
    if (!data || len < sizeof eh) return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: file too short (%zu bytes)", len);
    memcpy(&eh, data, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: not an ELF file (bad magic)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: not a 64-bit little-endian x86-64 ELF");
    if (eh.e_type != ET_EXEC)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: type %u is not ET_EXEC (build the guest with hyperlight-cc)",
                       eh.e_type);
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: bad program header table (%u x %u bytes)", eh.e_phnum,
                       eh.e_phentsize);
    if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: program headers beyond end of file");

    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        uint64_t end, fend;
        memcpy(&ph, data + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_NOTE) {
            if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
                return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: note segment %d beyond end of file", i);
            if (scan_notes(data, ph.p_offset, ph.p_filesz, out, &have_note, &have_sizes) < 0)
                return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: more than one stack and heap declaration");
            continue;
        }
        if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: dynamically linked (segment %d)", i);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        if (out->nseg == HL_ELF_MAX_SEGS)
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: more than %d loadable segments", HL_ELF_MAX_SEGS);
        if (ph.p_filesz > ph.p_memsz)
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: segment %d file size exceeds memory size", i);
        if (add_overflows(ph.p_offset, ph.p_filesz, &fend) || fend > len)
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: segment %d data beyond end of file", i);
        if (add_overflows(ph.p_vaddr, ph.p_memsz, &end) || ph.p_vaddr < HL_IMAGE_BASE ||
            end > (uint64_t)HL_IMAGE_BASE + HL_ELF_MAX_SPAN)
            return hl_errf(err, HL_ERR_BAD_GUEST,
                           "guest ELF: segment %d at 0x%llx+0x%llx outside the image area "
                           "0x%x..0x%llx",
                           i, (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz, HL_IMAGE_BASE,
                           (unsigned long long)HL_IMAGE_BASE + HL_ELF_MAX_SPAN);
        if (HL_ALIGN_DOWN(ph.p_vaddr, HL_PAGE) < prev_end)
            return hl_errf(err, HL_ERR_BAD_GUEST,
                           "guest ELF: segment %d overlaps or shares a page with the one before "
                           "(segments must ascend and be page-aligned)",
                           i);
        if ((ph.p_flags & PF_W) && (ph.p_flags & PF_X))
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: segment %d is writable and executable", i);
        if (ph.p_flags & PF_W) {
            if (!seen_w) out->ro_end = HL_ALIGN_DOWN(ph.p_vaddr, HL_PAGE);
            seen_w = true;
        } else if (seen_w) {
            return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: read-only segment %d follows a writable one", i);
        }
        out->seg[out->nseg++] = (hl_segment){
            .vaddr = ph.p_vaddr, .memsz = ph.p_memsz, .offset = ph.p_offset, .filesz = ph.p_filesz, .flags = ph.p_flags & 7
        };
        prev_end = HL_ALIGN_UP(end, HL_PAGE);
    }
    if (out->nseg == 0) return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: no loadable segment");
    out->end = prev_end;
    if (!seen_w) out->ro_end = out->end;
    if (!have_note)
        return hl_errf(err, HL_ERR_BAD_GUEST,
                       "guest ELF: no hyperlight ABI note (not built with the hyperlight guest SDK)");
    if (out->abi_version != HL_ABI_VERSION)
        return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: built for ABI version %u, this host speaks version %u",
                       out->abi_version, HL_ABI_VERSION);
    if (check_defaults(out, err) != HL_OK) return HL_ERR_BAD_GUEST;
    out->entry = eh.e_entry;
    for (int i = 0; i < out->nseg; i++) {
        const hl_segment *s = &out->seg[i];
        if ((s->flags & PF_X) && eh.e_entry >= s->vaddr && eh.e_entry < s->vaddr + s->memsz) return HL_OK;
    }
    return hl_errf(err, HL_ERR_BAD_GUEST, "guest ELF: entry point 0x%llx is not inside an executable segment",
                   (unsigned long long)eh.e_entry);
}

void hl_elf_load(const hl_elf *elf, const uint8_t *data, uint8_t *mem, size_t mem_len)
{
    for (int i = 0; i < elf->nseg; i++) {
        const hl_segment *s = &elf->seg[i];
        /* hl_layout_build guarantees the image fits; check again, cheaply. */
        if (s->vaddr + s->memsz > mem_len) continue;
        memcpy(mem + s->vaddr, data + s->offset, s->filesz);
        memset(mem + s->vaddr + s->filesz, 0, s->memsz - s->filesz);
    }
}
