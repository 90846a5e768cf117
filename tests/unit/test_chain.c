/*
 * test_chain.c - the audit chain's format and cryptography (broker/audit/chain.c), against values
 * computed independently of it.
 *
 * The expected values come from python3's hashlib and hmac and from the OpenSSL command line, not
 * from chain.c:
 *   S_PREV = bytes(range(32)), S_BODY = '{"seq":1,"epoch":0,"ts":"2026-12-04T03:28:01.123Z",
 *   "event":"x"' (a line's prefix; the body is S_BODY + "}")
 *   link:   hashlib.sha256(S_PREV + S_BODY + b"}").hexdigest()
 *   tag:    hmac.new(b"\x0b" * 32, link, hashlib.sha256).hexdigest()
 *   K_1:    openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:000102..1f
 *             -kdfopt hexinfo:$(printf 'keybroker audit epoch key' | xxd -p)0000000000000001 HKDF
 *           = RFC 5869 with no salt in Python: prk = hmac(b"\0"*32, K_0); hmac(prk, info+b"\1")
 *           (that Python HKDF gives RFC 5869 test case A.3's OKM)
 *   key id: hmac.new(K_0, b"keybroker audit key id", hashlib.sha256).digest()[:8].hex()
 *   lines:  (printf '\0%.0s' $(seq 32); printf '%s}' "$S_BODY") | openssl dgst -sha256 for h with
 *           prev h_0, and hmac.new(K_0, h, sha256) for the tag.
 */
#include "kb_test.h"

#include <string.h>

#include "audit/chain.h"
#include "common/err.h"

#define S_BODY "{\"seq\":1,\"epoch\":0,\"ts\":\"2026-12-04T03:28:01.123Z\",\"event\":\"x\""
#define S_LINK "434a456ee5a9caa3a2b93fcb2bbb0b20053d17e86c0324a9256424b7ba00ee65"
#define S_TAG  "230f2bac6bb25efe7bfc98fed04de76118e02f49aaf7662ddaef9589261b8cce"
#define S_K1   "efe4c55ff69c4504f076dcf896613ce2a9be743c5e395742de3ab044350c2faf"
#define S_K3   "064e6e1ae9964fdc53aeda6a465d204b8237612e4026e2401cfbf3378fbee497"
#define S_K2P40                                                                                    \
    "38b56f443e8f9a466e29751f3cdc7c1c9f6a48de38b26031ae951664ff0e51b4" /* from K_0, epoch 2^40 */
#define S_KEY_ID "e6d40e490f89b104"
#define S_LINE_H "c530f4547cf8194e4c195ccc6fd93047231bd1a73d6ee4590e349b167e2b8f22"
#define S_LINE_T "571ec45bfb399bf55bc6121081058bdaf42d47b0b2560ec9a30d42dce74bfe7c"

static void s_k0(uint8_t k[KB_AUDIT_KEY_LEN])
{
    for (int i = 0; i < KB_AUDIT_KEY_LEN; i++)
        k[i] = (uint8_t)i;
}

static void s_hex_is(const uint8_t *bytes, const char *want)
{
    char hex[KB_AUDIT_HEX_LEN + 1];

    kb_audit_hex(bytes, KB_AUDIT_HASH_LEN, hex);
    assert_string_equal(hex, want);
}

static void test_link_and_tag(void **state)
{
    uint8_t prev[KB_AUDIT_HASH_LEN], h[KB_AUDIT_HASH_LEN], key[KB_AUDIT_KEY_LEN], t[32];

    (void)state;
    s_k0(prev);
    assert_int_equal(kb_audit_link(prev, S_BODY, strlen(S_BODY), "}", h), 0);
    s_hex_is(h, S_LINK);
    /* the close is only appended: the same bytes in one piece give the same h */
    assert_int_equal(kb_audit_link(prev, S_BODY "}", strlen(S_BODY) + 1, NULL, t), 0);
    assert_memory_equal(h, t, sizeof(t));
    memset(key, 0x0b, sizeof(key));
    assert_int_equal(kb_audit_tag(key, h, t), 0);
    s_hex_is(t, S_TAG);
    assert_int_equal(kb_audit_check_tag(key, h, t), 1);
    t[31] ^= 1;
    assert_int_equal(kb_audit_check_tag(key, h, t), 0);
}

static void test_key_evolution_and_id(void **state)
{
    uint8_t k[KB_AUDIT_KEY_LEN], out[KB_AUDIT_KEY_LEN];
    char id[KB_AUDIT_KEY_ID_LEN + 1];

    (void)state;
    s_k0(k);
    assert_int_equal(kb_audit_key_id(k, id), 0);
    assert_string_equal(id, S_KEY_ID);
    assert_int_equal(kb_audit_key_next(k, 1, out), 0);
    s_hex_is(out, S_K1);
    assert_int_equal(kb_audit_key_next(k, (uint64_t)1 << 40, out), 0); /* be64, not be32 */
    s_hex_is(out, S_K2P40);
    /* in place, step by step: K_1, K_2, K_3 */
    for (uint64_t e = 1; e <= 3; e++)
        assert_int_equal(kb_audit_key_next(k, e, k), 0);
    s_hex_is(k, S_K3);
    assert_int_equal(kb_audit_key_next(k, 0, out), KB_EINVAL);
}

