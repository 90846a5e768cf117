/*
 * uuid.h - RFC 4122 name-based UUIDs (version 5, SHA-1), and the one keybroker derives for a
 * secret version from (tenant, access key id).
 *
 * The version id / ClientRequestToken of the secret version that stores an access key is
 * kb_uuid_key_version(tenant, key id): a retry, a restart or a second broker storing the same key
 * creates the same version (never a duplicate), and the broker knows which key a version holds
 * without ever reading the secret value (DESIGN.md section 5). Pure code: no I/O, no secret.
 */
#ifndef KB_UUID_H
#define KB_UUID_H

#include <stddef.h>

/* "xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx" + NUL */
#define KB_UUID_STR_SIZE 37

/* keybroker's namespace for kb_uuid_key_version (a random version 4 UUID, fixed forever). */
#define KB_UUID_NAMESPACE "8d3c1f6e-2b7a-4e95-a0d4-5c6f1e2b9a73"

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits in any case) into 16 bytes. Returns 0
 * or KB_EINVAL. */
int kb_uuid_parse(const char *text, unsigned char out[16]);

/* Formats 16 bytes as lower-case text. */
void kb_uuid_format(const unsigned char uuid[16], char out[KB_UUID_STR_SIZE]);

/* The version 5 UUID of name[0..len) in namespace ns (RFC 4122 section 4.3, SHA-1 by OpenSSL).
 * Returns 0, or KB_EINVAL / KB_ENOMEM (OpenSSL failed). */
int kb_uuid_v5(const unsigned char ns[16], const void *name, size_t len,
               char out[KB_UUID_STR_SIZE]);

/* kb_uuid_v5(KB_UUID_NAMESPACE, tenant + "\n" + access_key_id). Returns 0 or KB_EINVAL (NULL or
 * empty input, a tenant holding '\n', names longer than 1024 bytes). */
int kb_uuid_key_version(const char *tenant, const char *access_key_id, char out[KB_UUID_STR_SIZE]);

/* A random (version 4) UUID, from libsodium's randombytes: ids that only need to be unique (a
 * rotation pass's id). */
void kb_uuid_v4(char out[KB_UUID_STR_SIZE]);

#endif
