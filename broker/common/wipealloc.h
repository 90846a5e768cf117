/*
 * wipealloc.h - make libcurl and OpenSSL wipe every heap block they free.
 *
 * A secret access key crosses libcurl's receive buffer and OpenSSL's TLS record buffers on its way
 * from IAM (CreateAccessKey) or to Secrets Manager (CreateSecret/PutSecretValue). Our own buffers
 * are wiped; these two libraries free theirs without wiping, so a key could linger in freed heap
 * (and in a core dump). kb_wipealloc_install() gives both libraries an allocator that remembers
 * each block's size and zeroes it with sodium_memzero before free.
 *
 * It must run before the first OpenSSL allocation and before curl_global_init(): call it first
 * thing in main(). kb_http_new() calls it too, which is enough when nothing used OpenSSL earlier.
 */
#ifndef KB_WIPEALLOC_H
#define KB_WIPEALLOC_H

/* Installs the wiping allocator in OpenSSL and libcurl. Idempotent. Returns 0 when both use it,
 * KB_EINVAL when OpenSSL had already allocated (it then keeps the plain allocator; curl still gets
 * the wiping one unless it was initialised before). */
int kb_wipealloc_install(void);

#endif
