#ifndef CKEYWAY_CRYPTO_H
#define CKEYWAY_CRYPTO_H
// OpenSSL glue: contexts are created once per SA and reused per packet. Parameter names are
// C string literals, so OSSL_PARAM never points at a dangling Swift temporary.
// Functions return 1 on success, 0 on failure unless noted.
#include <stddef.h>
#include <stdint.h>

typedef struct kw_cipher kw_cipher;
typedef struct kw_mac kw_mac;
typedef struct kw_dh kw_dh;

// Loads the legacy provider (DES) beside the default one. Returns 1 if DES is available.
int kw_crypto_init(void);

// name: an OpenSSL cipher name ("AES-128-CBC", "DES-EDE3-CBC", "AES-128-GCM", "AES-128-CTR", "DES-CBC").
kw_cipher *kw_cipher_new(const char *name, const uint8_t *key, size_t keylen, int encrypt);
void kw_cipher_free(kw_cipher *c);
// In-place CBC/CTR over len bytes with a fresh IV (len a multiple of the block for CBC).
int kw_cipher_run(kw_cipher *c, const uint8_t *iv, uint8_t *buf, size_t len);
// AES-GCM with a 12-byte nonce; 16-byte tag.
int kw_gcm_seal(kw_cipher *c, const uint8_t *nonce, const uint8_t *aad, size_t aadlen, uint8_t *buf, size_t len,
                uint8_t *tag);
int kw_gcm_open(kw_cipher *c, const uint8_t *nonce, const uint8_t *aad, size_t aadlen, uint8_t *buf, size_t len,
                const uint8_t *tag);

// HMAC with a digest name ("MD5", "SHA1", "SHA256", "SHA384", "SHA512"), keyed once.
kw_mac *kw_mac_new(const char *digest, const uint8_t *key, size_t keylen);
void kw_mac_free(kw_mac *m);
// Restarts with the same key; then any number of updates; final writes the digest.
int kw_mac_begin(kw_mac *m);
int kw_mac_update(kw_mac *m, const uint8_t *data, size_t len);
int kw_mac_final(kw_mac *m, uint8_t *out);

// Constant-time comparison: 0 when equal.
// A one-shot message digest (IKEv1's IVs and NAT-D). Returns the output length or 0.
size_t kw_digest(const char *name, const uint8_t *data, size_t len, uint8_t *out, size_t cap);

int kw_memcmp(const void *a, const void *b, size_t len);
void kw_cleanse(void *p, size_t len);
// The Internet checksum's folded one's complement sum of p[0..<len] plus `initial` (which is
// added as one more big-endian word sum), in host order; the checksum is its complement.
uint16_t kw_inet_sum(const uint8_t *p, size_t len, uint32_t initial);
int kw_random(uint8_t *out, size_t len);

// Diffie-Hellman over MODP, ECP and EC2N groups, public values in IKEv1's KE layout.
enum { KW_DH_OK = 1, KW_DH_ERROR = 0, KW_DH_BAD_PUBLIC = -1, KW_DH_BAD_LENGTH = -2, KW_DH_BAD_PRIVATE = -3 };
// group: the IKE group number. priv may be NULL (generate). Returns NULL on error; *status says why.
kw_dh *kw_dh_new(int group, const uint8_t *priv, size_t privlen, int *status);
// Bytes of uniform random seed kw_dh_new_from_seed takes for `group` (0: unknown group).
size_t kw_dh_seed_size(int group);
// A key pair whose private value is derived from exactly kw_dh_seed_size(group) seed bytes, always
// in range: MODP, an exponent of the group's private length with its top bit set; EC, seed mod
// (order - 1) + 1 (the seed is 8 bytes longer than the order, so the bias is below 2^-64).
kw_dh *kw_dh_new_from_seed(int group, const uint8_t *seed, size_t seedlen, int *status);
void kw_dh_free(kw_dh *d);
size_t kw_dh_public_size(const kw_dh *d);
size_t kw_dh_secret_size(const kw_dh *d);
int kw_dh_public(const kw_dh *d, uint8_t *out);
// Validates the peer value (range or on-curve and in the prime-order subgroup), then derives.
int kw_dh_derive(kw_dh *d, const uint8_t *peer, size_t peerlen, uint8_t *out);

// Checks an EC2N group's parameters: generator on the curve, of order small*q (q prime) exactly,
// and order*cofactor = the RFC's curve order.
int kw_ec2n_check(int group);
// Primality of a MODP group's prime and of (p-1)/2 (a safe prime).
int kw_modp_check(int group);
// Copies the group prime, big-endian; returns its length, 0 for non-MODP groups.
size_t kw_modp_prime(int group, uint8_t *out, size_t cap);
// The RFC formula 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + k), computed independently.
size_t kw_modp_from_formula(int bits, unsigned long k, uint8_t *out, size_t cap);

// RSA and X.509. Keys and certificates are opaque; DER or PEM is detected.
typedef struct kw_pkey kw_pkey;
typedef struct kw_cert kw_cert;
kw_pkey *kw_pkey_load_private(const uint8_t *data, size_t len);
void kw_pkey_free(kw_pkey *k);
kw_cert *kw_cert_load(const uint8_t *data, size_t len);
void kw_cert_free(kw_cert *c);
// DER encoding of the certificate (for CERT payloads and comparison); returns length, 0 on error.
size_t kw_cert_der(const kw_cert *c, uint8_t *out, size_t cap);
int kw_cert_matches_key(const kw_cert *c, const kw_pkey *k);
// Raw PKCS#1 v1.5 signature over `data` (IKEv1 signs HASH_I/HASH_R directly, no DigestInfo).
size_t kw_rsa_sign_raw(const kw_pkey *k, const uint8_t *data, size_t len, uint8_t *sig, size_t cap);
int kw_rsa_verify_raw(const kw_cert *c, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen);
size_t kw_pkey_size(const kw_pkey *k);

// IKEv2 (RFC 7296 auth method 1, RFC 7427): signatures over whole octet strings with a digest.
enum { KW_KEY_NONE = 0, KW_KEY_RSA = 1, KW_KEY_EC = 2 };
enum { KW_SIG_PKCS1 = 1, KW_SIG_PSS = 2, KW_SIG_ECDSA = 3 };
// An RSA or EC (named curve) private key; NULL for anything else.
kw_pkey *kw_pkey_load_private_any(const uint8_t *data, size_t len);
int kw_pkey_kind(const kw_pkey *k);
int kw_pkey_bits(const kw_pkey *k);
int kw_cert_key_kind(const kw_cert *c);
int kw_cert_key_bits(const kw_cert *c);
// scheme: PKCS#1 v1.5 or PSS (salt = digest length, MGF1 with the same digest) for RSA keys, ECDSA
// (DER-encoded r and s) for EC keys; digest: "SHA1", "SHA256", ... Returns the length, 0 on error.
size_t kw_sign(const kw_pkey *k, int scheme, const char *digest, const uint8_t *data, size_t len,
               uint8_t *sig, size_t cap);
// salt: PSS salt length (negative: the digest's length). Returns 1 when the signature verifies.
int kw_cert_verify(const kw_cert *c, int scheme, const char *digest, int salt, const uint8_t *data, size_t len,
                   const uint8_t *sig, size_t siglen);

#endif
