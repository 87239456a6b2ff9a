#include "CKeywayCrypto.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <string.h>

// ---------------------------------------------------------------- groups

typedef enum { KIND_NONE, KIND_MODP, KIND_ECP, KIND_EC2N, KIND_X25519 } group_kind;

static group_kind kind_of(int group) {
    switch (group) {
    case 1: case 2: case 5: case 14: case 15: case 16: case 17: case 18: return KIND_MODP;
    case 19: case 20: case 21: return KIND_ECP;
    case 3: case 4: return KIND_EC2N;
    case 31: return KIND_X25519;
    default: return KIND_NONE;
    }
}

static BIGNUM *modp_prime(int group) {
    switch (group) {
    case 1: return BN_get_rfc2409_prime_768(NULL);
    case 2: return BN_get_rfc2409_prime_1024(NULL);
    case 5: return BN_get_rfc3526_prime_1536(NULL);
    case 14: return BN_get_rfc3526_prime_2048(NULL);
    case 15: return BN_get_rfc3526_prime_3072(NULL);
    case 16: return BN_get_rfc3526_prime_4096(NULL);
    case 17: return BN_get_rfc3526_prime_6144(NULL);
    case 18: return BN_get_rfc3526_prime_8192(NULL);
    default: return NULL;
    }
}

// RFC 2409 sections 6.3 and 6.4: y^2 + xy = x^3 + a x^2 + b over GF(2^m). The RFC's "group
// order" is the curve order. The RFC generators do not have prime order: for group 3 the curve
// order is 12q and G has order 4q; for group 4 the curve order is 4q' and G has order 2q'
// (q, q' prime; computed and checked by kw_ec2n_check). `order` below is G's order, `small`
// the factor beside the prime in it, `cofactor` the curve order over G's order.
typedef struct { const char *poly, *a, *b, *gx, *gy, *curve_order, *order, *prime; unsigned cofactor, small; }
    ec2n_params;
static const ec2n_params EC2N_155 = {
    "0800000000000000000000004000000000000001", "0", "07338F", "7B", "1C8",
    "0800000000000000000057DB5698537193AEF944", "02AAAAAAAAAAAAAAAAAAC7F3C7881BD0868FA86C",
    "AAAAAAAAAAAAAAAAAAB1FCF1E206F421A3EA1B", 3, 4 };
static const ec2n_params EC2N_185 = {
    "020000000000000000000000000000200000000000000001", "0", "1EE9", "18", "D",
    "01FFFFFFFFFFFFFFFFFFFFFFDBF2F889B73E484175F94EBC", "FFFFFFFFFFFFFFFFFFFFFFEDF97C44DB9F2420BAFCA75E",
    "7FFFFFFFFFFFFFFFFFFFFFF6FCBE226DCF92105D7E53AF", 2, 2 };

static BIGNUM *hex_bn(const char *h) { BIGNUM *b = NULL; return BN_hex2bn(&b, h) ? b : NULL; }

static EC_GROUP *ec2n_group(int group) {
    const ec2n_params *p = group == 3 ? &EC2N_155 : &EC2N_185;
    BIGNUM *poly = hex_bn(p->poly), *a = hex_bn(p->a), *b = hex_bn(p->b), *gx = hex_bn(p->gx), *gy = hex_bn(p->gy);
    BIGNUM *order = hex_bn(p->order), *cof = BN_new();
    EC_GROUP *g = NULL;
    EC_POINT *gen = NULL;
    if (poly && a && b && gx && gy && order && cof && BN_set_word(cof, p->cofactor)) {
        g = EC_GROUP_new_curve_GF2m(poly, a, b, NULL);
        gen = g ? EC_POINT_new(g) : NULL;
        if (!gen || !EC_POINT_set_affine_coordinates(g, gen, gx, gy, NULL) ||
            !EC_GROUP_set_generator(g, gen, order, cof)) {
            EC_GROUP_free(g);
            g = NULL;
        }
    }
    EC_POINT_free(gen);
    BN_free(poly); BN_free(a); BN_free(b); BN_free(gx); BN_free(gy); BN_free(order); BN_free(cof);
    return g;
}

static EC_GROUP *ec_group(int group) {
    switch (group) {
    case 19: return EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    case 20: return EC_GROUP_new_by_curve_name(NID_secp384r1);
    case 21: return EC_GROUP_new_by_curve_name(NID_secp521r1);
    case 3: case 4: return ec2n_group(group);
    default: return NULL;
    }
}

