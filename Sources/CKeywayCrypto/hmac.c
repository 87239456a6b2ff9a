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
union state { MD5_CTX md5; SHA_CTX sha1; SHA256_CTX sha256; SHA512_CTX sha512; };

struct kw_mac {
    enum kind kind;
    size_t size, block;
    union state inner, outer, work;
};

static void start(enum kind k, union state *s) {
    switch (k) {
    case KIND_MD5: MD5_Init(&s->md5); break;
    case KIND_SHA1: SHA1_Init(&s->sha1); break;
    case KIND_SHA256: SHA256_Init(&s->sha256); break;
    case KIND_SHA384: SHA384_Init(&s->sha512); break;
    case KIND_SHA512: SHA512_Init(&s->sha512); break;
    }
}

static void add(enum kind k, union state *s, const void *data, size_t len) {
    switch (k) {
    case KIND_MD5: MD5_Update(&s->md5, data, len); break;
    case KIND_SHA1: SHA1_Update(&s->sha1, data, len); break;
    case KIND_SHA256: SHA256_Update(&s->sha256, data, len); break;
    case KIND_SHA384: SHA384_Update(&s->sha512, data, len); break;
    case KIND_SHA512: SHA512_Update(&s->sha512, data, len); break;
    }
}

static void finish(enum kind k, union state *s, uint8_t *out) {
    switch (k) {
    case KIND_MD5: MD5_Final(out, &s->md5); break;
    case KIND_SHA1: SHA1_Final(out, &s->sha1); break;
    case KIND_SHA256: SHA256_Final(out, &s->sha256); break;
    case KIND_SHA384: SHA384_Final(out, &s->sha512); break;
    case KIND_SHA512: SHA512_Final(out, &s->sha512); break;
    }
}

kw_mac *kw_mac_new(const char *digest, const uint8_t *key, size_t keylen) {
    static const struct { const char *name; enum kind kind; size_t size, block; } known[] = {
        {"MD5", KIND_MD5, 16, 64}, {"SHA1", KIND_SHA1, 20, 64}, {"SHA256", KIND_SHA256, 32, 64},
        {"SHA384", KIND_SHA384, 48, 128}, {"SHA512", KIND_SHA512, 64, 128},
    };
    kw_mac *m = NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(digest, known[i].name) != 0) continue;
        m = OPENSSL_zalloc(sizeof(*m));
        if (!m) return NULL;
        m->kind = known[i].kind; m->size = known[i].size; m->block = known[i].block;
    }
    if (!m || (keylen > 0 && key == NULL)) { OPENSSL_free(m); return NULL; }
    uint8_t padded[128], pad[128];
    memset(padded, 0, sizeof(padded));
    if (keylen > m->block) {
        // A key longer than a block is its digest (RFC 2104 section 2).
        start(m->kind, &m->work);
        add(m->kind, &m->work, key, keylen);
        finish(m->kind, &m->work, padded);
    } else if (keylen > 0) {
        memcpy(padded, key, keylen);
    }
    for (size_t i = 0; i < m->block; i++) pad[i] = padded[i] ^ 0x36;
    start(m->kind, &m->inner);
    add(m->kind, &m->inner, pad, m->block);
    for (size_t i = 0; i < m->block; i++) pad[i] = padded[i] ^ 0x5c;
    start(m->kind, &m->outer);
    add(m->kind, &m->outer, pad, m->block);
    OPENSSL_cleanse(padded, sizeof(padded));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(&m->work, sizeof(m->work));
    return m;
}

void kw_mac_free(kw_mac *m) {
    if (!m) return;
    OPENSSL_cleanse(m, sizeof(*m));
    OPENSSL_free(m);
}

size_t kw_mac_size(const kw_mac *m) { return m->size; }

int kw_mac_begin(kw_mac *m) {
    m->work = m->inner;
    return 1;
}

int kw_mac_update(kw_mac *m, const uint8_t *data, size_t len) {
    if (len > 0 && data == NULL) return 0;
    if (len > 0) add(m->kind, &m->work, data, len);
    return 1;
}

int kw_mac_final(kw_mac *m, uint8_t *out) {
    uint8_t inner[64];
    finish(m->kind, &m->work, inner);
    m->work = m->outer;
    add(m->kind, &m->work, inner, m->size);
    finish(m->kind, &m->work, out);
    OPENSSL_cleanse(inner, sizeof(inner));
    OPENSSL_cleanse(&m->work, sizeof(m->work));
    return 1;
}
