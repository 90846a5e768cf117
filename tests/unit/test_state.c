/*
 * test_state.c - the audit state file's text (broker/audit/state.c): the exact text of a known
 * state (written out by hand from state.h), parse and format round trips, a new chain's first
 * state, and malformed texts refused with the field named - never its value.
 */
#include "kb_test.h"

#include <sodium.h>
#include <string.h>

#include "audit/state.h"
#include "common/err.h"
#include "common/secret.h"

#define S_ID  "00112233445566778899aabbccddeeff"
#define S_KID "e6d40e490f89b104" /* the key id of bytes(range(32)) (test_chain.c) */
#define S_H   "1111111111111111111111111111111111111111111111111111111111111111"
#define S_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define S_TEXT                                                                                     \
    "{\"v\":1,\"chain\":\"hmac-sha256\",\"chain_id\":\"" S_ID "\",\"key_id\":\"" S_KID             \
    "\",\"epoch\":3,\"epoch_started_ms\":1796354881123,\"seq\":42,\"h\":\"" S_H                    \
    "\",\"key\":\"" S_KEY "\"}\n"

static int s_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_known_text_round_trip(void **state)
{
    struct kb_audit_state st;
    struct kb_secret *text = NULL;
    uint8_t key[KB_AUDIT_KEY_LEN];
    char why[160];
    const char *t;
    size_t len = 0;

    (void)state;
    assert_int_equal(kb_audit_state_parse(S_TEXT, strlen(S_TEXT), &st, why, sizeof(why)), 0);
    assert_int_equal(st.mode, KB_AUDIT_MODE_HMAC);
    assert_string_equal(st.chain_id, S_ID);
    assert_string_equal(st.key_id, S_KID);
    assert_int_equal(st.epoch, 3);
    assert_int_equal(st.epoch_started_ms, 1796354881123);
    assert_int_equal(st.seq, 42);
    assert_int_equal(st.h[0], 0x11);
    for (int i = 0; i < KB_AUDIT_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    assert_int_equal(kb_secret_equals(st.key, key, sizeof(key)), 1);
    assert_int_equal(kb_audit_state_format(&st, &text), 0);
    t = kb_secret_open(text, &len);
    assert_int_equal(len, strlen(S_TEXT));
    assert_memory_equal(t, S_TEXT, len);
    kb_secret_close(text);
    kb_secret_destroy(text);
    kb_audit_state_cleanup(&st);
    assert_null(st.key);
    /* uppercase hex is read, and written back lowercase */
    {
        char upper[sizeof(S_TEXT)];
        char *k;

        memcpy(upper, S_TEXT, sizeof(upper));
        k = strstr(upper, "\"key\":\"") + 7;
        k[21] = 'A';
        k[20] = '0';
        assert_int_equal(kb_audit_state_parse(upper, strlen(upper), &st, why, sizeof(why)), 0);
        assert_int_equal(kb_audit_state_format(&st, &text), 0);
        t = kb_secret_open(text, &len);
        assert_non_null(memmem(t, len, "0a0b", 4));
        kb_secret_close(text);
        kb_secret_destroy(text);
        kb_audit_state_cleanup(&st);
    }
}

static void test_init(void **state)
{
    struct kb_audit_state st, back;
    struct kb_secret *text = NULL;
    uint8_t k0[KB_AUDIT_KEY_LEN];
    char why[160];
    const char *t;
    size_t len = 0;

    (void)state;
    for (int i = 0; i < KB_AUDIT_KEY_LEN; i++)
        k0[i] = (uint8_t)i;
    assert_int_equal(kb_audit_state_init(&st, KB_AUDIT_MODE_HMAC, k0, 1234), 0);
    assert_int_equal(strlen(st.chain_id), KB_AUDIT_CHAIN_ID_LEN);
    assert_int_equal(strspn(st.chain_id, "0123456789abcdef"), KB_AUDIT_CHAIN_ID_LEN);
    assert_string_equal(st.key_id, S_KID);
    assert_int_equal(st.epoch, 0);
    assert_int_equal(st.seq, 0);
    assert_int_equal(st.epoch_started_ms, 1234);
    for (int i = 0; i < KB_AUDIT_HASH_LEN; i++)
        assert_int_equal(st.h[i], 0);
    assert_int_equal(kb_secret_equals(st.key, k0, sizeof(k0)), 1);
    assert_int_equal(kb_audit_state_format(&st, &text), 0);
    t = kb_secret_open(text, &len);
    assert_int_equal(kb_audit_state_parse(t, len, &back, why, sizeof(why)), 0);
    kb_secret_close(text);
    kb_secret_destroy(text);
    assert_string_equal(back.chain_id, st.chain_id);
    assert_int_equal(kb_secret_equals(back.key, k0, sizeof(k0)), 1);
    kb_audit_state_cleanup(&back);
    kb_audit_state_cleanup(&st);
    /* two chains never share an id; sha256 has no key and no key id */
    assert_int_equal(kb_audit_state_init(&st, KB_AUDIT_MODE_SHA256, NULL, 0), 0);
    assert_int_equal(kb_audit_state_init(&back, KB_AUDIT_MODE_SHA256, NULL, 0), 0);
    assert_string_not_equal(st.chain_id, back.chain_id);
    assert_null(st.key);
    assert_int_equal(kb_audit_state_format(&st, &text), 0);
    t = kb_secret_open(text, &len);
    assert_null(memmem(t, len, "key", 3));
    kb_secret_close(text);
    kb_secret_destroy(text);
    /* hmac without a key cannot be written, nor made */
    st.mode = KB_AUDIT_MODE_HMAC;
    assert_int_equal(kb_audit_state_format(&st, &text), KB_EINVAL);
    assert_null(text);
    assert_int_equal(kb_audit_state_init(&back, KB_AUDIT_MODE_HMAC, NULL, 0), KB_EINVAL);
}

static void test_refused_with_the_field_named(void **state)
{
    static const struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"v\":1", "\"v\":2", "v:"},
        {"\"chain\":\"hmac-sha256\"", "\"chain\":\"md5\"", "chain:"},
        {"\"chain_id\":\"0011", "\"chain_id\":\"0x11", "chain_id:"},
        {"\"chain_id\":\"" S_ID "\"", "\"chain_id\":\"" S_ID "00\"", "chain_id:"},
        {"\"key_id\":\"e6d4", "\"key_id\":\"e6d", "key_id:"},
        {"\"epoch\":3", "\"epoch\":-3", "epoch:"},
        {"\"epoch_started_ms\":1796354881123", "\"epoch_started_ms\":\"x\"", "epoch_started_ms:"},
        {"\"seq\":42", "\"seq\":4.2", "seq:"},
        {"\"h\":\"1111", "\"h\":\"111", "h:"},
        {"\"key\":\"0001", "\"key\":\"zz01", "key:"},
        {",\"key\":\"" S_KEY "\"", "", "key:"},
        {"{", "[", "not one JSON object"},
        {"}\n", "", "not one JSON object"},
    };
    struct kb_audit_state st;
    char text[sizeof(S_TEXT) + 64], why[160];
    char big[KB_AUDIT_STATE_MAX + 2];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *at = strstr(S_TEXT, cases[i].from);

        assert_non_null(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - S_TEXT), S_TEXT, cases[i].to,
                 at + strlen(cases[i].from));
        why[0] = '\0';
        if (kb_audit_state_parse(text, strlen(text), &st, why, sizeof(why)) != KB_EPARSE ||
            strstr(why, cases[i].field) == NULL)
            fail_msg("case %zu: want \"%s\" in \"%s\"", i, cases[i].field, why);
        assert_null(st.key);
        assert_null(strstr(why, "0001020304")); /* never the key */
    }
    memset(big, ' ', sizeof(big));
    assert_int_equal(kb_audit_state_parse(big, sizeof(big), &st, why, sizeof(why)), KB_EPARSE);
    assert_non_null(strstr(why, "larger"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_text_round_trip),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_refused_with_the_field_named),
    };

    return KB_TEST_RUN(argc, argv, tests, s_setup, NULL);
}