// ---------------------------------------------------------------- key pairs

struct kw_dh {
    int group;
    group_kind kind;
    size_t field_bytes;   // MODP: prime bytes; EC: coordinate bytes
    // MODP and X25519
    EVP_PKEY *pkey;
    BIGNUM *p;
    // EC
    EC_GROUP *ec;
    BIGNUM *priv;
    EC_POINT *pub;
};

void kw_dh_free(kw_dh *d) {
    if (!d) return;
    EVP_PKEY_free(d->pkey);
    BN_free(d->p);
    EC_GROUP_free(d->ec);
    BN_clear_free(d->priv);
    EC_POINT_free(d->pub);
    OPENSSL_free(d);
}

// Private exponent length: twice the group's strength, upper estimates of RFC 3526 section 8,
// and never under 256 bits.
static int modp_exponent_bits(int group) {
    switch (group) {
    case 14: return 320;
    case 15: return 420;
    case 16: return 480;
    case 17: return 540;
    case 18: return 620;
    default: return 256;
    }
}

static kw_dh *modp_new(kw_dh *d, const uint8_t *priv, size_t privlen, int *status) {
    d->p = modp_prime(d->group);
    if (!d->p) return NULL;
    d->field_bytes = (size_t)BN_num_bytes(d->p);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *g = BN_new(), *x = NULL, *y = NULL;
    BN_CTX *bctx = BN_CTX_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    int ok = bld && g && bctx && BN_set_word(g, 2) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, d->p) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, g) &&
             // Without q OpenSSL would draw a full-length exponent: 8-10 times slower for no gain.
             OSSL_PARAM_BLD_push_int(bld, OSSL_PKEY_PARAM_DH_PRIV_LEN, modp_exponent_bits(d->group));
    if (ok && priv) {
        // A given private value (known-answer tests): 1 < x < p-1, public = g^x mod p.
        x = BN_bin2bn(priv, (int)privlen, NULL);
        y = BN_new();
        BIGNUM *pm1 = BN_dup(d->p);
        ok = x && y && pm1 && BN_sub_word(pm1, 1) && BN_cmp(x, BN_value_one()) > 0 && BN_cmp(x, pm1) < 0;
        if (!ok && x) *status = KW_DH_BAD_PRIVATE;
        ok = ok && BN_mod_exp(y, g, x, d->p, bctx) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, x) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y);
        BN_free(pm1);
    }
    if (ok) params = OSSL_PARAM_BLD_to_param(bld);
    if (ok && params) {
        pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
        if (priv) {
            ok = pctx && EVP_PKEY_fromdata_init(pctx) > 0 &&
                 EVP_PKEY_fromdata(pctx, &d->pkey, EVP_PKEY_KEYPAIR, params) > 0;
        } else {
            EVP_PKEY *domain = NULL;
            ok = pctx && EVP_PKEY_fromdata_init(pctx) > 0 &&
                 EVP_PKEY_fromdata(pctx, &domain, EVP_PKEY_KEY_PARAMETERS, params) > 0;
            EVP_PKEY_CTX *kctx = ok ? EVP_PKEY_CTX_new_from_pkey(NULL, domain, NULL) : NULL;
            ok = ok && kctx && EVP_PKEY_keygen_init(kctx) > 0 && EVP_PKEY_generate(kctx, &d->pkey) > 0;
            EVP_PKEY_CTX_free(kctx);
            EVP_PKEY_free(domain);
        }
    } else {
        ok = 0;
    }
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(g); BN_clear_free(x); BN_free(y);
    BN_CTX_free(bctx);
    return ok ? d : NULL;
}

static kw_dh *ec_new(kw_dh *d, const uint8_t *priv, size_t privlen, int *status) {
    d->ec = ec_group(d->group);
    if (!d->ec) return NULL;
    d->field_bytes = (size_t)((EC_GROUP_get_degree(d->ec) + 7) / 8);
    const BIGNUM *order = EC_GROUP_get0_order(d->ec);
    d->priv = BN_secure_new();
    d->pub = EC_POINT_new(d->ec);
    if (!d->priv || !d->pub) return NULL;
    if (priv) {
        if (!BN_bin2bn(priv, (int)privlen, d->priv)) return NULL;
        if (BN_is_zero(d->priv) || BN_cmp(d->priv, order) >= 0) { *status = KW_DH_BAD_PRIVATE; return NULL; }
    } else {
        // Uniform in [1, order-1].
        do { if (!BN_priv_rand_range(d->priv, order)) return NULL; } while (BN_is_zero(d->priv));
    }
    return EC_POINT_mul(d->ec, d->pub, d->priv, NULL, NULL, NULL) ? d : NULL;
}

