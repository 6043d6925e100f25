/*
 * colo_cap.h - the software capability tagger's format, shared by the runtime
 * (which mints, checks and revokes capabilities), the guest library (which
 * prints them) and the switcher (which must check a target without a system
 * call).
 *
 * A capability is pointer-sized, so `void * __capability` is a plain `void *`.
 * A sealed capability is a non-canonical x86-64 address (bit 63 set, bit 62
 * clear), so dereferencing it faults like a sealed CHERI capability:
 *
 *   63      62   61   60..58  57..48        47..32        31..0
 *   sealed  0    tag  type    nonce (high)  index         nonce (low)
 *                             \_________ XOR the address space's key ______/
 *
 * `index` selects the entry of the address space's capability table that
 * must hold exactly this value for the capability to be valid; the 42 nonce
 * bits are random for every capability minted; the key is random per address
 * space, so a value from another address space does not check here.  Only the
 * runtime writes the table.  A cookie is a capability with its tag bit clear:
 * it identifies (a caller) and can never be called.
 */
#ifndef COLO_CAP_H
#define COLO_CAP_H

#include <stdint.h>

#define COLO_CAP_SEALED      (1ULL << 63)
#define COLO_CAP_CANONICAL   (1ULL << 62)   /* always clear in a capability */
#define COLO_CAP_TAG         (1ULL << 61)
#define COLO_CAP_TYPE_SHIFT  58
#define COLO_CAP_TYPE_MASK   (7ULL << COLO_CAP_TYPE_SHIFT)
#define COLO_CAP_INDEX_SHIFT 32
#define COLO_CAP_INDEX_MASK  0xffffULL
#define COLO_CAP_KEY_MASK    0x03ffffffffffffffULL   /* index and nonce: bits 57..0 */
#define COLO_CAP_NONCE_MASK  0x03ff0000ffffffffULL   /* nonce: bits 57..48 and 31..0 */

/* What a capability names. */
enum colo_cap_type {
    COLO_CAP_TARGET = 1,   /* a thread to cocall (coregister, colookup) */
    COLO_CAP_SCB    = 2,   /* a thread's call context (cosetup's data; cookies) */
    COLO_CAP_CODE   = 3,   /* the switcher's entry (cosetup's code) */
    COLO_CAP_FD     = 4,   /* an open file held by the runtime (capfromfd) */
};

/* Entry flags. */
#define COLO_CAP_DEAD  1u   /* the thread it names has exited: calls give ENOLINK */

/* One entry of the capability table. */
struct colo_cap_entry {
    uint64_t value;     /* the capability while valid; 0 when free */
    uint64_t object;    /* COLO_CAP_FD: the runtime's descriptor */
    int32_t  pid;       /* owning process (thread group) */
    int32_t  tid;       /* named thread (TARGET, SCB) */
    uint32_t flags;     /* COLO_CAP_DEAD */
    uint32_t reserved;
};

#define COLO_CAP_TABLE_MAGIC    0x5041434f4c4f43ULL   /* "COLOCAP" */
#define COLO_CAP_TABLE_ADDR     0x0ff800000000ULL     /* between the process table and the slots */
#define COLO_CAP_TABLE_CAPACITY 65536                 /* every index value is an entry */

/* The capability table of an address space, mapped at COLO_CAP_TABLE_ADDR
 * (shared, like all memory of the address space; written by the runtime only). */
struct colo_cap_table {
    uint64_t magic;
    uint64_t key;       /* per address space, within COLO_CAP_KEY_MASK */
    uint32_t used;      /* entries at and above it have never been minted (what a fork copies) */
    uint32_t pad;
    uint64_t reserved[5];
    struct colo_cap_entry entries[];    /* COLO_CAP_TABLE_CAPACITY of them */
};

/* Entry `i` of the table. */
static inline struct colo_cap_entry *colo_cap_entry_at(struct colo_cap_table *t, uint32_t i)
{
    return &t->entries[i];
}

/* The entry of a capability of `type` if `cap` is one that the table holds
 * (live or dead), else NULL.  A cookie, an unsealed value or a value of
 * another type or another address space gives NULL. */
static inline struct colo_cap_entry *colo_cap_lookup(struct colo_cap_table *t, uint64_t cap, unsigned type)
{
    uint64_t want = COLO_CAP_SEALED | COLO_CAP_TAG | ((uint64_t)type << COLO_CAP_TYPE_SHIFT);
    if ((cap & (COLO_CAP_SEALED | COLO_CAP_CANONICAL | COLO_CAP_TAG | COLO_CAP_TYPE_MASK)) != want)
        return 0;
    uint32_t i = (uint32_t)(((cap ^ t->key) >> COLO_CAP_INDEX_SHIFT) & COLO_CAP_INDEX_MASK);
    struct colo_cap_entry *e = colo_cap_entry_at(t, i);
    return e->value == cap ? e : 0;
}

/* The type of a sealed value (tagged or cookie), or 0 if it is not one. */
static inline unsigned colo_cap_type_of(uint64_t v)
{
    if ((v & (COLO_CAP_SEALED | COLO_CAP_CANONICAL)) != COLO_CAP_SEALED)
        return 0;
    return (unsigned)((v & COLO_CAP_TYPE_MASK) >> COLO_CAP_TYPE_SHIFT);
}

/* %#lp-style text for a capability (as capv -c prints it), e.g.
 * "0xa1d3... [target] (sealed)", "0x89d3... [scb] (cookie)", or "0x1000" for a
 * value that is not one.  Returns what snprintf returns. */
int colo_capfmt(char *buf, unsigned long size, const void *cap);

#endif
