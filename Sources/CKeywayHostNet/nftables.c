// The incoming-check table through libnftables: one script, one transaction, and whatever
// nftables has to say captured for the audit log rather than printed.
#include "CKeywayHostNet.h"
#include <nftables/libnftables.h>
#include <stdio.h>

int kw_nft_run(const char *script, char *messages, size_t cap) {
    if (cap > 0) messages[0] = 0;
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL) return -1;
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, script);
    const char *error = nft_ctx_get_error_buffer(ctx);
    const char *output = nft_ctx_get_output_buffer(ctx);
    if (cap > 0) snprintf(messages, cap, "%s%s", error ? error : "", output ? output : "");
    nft_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