// RFC 7748 / RFC 8031: the private value is 32 bytes (clamped by the function itself), the
// public value and the shared secret are 32-byte u-coordinates.
static kw_dh *x25519_new(kw_dh *d, const uint8_t *priv, size_t privlen, int *status) {
    d->field_bytes = 32;
    if (priv) {
        if (privlen != 32) { *status = KW_DH_BAD_PRIVATE; return NULL; }
        d->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, privlen);
        return d->pkey ? d : NULL;
    }
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    int ok = kctx && EVP_PKEY_keygen_init(kctx) > 0 && EVP_PKEY_keygen(kctx, &d->pkey) > 0;
    EVP_PKEY_CTX_free(kctx);
    return ok ? d : NULL;
}

kw_dh *kw_dh_new(int group, const uint8_t *priv, size_t privlen, int *status) {
    *status = KW_DH_ERROR;
    kw_crypto_init();
    kw_dh *d = OPENSSL_zalloc(sizeof(*d));
    if (!d) return NULL;
    d->group = group;
    d->kind = kind_of(group);
    kw_dh *r = NULL;
    if (d->kind == KIND_MODP) r = modp_new(d, priv, privlen, status);
    else if (d->kind == KIND_X25519) r = x25519_new(d, priv, privlen, status);
    else if (d->kind != KIND_NONE) r = ec_new(d, priv, privlen, status);
    if (!r) { kw_dh_free(d); ERR_clear_error(); return NULL; }
    *status = KW_DH_OK;
    return d;
}

// ---------------------------------------------------------------- private values from a seed

// EC groups: the order's size in bytes (0 when the group cannot be built).
static size_t ec_order_bytes(int group) {
    EC_GROUP *g = ec_group(group);
    size_t n = g ? (size_t)BN_num_bytes(EC_GROUP_get0_order(g)) : 0;
    EC_GROUP_free(g);
    return n;
}

size_t kw_dh_seed_size(int group) {
    switch (kind_of(group)) {
    case KIND_MODP: return (size_t)(modp_exponent_bits(group) + 7) / 8;
    case KIND_ECP: case KIND_EC2N: { size_t n = ec_order_bytes(group); return n ? n + 8 : 0; }
    case KIND_X25519: return 32;   // any 32 bytes are a valid private value (RFC 7748 clamps)
    default: return 0;
    }
}

kw_dh *kw_dh_new_from_seed(int group, const uint8_t *seed, size_t seedlen, int *status) {
    *status = KW_DH_BAD_PRIVATE;
    size_t want = kw_dh_seed_size(group);
    if (want == 0 || seedlen != want || !seed) return NULL;
    if (kind_of(group) == KIND_X25519) return kw_dh_new(group, seed, seedlen, status);
    *status = KW_DH_ERROR;
    BIGNUM *x = BN_secure_new();
    BN_CTX *ctx = BN_CTX_secure_new();
    EC_GROUP *g = NULL;
    int ok = x && ctx && BN_bin2bn(seed, (int)seedlen, x) != NULL;
    if (ok && kind_of(group) == KIND_MODP) {
        // Exactly bits long: top bit set, so 1 < x < p - 1 for every MODP prime (far longer).
        // (BN_mask_bits fails unless the number has words beyond the mask: only when longer.)
        int bits = modp_exponent_bits(group);
        ok = BN_set_bit(x, bits - 1) && (BN_num_bits(x) <= bits || BN_mask_bits(x, bits));
    } else if (ok) {
        BIGNUM *m = BN_new();
        g = ec_group(group);
        ok = m && g && BN_copy(m, EC_GROUP_get0_order(g)) && BN_sub_word(m, 1) &&
             BN_nnmod(x, x, m, ctx) && BN_add_word(x, 1);
        BN_free(m);
    }
    kw_dh *d = NULL;
    size_t n = ok ? (size_t)BN_num_bytes(x) : 0;
    uint8_t *priv = n ? OPENSSL_secure_malloc(n) : NULL;
    if (priv && BN_bn2bin(x, priv) == (int)n) d = kw_dh_new(group, priv, n, status);
    if (priv) OPENSSL_secure_clear_free(priv, n);
    EC_GROUP_free(g);
    BN_clear_free(x);
    BN_CTX_free(ctx);
    ERR_clear_error();
    return d;
}