static void test_make_and_split_lines(void **state)
{
    static const char body[] = S_BODY "}";
    static const char want_tagged[] = S_BODY ",\"h\":\"" S_LINE_H "\",\"tag\":\"" S_LINE_T "\"}\n";
    static const char want_plain[] = S_BODY ",\"h\":\"" S_LINE_H "\"}\n";
    uint8_t h0[KB_AUDIT_HASH_LEN] = {0}, k[KB_AUDIT_KEY_LEN], h[KB_AUDIT_HASH_LEN];
    struct kb_audit_line_parts p;
    char line[512];
    size_t len = 0;

    (void)state;
    s_k0(k);
    assert_int_equal(kb_audit_make_line(h0, k, body, strlen(body), line, sizeof(line), &len, h), 0);
    assert_int_equal(len, strlen(want_tagged));
    assert_memory_equal(line, want_tagged, len);
    s_hex_is(h, S_LINE_H);
    assert_int_equal(kb_audit_split_line(line, len - 1, &p), 0);
    assert_int_equal(p.mode, KB_AUDIT_MODE_HMAC);
    assert_int_equal(p.body_len, strlen(S_BODY));
    assert_memory_equal(p.h, h, sizeof(h));
    assert_int_equal(kb_audit_check_link(h0, line, &p), 1);
    assert_int_equal(kb_audit_check_tag(k, p.h, p.tag), 1);
    h[0] ^= 1;
    assert_int_equal(kb_audit_check_link(h, line, &p), 0);
    /* sha256: no tag; the body's own buffer may be the output */
    memcpy(line, body, sizeof(body));
    assert_int_equal(
        kb_audit_make_line(h0, NULL, line, strlen(body), line, sizeof(line), &len, NULL), 0);
    assert_memory_equal(line, want_plain, strlen(want_plain));
    assert_int_equal(kb_audit_split_line(line, len - 1, &p), 0);
    assert_int_equal(p.mode, KB_AUDIT_MODE_SHA256);
    /* refusals */
    assert_int_equal(kb_audit_make_line(h0, k, "{x", 2, line, sizeof(line), &len, NULL), KB_EINVAL);
    assert_int_equal(kb_audit_make_line(h0, k, body, strlen(body), line, 100, &len, NULL),
                     KB_ETOOBIG);
    assert_int_equal(kb_audit_split_line(line, 10, &p), KB_EPARSE);
    assert_int_equal(kb_audit_split_line("{\"h\":\"00\"}", 10, &p), KB_EPARSE);
    assert_int_equal(kb_audit_suffix_len(KB_AUDIT_MODE_HMAC), 145);
    assert_int_equal(kb_audit_suffix_len(KB_AUDIT_MODE_SHA256), 72);
}

static void test_names_and_hex(void **state)
{
    enum kb_audit_mode m;
    uint8_t b[3];
    char hex[7];

    (void)state;
    assert_string_equal(kb_audit_mode_name(KB_AUDIT_MODE_HMAC), "hmac-sha256");
    assert_string_equal(kb_audit_mode_name(KB_AUDIT_MODE_SHA256), "sha256");
    assert_int_equal(kb_audit_mode_from_name("hmac-sha256", 11, &m), 0);
    assert_int_equal(m, KB_AUDIT_MODE_HMAC);
    assert_int_equal(kb_audit_mode_from_name("sha256", 6, &m), 0);
    assert_int_equal(m, KB_AUDIT_MODE_SHA256);
    assert_int_equal(kb_audit_mode_from_name("sha25", 5, &m), KB_EINVAL);
    assert_int_equal(kb_audit_mode_from_name("HMAC-SHA256", 11, &m), KB_EINVAL);
    kb_audit_hex((const uint8_t *)"\x00\xab\xff", 3, hex);
    assert_string_equal(hex, "00abff");
    assert_int_equal(kb_audit_unhex("00ABff", 6, b, 3), 0);
    assert_memory_equal(b, "\x00\xab\xff", 3);
    assert_int_equal(kb_audit_unhex("00abf", 5, b, 3), KB_EPARSE);
    assert_int_equal(kb_audit_unhex("00abfg", 6, b, 3), KB_EPARSE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_and_tag),
        cmocka_unit_test(test_key_evolution_and_id),
        cmocka_unit_test(test_make_and_split_lines),
        cmocka_unit_test(test_names_and_hex),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
