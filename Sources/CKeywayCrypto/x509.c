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

kw_pkey *kw_pkey_load_private(const uint8_t *data, size_t len) {
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
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) { EVP_PKEY_free(k); return NULL; }
    kw_pkey *r = OPENSSL_zalloc(sizeof(*r));
    if (!r) { EVP_PKEY_free(k); return NULL; }
    r->k = k;
    return r;
}

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