// IKEv1 KE payload: MODP g^x padded to the prime; ECP x||y (RFC 5903); EC2N x only (RFC 2409).
size_t kw_dh_public_size(const kw_dh *d) {
    switch (d->kind) {
    case KIND_MODP: return d->field_bytes;
    case KIND_ECP: return 2 * d->field_bytes;
    case KIND_EC2N: return d->field_bytes;
    case KIND_X25519: return 32;
    default: return 0;
    }
}

size_t kw_dh_secret_size(const kw_dh *d) { return d->field_bytes; }

int kw_dh_public(const kw_dh *d, uint8_t *out) {
    if (d->kind == KIND_X25519) {
        size_t n = 32;
        return EVP_PKEY_get_raw_public_key(d->pkey, out, &n) == 1 && n == 32;
    }
    if (d->kind == KIND_MODP) {
        BIGNUM *y = NULL;
        int ok = EVP_PKEY_get_bn_param(d->pkey, OSSL_PKEY_PARAM_PUB_KEY, &y) &&
                 BN_bn2binpad(y, out, (int)d->field_bytes) == (int)d->field_bytes;
        BN_free(y);
        return ok;
    }
    BIGNUM *x = BN_new(), *y = BN_new();
    int ok = x && y && EC_POINT_get_affine_coordinates(d->ec, d->pub, x, y, NULL) &&
             BN_bn2binpad(x, out, (int)d->field_bytes) == (int)d->field_bytes &&
             (d->kind == KIND_EC2N ||
              BN_bn2binpad(y, out + d->field_bytes, (int)d->field_bytes) == (int)d->field_bytes);
    BN_free(x); BN_free(y);
    return ok;
}

static int modp_derive(kw_dh *d, const uint8_t *peer, uint8_t *out) {
    // Range check (RFC 2631 / SP 800-56A): 1 < y < p-1 rejects 0, 1 and p-1 (order-2 element).
    BIGNUM *y = BN_bin2bn(peer, (int)d->field_bytes, NULL), *pm1 = BN_dup(d->p);
    int ok = y && pm1 && BN_sub_word(pm1, 1) && BN_cmp(y, BN_value_one()) > 0 && BN_cmp(y, pm1) < 0;
    EVP_PKEY *peerkey = NULL;
    EVP_PKEY_CTX *dctx = NULL;
    if (!ok) { BN_free(y); BN_free(pm1); return KW_DH_BAD_PUBLIC; }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *g = BN_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    ok = bld && g && pctx && BN_set_word(g, 2) &&
         OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, d->p) &&
         OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, g) &&
         OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y) &&
         (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
         EVP_PKEY_fromdata_init(pctx) > 0 && EVP_PKEY_fromdata(pctx, &peerkey, EVP_PKEY_PUBLIC_KEY, params) > 0;
    size_t len = d->field_bytes;
    ok = ok && (dctx = EVP_PKEY_CTX_new_from_pkey(NULL, d->pkey, NULL)) != NULL &&
         EVP_PKEY_derive_init(dctx) > 0 &&
         EVP_PKEY_CTX_set_dh_pad(dctx, 1) > 0 &&   // IKE keeps leading zeros: the secret is prime-sized
         // Our range check above is the whole validation a safe-prime group needs: its only small
         // subgroups have order 1 and 2. OpenSSL's own check would add a full y^q mod p per derive.
         EVP_PKEY_derive_set_peer_ex(dctx, peerkey, 0) > 0 &&
         EVP_PKEY_derive(dctx, out, &len) > 0 && len == d->field_bytes;
    EVP_PKEY_CTX_free(dctx); EVP_PKEY_CTX_free(pctx); EVP_PKEY_free(peerkey);
    OSSL_PARAM_free(params); OSSL_PARAM_BLD_free(bld);
    BN_free(g); BN_free(y); BN_free(pm1);
    return ok ? KW_DH_OK : KW_DH_BAD_PUBLIC;
}

