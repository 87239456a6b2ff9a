#include "CKeywayCrypto.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

// ---------------------------------------------------------------- providers

static int des_available = -1;
// Loaded once and kept for the life of the process (held here so leak checkers see an owner).
static OSSL_PROVIDER *default_provider, *legacy_provider;

int kw_crypto_init(void) {
    if (des_available >= 0) return des_available;
    // Both: loading only "legacy" would switch off the implicit default provider.
    default_provider = OSSL_PROVIDER_load(NULL, "default");
    legacy_provider = OSSL_PROVIDER_load(NULL, "legacy");
    EVP_CIPHER *des = legacy_provider ? EVP_CIPHER_fetch(NULL, "DES-CBC", NULL) : NULL;
    des_available = des != NULL;
    EVP_CIPHER_free(des);
    ERR_clear_error();
    return des_available;
}

// ---------------------------------------------------------------- ciphers

struct kw_cipher {
    EVP_CIPHER_CTX *ctx;
    EVP_CIPHER *cipher;
    int encrypt;
};

kw_cipher *kw_cipher_new(const char *name, const uint8_t *key, size_t keylen, int encrypt) {
    kw_crypto_init();
    kw_cipher *c = OPENSSL_zalloc(sizeof(*c));
    if (!c) return NULL;
    c->encrypt = encrypt;
    c->cipher = EVP_CIPHER_fetch(NULL, name, NULL);
    c->ctx = EVP_CIPHER_CTX_new();
    if (!c->cipher || !c->ctx || (size_t)EVP_CIPHER_get_key_length(c->cipher) != keylen ||
        !EVP_CipherInit_ex2(c->ctx, c->cipher, key, NULL, encrypt, NULL)) {
        kw_cipher_free(c);
        ERR_clear_error();
        return NULL;
    }
    EVP_CIPHER_CTX_set_padding(c->ctx, 0);
    return c;
}

void kw_cipher_free(kw_cipher *c) {
    if (!c) return;
    EVP_CIPHER_CTX_free(c->ctx);
    EVP_CIPHER_free(c->cipher);
    OPENSSL_free(c);
}

int kw_cipher_run(kw_cipher *c, const uint8_t *iv, uint8_t *buf, size_t len) {
    int out = 0;
    if (len > INT32_MAX) return 0;
    if (!EVP_CipherInit_ex2(c->ctx, NULL, NULL, iv, c->encrypt, NULL)) return 0;
    if (!EVP_CipherUpdate(c->ctx, buf, &out, buf, (int)len)) return 0;
    return (size_t)out == len;
}

int kw_gcm_seal(kw_cipher *c, const uint8_t *nonce, const uint8_t *aad, size_t aadlen, uint8_t *buf, size_t len,
                uint8_t *tag) {
    int out = 0;
    if (len > INT32_MAX || aadlen > INT32_MAX) return 0;
    if (!EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 1, NULL)) return 0;
    if (aadlen && !EVP_CipherUpdate(c->ctx, NULL, &out, aad, (int)aadlen)) return 0;
    if (!EVP_CipherUpdate(c->ctx, buf, &out, buf, (int)len)) return 0;
    if (!EVP_CipherFinal_ex(c->ctx, buf + out, &out)) return 0;
    return EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
}

int kw_gcm_open(kw_cipher *c, const uint8_t *nonce, const uint8_t *aad, size_t aadlen, uint8_t *buf, size_t len,
                const uint8_t *tag) {
    int out = 0;
    uint8_t t[16];
    if (len > INT32_MAX || aadlen > INT32_MAX) return 0;
    memcpy(t, tag, 16);
    if (!EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 0, NULL)) return 0;
    if (aadlen && !EVP_CipherUpdate(c->ctx, NULL, &out, aad, (int)aadlen)) return 0;
    if (!EVP_CipherUpdate(c->ctx, buf, &out, buf, (int)len)) return 0;
    if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, 16, t) != 1) return 0;
    return EVP_CipherFinal_ex(c->ctx, buf + out, &out) == 1;
}

int kw_memcmp(const void *a, const void *b, size_t len) { return CRYPTO_memcmp(a, b, len); }
void kw_cleanse(void *p, size_t len) { OPENSSL_cleanse(p, len); }
int kw_random(uint8_t *out, size_t len) { return len <= INT32_MAX && RAND_bytes(out, (int)len) == 1; }

size_t kw_digest(const char *name, const uint8_t *data, size_t len, uint8_t *out, size_t cap) {
    unsigned int n = 0;
    EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
    if (md == NULL) return 0;
    if ((size_t)EVP_MD_get_size(md) > cap || !EVP_Digest(data, len, out, &n, md, NULL)) n = 0;
    EVP_MD_free(md);
    return n;
}
