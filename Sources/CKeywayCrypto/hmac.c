// The low-level digest interfaces are deprecated in OpenSSL 3 but kept: they are the only ones
// whose state is a plain struct that can be copied without allocating.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "CKeywayCrypto.h"
#include <openssl/crypto.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <string.h>

// HMAC (RFC 2104) with the key's inner and outer states computed once: each MAC copies two small
// structs and runs the digest. EVP_MAC re-initialised per packet duplicates provider contexts,
// two heap allocations per MAC in OpenSSL 3.0, on every ESP packet sealed and opened.

enum kind { KIND_MD5, KIND_SHA1, KIND_SHA256, KIND_SHA384, KIND_SHA512 };

// The inner, outer and working digest states follow the header, each as large as its digest's
// context needs (rounded to 16 bytes): three SHA_CTX for HMAC-SHA1, not three of the largest.
// One MAC per direction of every SA, so this is most of an SA's HMAC memory.
struct kw_mac {
    enum kind kind;
    size_t size, block, state_size;
    _Alignas(16) unsigned char states[];
};

static void *inner_state(kw_mac *m) { return m->states; }
static void *outer_state(kw_mac *m) { return m->states + m->state_size; }
static void *work_state(kw_mac *m) { return m->states + 2 * m->state_size; }

static void start(enum kind k, void *s) {
    switch (k) {
    case KIND_MD5: MD5_Init((MD5_CTX *)s); break;
    case KIND_SHA1: SHA1_Init((SHA_CTX *)s); break;
    case KIND_SHA256: SHA256_Init((SHA256_CTX *)s); break;
    case KIND_SHA384: SHA384_Init((SHA512_CTX *)s); break;
    case KIND_SHA512: SHA512_Init((SHA512_CTX *)s); break;
    }
}

static void add(enum kind k, void *s, const void *data, size_t len) {
    switch (k) {
    case KIND_MD5: MD5_Update((MD5_CTX *)s, data, len); break;
    case KIND_SHA1: SHA1_Update((SHA_CTX *)s, data, len); break;
    case KIND_SHA256: SHA256_Update((SHA256_CTX *)s, data, len); break;
    case KIND_SHA384: SHA384_Update((SHA512_CTX *)s, data, len); break;
    case KIND_SHA512: SHA512_Update((SHA512_CTX *)s, data, len); break;
    }
}

static void finish(enum kind k, void *s, uint8_t *out) {
    switch (k) {
    case KIND_MD5: MD5_Final(out, (MD5_CTX *)s); break;
    case KIND_SHA1: SHA1_Final(out, (SHA_CTX *)s); break;
    case KIND_SHA256: SHA256_Final(out, (SHA256_CTX *)s); break;
    case KIND_SHA384: SHA384_Final(out, (SHA512_CTX *)s); break;
    case KIND_SHA512: SHA512_Final(out, (SHA512_CTX *)s); break;
    }
}

kw_mac *kw_mac_new(const char *digest, const uint8_t *key, size_t keylen) {
    static const struct { const char *name; enum kind kind; size_t size, block, state; } known[] = {
        {"MD5", KIND_MD5, 16, 64, sizeof(MD5_CTX)}, {"SHA1", KIND_SHA1, 20, 64, sizeof(SHA_CTX)},
        {"SHA256", KIND_SHA256, 32, 64, sizeof(SHA256_CTX)}, {"SHA384", KIND_SHA384, 48, 128, sizeof(SHA512_CTX)},
        {"SHA512", KIND_SHA512, 64, 128, sizeof(SHA512_CTX)},
    };
    kw_mac *m = NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(digest, known[i].name) != 0) continue;
        size_t state = (known[i].state + 15) & ~(size_t)15;
        m = OPENSSL_zalloc(sizeof(*m) + 3 * state);
        if (!m) return NULL;
        m->kind = known[i].kind; m->size = known[i].size; m->block = known[i].block; m->state_size = state;
    }
    if (!m || (keylen > 0 && key == NULL)) { OPENSSL_free(m); return NULL; }
    uint8_t padded[128], pad[128];
    memset(padded, 0, sizeof(padded));
    if (keylen > m->block) {
        // A key longer than a block is its digest (RFC 2104 section 2).
        start(m->kind, work_state(m));
        add(m->kind, work_state(m), key, keylen);
        finish(m->kind, work_state(m), padded);
    } else if (keylen > 0) {
        memcpy(padded, key, keylen);
    }
    for (size_t i = 0; i < m->block; i++) pad[i] = padded[i] ^ 0x36;
    start(m->kind, inner_state(m));
    add(m->kind, inner_state(m), pad, m->block);
    for (size_t i = 0; i < m->block; i++) pad[i] = padded[i] ^ 0x5c;
    start(m->kind, outer_state(m));
    add(m->kind, outer_state(m), pad, m->block);
    OPENSSL_cleanse(padded, sizeof(padded));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(work_state(m), m->state_size);
    return m;
}

void kw_mac_free(kw_mac *m) {
    if (!m) return;
    OPENSSL_cleanse(m, sizeof(*m) + 3 * m->state_size);
    OPENSSL_free(m);
}

int kw_mac_begin(kw_mac *m) {
    memcpy(work_state(m), inner_state(m), m->state_size);
    return 1;
}

int kw_mac_update(kw_mac *m, const uint8_t *data, size_t len) {
    if (len > 0 && data == NULL) return 0;
    if (len > 0) add(m->kind, work_state(m), data, len);
    return 1;
}

int kw_mac_final(kw_mac *m, uint8_t *out) {
    uint8_t inner[64];
    finish(m->kind, work_state(m), inner);
    memcpy(work_state(m), outer_state(m), m->state_size);
    add(m->kind, work_state(m), inner, m->size);
    finish(m->kind, work_state(m), out);
    OPENSSL_cleanse(inner, sizeof(inner));
    OPENSSL_cleanse(work_state(m), m->state_size);
    return 1;
}