static int ec_derive(kw_dh *d, const uint8_t *peer, uint8_t *out) {
    BN_CTX *bctx = BN_CTX_new();
    BIGNUM *x = BN_bin2bn(peer, (int)d->field_bytes, NULL), *y = NULL, *sx = BN_new();
    EC_POINT *p = EC_POINT_new(d->ec), *s = EC_POINT_new(d->ec), *t = EC_POINT_new(d->ec);
    int status = KW_DH_ERROR;
    if (!bctx || !x || !sx || !p || !s || !t) goto done;
    status = KW_DH_BAD_PUBLIC;
    if (d->kind == KIND_ECP) {
        y = BN_bin2bn(peer + d->field_bytes, (int)d->field_bytes, NULL);
        // set_affine_coordinates refuses points that are not on the curve, and coordinates >= p.
        if (!y || !EC_POINT_set_affine_coordinates(d->ec, p, x, y, bctx)) goto done;
    } else {
        // x only: recover a y; either sign gives the same shared x coordinate.
        if (!EC_POINT_set_compressed_coordinates(d->ec, p, x, 0, bctx)) goto done;
    }
    if (EC_POINT_is_at_infinity(d->ec, p) || EC_POINT_is_on_curve(d->ec, p, bctx) != 1) goto done;
    // ECP groups have cofactor 1: a point on the curve is in the group. EC2N ones do not.
    if (d->kind == KIND_EC2N) {
        // In the generator's subgroup: order(G) * P = O.
        if (!EC_POINT_mul(d->ec, t, NULL, p, EC_GROUP_get0_order(d->ec), bctx) || !EC_POINT_is_at_infinity(d->ec, t))
            goto done;
        // Not a point of small order (which would confine the shared secret to a few values).
        BIGNUM *small = BN_new();
        int confined = !small || !BN_set_word(small, d->group == 3 ? EC2N_155.small : EC2N_185.small) ||
                       !EC_POINT_mul(d->ec, t, NULL, p, small, bctx) || EC_POINT_is_at_infinity(d->ec, t);
        BN_free(small);
        if (confined) goto done;
    }
    status = KW_DH_ERROR;
    if (!EC_POINT_mul(d->ec, s, NULL, p, d->priv, bctx) || EC_POINT_is_at_infinity(d->ec, s)) goto done;
    if (!EC_POINT_get_affine_coordinates(d->ec, s, sx, NULL, bctx)) goto done;
    if (BN_bn2binpad(sx, out, (int)d->field_bytes) != (int)d->field_bytes) goto done;
    status = KW_DH_OK;
done:
    BN_free(x); BN_free(y); BN_clear_free(sx);
    EC_POINT_free(p); EC_POINT_clear_free(s); EC_POINT_free(t);
    BN_CTX_free(bctx);
    ERR_clear_error();
    return status;
}

// RFC 8031 section 2: a peer value that yields the all-zero secret (a small-order point) is refused.
static int x25519_derive(kw_dh *d, const uint8_t *peer, uint8_t *out) {
    EVP_PKEY *peerkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *dctx = peerkey ? EVP_PKEY_CTX_new_from_pkey(NULL, d->pkey, NULL) : NULL;
    size_t len = 32;
    int ok = dctx && EVP_PKEY_derive_init(dctx) > 0 && EVP_PKEY_derive_set_peer_ex(dctx, peerkey, 0) > 0 &&
             EVP_PKEY_derive(dctx, out, &len) > 0 && len == 32;
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_free(peerkey);
    if (!ok) return KW_DH_BAD_PUBLIC;
    uint8_t any = 0;
    for (int i = 0; i < 32; i++) any |= out[i];
    return any ? KW_DH_OK : KW_DH_BAD_PUBLIC;
}

int kw_dh_derive(kw_dh *d, const uint8_t *peer, size_t peerlen, uint8_t *out) {
    if (peerlen != kw_dh_public_size(d)) return KW_DH_BAD_LENGTH;
    int r = d->kind == KIND_MODP ? modp_derive(d, peer, out)
          : d->kind == KIND_X25519 ? x25519_derive(d, peer, out) : ec_derive(d, peer, out);
    ERR_clear_error();
    return r;
}

// ---------------------------------------------------------------- parameter checks (tests)

