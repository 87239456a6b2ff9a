#include "CKeywayCrypto.h"
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

struct kw_pkey { EVP_PKEY *k; };
struct kw_cert { X509 *x; };

static int looks_pem(const uint8_t *d, size_t n) { return n > 10 && memcmp(d, "-----BEGIN", 10) == 0; }

static kw_pkey *load_private(const uint8_t *data, size_t len, int rsa_only) {
    if (len > INT32_MAX) return NULL;
    EVP_PKEY *k = NULL;
    if (looks_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        k = d2i_AutoPrivateKey(NULL, &p, (long)len);
    }
    ERR_clear_error();
    if (!k) return NULL;
    int id = EVP_PKEY_get_base_id(k);
    if (id != EVP_PKEY_RSA && (rsa_only || id != EVP_PKEY_EC)) { EVP_PKEY_free(k); return NULL; }
    kw_pkey *r = OPENSSL_zalloc(sizeof(*r));
    if (!r) { EVP_PKEY_free(k); return NULL; }
    r->k = k;
    return r;
}

kw_pkey *kw_pkey_load_private(const uint8_t *data, size_t len) { return load_private(data, len, 1); }
kw_pkey *kw_pkey_load_private_any(const uint8_t *data, size_t len) { return load_private(data, len, 0); }

void kw_pkey_free(kw_pkey *k) { if (k) { EVP_PKEY_free(k->k); OPENSSL_free(k); } }
size_t kw_pkey_size(const kw_pkey *k) { return (size_t)EVP_PKEY_get_size(k->k); }

kw_cert *kw_cert_load(const uint8_t *data, size_t len) {
    if (len > INT32_MAX) return NULL;
    X509 *x = NULL;
    if (looks_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)len);
        if (x && p != data + len) { X509_free(x); x = NULL; }   // trailing bytes: not one certificate
    }
    ERR_clear_error();
    if (!x) return NULL;
    kw_cert *r = OPENSSL_zalloc(sizeof(*r));
    if (!r) { X509_free(x); return NULL; }
    r->x = x;
    return r;
}

void kw_cert_free(kw_cert *c) { if (c) { X509_free(c->x); OPENSSL_free(c); } }

size_t kw_cert_der(const kw_cert *c, uint8_t *out, size_t cap) {
    int n = i2d_X509(c->x, NULL);
    if (n <= 0 || (size_t)n > cap) return 0;
    unsigned char *p = out;
    return i2d_X509(c->x, &p) == n ? (size_t)n : 0;
}

int kw_cert_matches_key(const kw_cert *c, const kw_pkey *k) {
    int r = X509_check_private_key(c->x, k->k) == 1;
    ERR_clear_error();
    return r;
}

size_t kw_rsa_sign_raw(const kw_pkey *k, const uint8_t *data, size_t len, uint8_t *sig, size_t cap) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->k, NULL);
    size_t n = cap;
    int ok = ctx && EVP_PKEY_sign_init(ctx) > 0 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_sign(ctx, sig, &n, data, len) > 0;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok ? n : 0;
}

int kw_rsa_verify_raw(const kw_cert *c, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen) {
    EVP_PKEY *pub = X509_get0_pubkey(c->x);
    if (!pub || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) return 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = ctx && EVP_PKEY_verify_init(ctx) > 0 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_verify(ctx, sig, siglen, data, len) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

// ---------------------------------------------------------------- signatures with a digest (IKEv2)

static int key_kind(EVP_PKEY *k) {
    if (!k) return KW_KEY_NONE;
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA: return KW_KEY_RSA;
    case EVP_PKEY_EC: return KW_KEY_EC;
    default: return KW_KEY_NONE;
    }
}

int kw_pkey_kind(const kw_pkey *k) { return key_kind(k->k); }
int kw_pkey_bits(const kw_pkey *k) { return EVP_PKEY_get_bits(k->k); }
int kw_cert_key_kind(const kw_cert *c) { return key_kind(X509_get0_pubkey(c->x)); }
int kw_cert_key_bits(const kw_cert *c) {
    EVP_PKEY *k = X509_get0_pubkey(c->x);
    return k ? EVP_PKEY_get_bits(k) : 0;
}

// Padding for the scheme on a digest-sign/verify context; salt < 0 means the digest's length.
static int set_scheme(EVP_PKEY_CTX *pctx, int scheme, const EVP_MD *md, int salt) {
    switch (scheme) {
    case KW_SIG_PKCS1: return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    case KW_SIG_PSS:
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt < 0 ? EVP_MD_get_size(md) : salt) > 0;
    case KW_SIG_ECDSA: return 1;
    default: return 0;
    }
}

static int scheme_fits(int scheme, int kind) {
    return kind == (scheme == KW_SIG_ECDSA ? KW_KEY_EC : KW_KEY_RSA);
}

size_t kw_sign(const kw_pkey *k, int scheme, const char *digest, const uint8_t *data, size_t len,
               uint8_t *sig, size_t cap) {
    if (!scheme_fits(scheme, key_kind(k->k))) return 0;
    EVP_MD *md = EVP_MD_fetch(NULL, digest, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t n = cap;
    int ok = md && ctx && EVP_DigestSignInit_ex(ctx, &pctx, EVP_MD_get0_name(md), NULL, NULL, k->k, NULL) > 0 &&
             set_scheme(pctx, scheme, md, -1) && EVP_DigestSign(ctx, sig, &n, data, len) > 0;
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    ERR_clear_error();
    return ok ? n : 0;
}

int kw_cert_verify(const kw_cert *c, int scheme, const char *digest, int salt, const uint8_t *data, size_t len,
                   const uint8_t *sig, size_t siglen) {
    EVP_PKEY *pub = X509_get0_pubkey(c->x);
    if (!pub || !scheme_fits(scheme, key_kind(pub))) return 0;
    EVP_MD *md = EVP_MD_fetch(NULL, digest, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && ctx && EVP_DigestVerifyInit_ex(ctx, &pctx, EVP_MD_get0_name(md), NULL, NULL, pub, NULL) > 0 &&
             set_scheme(pctx, scheme, md, salt) && EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    ERR_clear_error();
    return ok;
}