int kw_ec2n_check(int group) {
    if (kind_of(group) != KIND_EC2N) return 0;
    const ec2n_params *p = group == 3 ? &EC2N_155 : &EC2N_185;
    EC_GROUP *g = ec2n_group(group);
    BIGNUM *curve_order = hex_bn(p->curve_order), *prime = hex_bn(p->prime), *prod = BN_new(), *w = BN_new();
    EC_POINT *t = g ? EC_POINT_new(g) : NULL;
    BN_CTX *ctx = BN_CTX_new();
    const EC_POINT *gen = g ? EC_GROUP_get0_generator(g) : NULL;
    int ok = g && t && curve_order && prime && prod && w && ctx &&
             EC_POINT_is_on_curve(g, gen, ctx) == 1 &&
             // order(G) * cofactor is the RFC's group (curve) order
             BN_set_word(w, p->cofactor) && BN_mul(prod, EC_GROUP_get0_order(g), w, ctx) &&
             BN_cmp(prod, curve_order) == 0 &&
             // order(G) = small * q with q prime
             BN_set_word(w, p->small) && BN_mul(prod, prime, w, ctx) && BN_cmp(prod, EC_GROUP_get0_order(g)) == 0 &&
             BN_check_prime(prime, ctx, NULL) == 1 &&
             // G really has that order: order(G)*G = O, but (order(G)/2)*G != O and q*G != O
             EC_POINT_mul(g, t, NULL, gen, EC_GROUP_get0_order(g), ctx) && EC_POINT_is_at_infinity(g, t) &&
             BN_rshift1(w, EC_GROUP_get0_order(g)) && EC_POINT_mul(g, t, NULL, gen, w, ctx) &&
             !EC_POINT_is_at_infinity(g, t) &&
             EC_POINT_mul(g, t, NULL, gen, prime, ctx) && !EC_POINT_is_at_infinity(g, t);
    EC_POINT_free(t); EC_GROUP_free(g); BN_free(curve_order); BN_free(prime); BN_free(prod); BN_free(w);
    BN_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int kw_modp_check(int group) {
    BIGNUM *p = modp_prime(group), *q = p ? BN_dup(p) : NULL;
    BN_CTX *ctx = BN_CTX_new();
    int ok = p && q && ctx && BN_sub_word(q, 1) && BN_rshift1(q, q) &&
             BN_check_prime(p, ctx, NULL) == 1 && BN_check_prime(q, ctx, NULL) == 1;
    BN_free(p); BN_free(q); BN_CTX_free(ctx);
    return ok;
}

size_t kw_modp_prime(int group, uint8_t *out, size_t cap) {
    BIGNUM *p = modp_prime(group);
    if (!p) return 0;
    size_t n = (size_t)BN_num_bytes(p);
    if (n > cap || BN_bn2bin(p, out) != (int)n) n = 0;
    BN_free(p);
    return n;
}

// arctan(1/x) * 2^prec, by its Taylor series (x >= 5 converges quickly).
static int arctan_inverse(BIGNUM *sum, unsigned long x, int prec, BN_CTX *ctx) {
    BIGNUM *term = BN_new(), *t = BN_new(), *x2 = BN_new(), *d = BN_new();
    int ok = term && t && x2 && d && BN_set_word(term, 1) && BN_lshift(term, term, prec) &&
             BN_set_word(d, x) && BN_div(term, NULL, term, d, ctx) && BN_copy(sum, term) &&
             BN_set_word(x2, x * x);
    for (unsigned long n = 1; ok; n++) {
        ok = BN_div(term, NULL, term, x2, ctx) && BN_set_word(d, 2 * n + 1) && BN_div(t, NULL, term, d, ctx);
        if (!ok || BN_is_zero(t)) break;
        ok = (n & 1) ? BN_sub(sum, sum, t) : BN_add(sum, sum, t);
    }
    BN_free(term); BN_free(t); BN_free(x2); BN_free(d);
    return ok;
}

size_t kw_modp_from_formula(int bits, unsigned long k, uint8_t *out, size_t cap) {
    // RFC 2409/3526: p = 2^N - 2^(N-64) - 1 + 2^64 * ( [2^(N-130) pi] + k ), pi by Machin's formula.
    const int guard = 64, prec = bits - 130 + guard;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *a = BN_new(), *b = BN_new(), *p = BN_new(), *t = BN_new();
    size_t n = 0;
    int ok = ctx && a && b && p && t && arctan_inverse(a, 5, prec, ctx) && arctan_inverse(b, 239, prec, ctx) &&
             BN_lshift(a, a, 4) && BN_lshift(b, b, 2) && BN_sub(a, a, b) &&   // 16 atan(1/5) - 4 atan(1/239)
             BN_rshift(a, a, guard) && BN_add_word(a, k) && BN_lshift(a, a, 64) &&
             BN_set_word(p, 1) && BN_lshift(p, p, bits) &&
             BN_set_word(t, 1) && BN_lshift(t, t, bits - 64) && BN_sub(p, p, t) &&
             BN_sub_word(p, 1) && BN_add(p, p, a);
    if (ok && (size_t)BN_num_bytes(p) <= cap) n = (size_t)BN_bn2bin(p, out);
    BN_free(a); BN_free(b); BN_free(p); BN_free(t); BN_CTX_free(ctx);
    return n;
}
