/*
 * test_verify_anchor.c - anchor objects (broker/audit/verify_anchor.c): the key name and body the
 * writer makes, the strict parser, and what the verifier concludes from the listed versions
 * (an anchor that disagrees with the log, a key with a second version or a delete marker, a log
 * cut before an anchor).
 */
#include "kb_test.h"

#include "common/err.h"
#include "kb_verify_test.h"

#define S_CHAIN "0123456789abcdef0123456789abcdef"
#define S_H     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define S_TAG   "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define S_BODY                                                                                     \
    "{\"v\":1,\"chain_id\":\"" S_CHAIN "\",\"file\":\"audit.log\",\"seq\":42,\"epoch\":3,"         \
    "\"h\":\"" S_H "\",\"tag\":\"" S_TAG "\",\"ts\":\"2026-12-04T03:28:01.123Z\"}"

static void test_key_names(void **state)
{
    char key[128], id[KB_AUDIT_CHAIN_ID_LEN + 1];
    uint64_t seq = 0;

    (void)state;
    assert_int_equal(kb_audit_anchor_key("audit/anchors/", S_CHAIN, 42, key, sizeof(key)), 0);
    assert_string_equal(key, "audit/anchors/" S_CHAIN "/00000000000000000042.json");
    assert_int_equal(kb_audit_anchor_key_parse("audit/anchors/", key, strlen(key), id, &seq), 0);
    assert_string_equal(id, S_CHAIN);
    assert_int_equal(seq, 42);
    assert_int_equal(kb_audit_anchor_key(NULL, S_CHAIN, UINT64_MAX, key, sizeof(key)), 0);
    assert_string_equal(key, S_CHAIN "/18446744073709551615.json");
    assert_int_equal(kb_audit_anchor_key_parse("", key, strlen(key), id, &seq), 0);
    assert_true(seq == UINT64_MAX);
    assert_int_equal(kb_audit_anchor_key("p/", S_CHAIN, 1, key, 20), KB_ETOOBIG);
    assert_int_equal(kb_audit_anchor_key("p/", "0123456789ABCDEF0123456789abcdef", 1, key, 99),
                     KB_EINVAL);
    assert_int_equal(kb_audit_anchor_key("p/", "short", 1, key, 99), KB_EINVAL);
    /* names that are not an anchor's */
    {
        static const char *const bad[] = {
            "q/" S_CHAIN "/00000000000000000042.json", /* another prefix */
            "p/" S_CHAIN "/0000000000000000042.json",  /* 19 digits */
            "p/" S_CHAIN "/0000000000000000004x.json", /* not a digit */
            "p/" S_CHAIN "/00000000000000000042.jsox", /* suffix */
            "p/0123456789ABCDEF0123456789abcdef/00000000000000000042.json",
            "p/" S_CHAIN "/99999999999999999999.json", /* beyond uint64 */
            "p/" S_CHAIN "x00000000000000000042.json",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            assert_int_equal(kb_audit_anchor_key_parse("p/", bad[i], strlen(bad[i]), id, &seq),
                             KB_EPARSE);
    }
}

static void test_body_format_and_parse(void **state)
{
    struct kb_audit_anchor a, b;
    char body[KB_AUDIT_ANCHOR_BODY_MAX], why[160];
    size_t len = 0;

    (void)state;
    assert_int_equal(kb_audit_anchor_parse(S_BODY, strlen(S_BODY), &a, why, sizeof(why)), 0);
    assert_string_equal(a.chain_id, S_CHAIN);
    assert_string_equal(a.file, "audit.log");
    assert_int_equal(a.seq, 42);
    assert_int_equal(a.epoch, 3);
    assert_true(a.has_tag);
    assert_int_equal(a.h[1], 0x11);
    assert_int_equal(a.tag[0], 0xff);
    assert_string_equal(a.ts, "2026-12-04T03:28:01.123Z");
    assert_int_equal(kb_audit_anchor_body(&a, body, sizeof(body), &len), 0);
    assert_int_equal(len, strlen(S_BODY));
    assert_memory_equal(body, S_BODY, len);
    /* a trailing newline is allowed; sha256 anchors have no tag */
    a.has_tag = false;
    assert_int_equal(kb_audit_anchor_body(&a, body, sizeof(body), &len), 0);
    assert_null(strstr(body, "tag"));
    body[len++] = '\n';
    assert_int_equal(kb_audit_anchor_parse(body, len, &b, why, sizeof(why)), 0);
    assert_false(b.has_tag);
    assert_int_equal(kb_audit_anchor_body(&a, body, 100, &len), KB_ETOOBIG);
    memcpy(a.file, "a\"b", 4);
    assert_int_equal(kb_audit_anchor_body(&a, body, sizeof(body), &len), KB_EINVAL);
}

static void test_body_refused(void **state)
{
    static const struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"v\":1", "\"v\":2", "v:"},
        {"\"chain_id\":\"0123", "\"chain_id\":\"X123", "chain_id:"},
        {"\"file\":\"audit.log\"", "\"file\":\"a/b\"", "file:"},
        {"\"file\":\"audit.log\"", "\"file\":\"\"", "file:"},
        {"\"seq\":42", "\"seq\":-1", "seq:"},
        {"\"seq\":42", "\"seq\":\"42\"", "seq:"},
        {"\"epoch\":3", "\"epoch\":3.5", "epoch:"},
        {"\"h\":\"0011", "\"h\":\"0A11", "h:"},
        {"\"tag\":\"ffee", "\"tag\":\"ffe", "tag:"},
        {"\"ts\":\"2026-12-04T03:28:01.123Z\"", "\"ts\":\"2026-12-04T03:28:01Z\"", "ts:"},
        {"\"v\":1,", "\"v\":1,\"x\":0,", "one form"}, /* another member */
        {"\"v\":1,", "\"v\":1,\"v\":1,", "one form"}, /* a duplicate */
        {"\"seq\":42", "\"seq\": 42", "one form"},    /* whitespace */
        {"\"seq\":42", "\"seq\":42.0", "seq:"},       /* another spelling */
        {"\"epoch\":3,", "", "epoch:"},               /* missing */
        {"}", "}x", "not one JSON object"},           /* trailing bytes */
        {"{", "[", "not one JSON object"},
    };
    struct kb_audit_anchor a;
    char body[KB_AUDIT_ANCHOR_BODY_MAX * 2], why[160];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *at = strstr(S_BODY, cases[i].from);
        size_t pre = (size_t)(at - S_BODY);

        assert_non_null(at);
        snprintf(body, sizeof(body), "%.*s%s%s", (int)pre, S_BODY, cases[i].to,
                 at + strlen(cases[i].from));
        why[0] = '\0';
        if (kb_audit_anchor_parse(body, strlen(body), &a, why, sizeof(why)) != KB_EPARSE ||
            strstr(why, cases[i].field) == NULL)
            fail_msg("case %zu (%s): want \"%s\" in \"%s\"", i, body, cases[i].field, why);
    }
    memset(body, ' ', KB_AUDIT_ANCHOR_BODY_MAX + 1);
    assert_int_equal(
        kb_audit_anchor_parse(body, KB_AUDIT_ANCHOR_BODY_MAX + 1, &a, why, sizeof(why)), KB_EPARSE);
    assert_non_null(strstr(why, "longer"));
}

/* A chain and two anchors on it; the caller mutates the anchors or the set. */
static void s_anchored(struct tl_gen *g, struct tl_set *set, struct vt_anchors *an)
{
    size_t total;

    tl_gen_chain(g, set, KB_AUDIT_MODE_HMAC, vt_seed ^ 31, 6, 2, 10, 30);
    total = tl_total(set);
    memset(an, 0, sizeof(*an));
    tl_anchor_of(g, set, total / 3, &an->a[an->n++]);
    tl_anchor_of(g, set, total * 2 / 3, &an->a[an->n++]);
}

static void s_check(struct tl_gen *g, struct tl_set *set, struct vt_anchors *an, bool key,
                    enum kb_audit_reason want, uint64_t seq, const char *detail)
{
    struct vt_run run;

    vt_verify(&run, g, set, key, an);
    if (run.r.reason != want || (seq != 0 && run.r.seq != seq) ||
        (detail != NULL && strstr(run.r.detail, detail) == NULL))
        fail_msg("want %s at seq %" PRIu64 " (\"%s\"), got %s at seq %" PRIu64 ": %s",
                 kb_audit_reason_name(want), seq, detail ? detail : "",
                 kb_audit_reason_name(run.r.reason), run.r.seq, run.r.detail);
    kb_audit_verify_destroy(run.v);
}

static void test_anchor_findings(void **state)
{
    struct tl_gen g;
    struct tl_set set, cut;
    struct vt_anchors an;
    uint64_t s1;

    (void)state;
    s_anchored(&g, &set, &an);
    s1 = an.a[0].seq;
    s_check(&g, &set, &an, true, KB_AUDIT_OK, 0, NULL);
    an.a[0].h[5] ^= 1;
    s_check(&g, &set, &an, false, KB_AUDIT_ANCHOR_MISMATCH, s1, "has another h");
    an.a[0].h[5] ^= 1;
    an.a[0].tag[0] ^= 1;
    s_check(&g, &set, &an, true, KB_AUDIT_ANCHOR_MISMATCH, s1, "another tag");
    an.a[0].tag[0] ^= 1;
    an.a[0].has_tag = false;
    s_check(&g, &set, &an, true, KB_AUDIT_ANCHOR_MISMATCH, s1, "another tag");
    an.a[0].has_tag = true;
    an.a[0].epoch++;
    s_check(&g, &set, &an, true, KB_AUDIT_ANCHOR_MISMATCH, s1, "says epoch");
    an.a[0].epoch--;
    /* a second version of a key, a delete marker: rewritten, reported at the end */
    an.second_version = true;
    s_check(&g, &set, &an, true, KB_AUDIT_ANCHOR_REWRITTEN, 0, "more than one version");
    an.second_version = false;
    an.delete_marker = true;
    s_check(&g, &set, &an, true, KB_AUDIT_ANCHOR_REWRITTEN, 0, "delete marker");
    /* a cut log with its last anchor deleted: the deleted version still shows the cut */
    tl_set_copy(&cut, &set);
    while (tl_seq(tl_at(&cut, tl_total(&cut) - 1)) >= an.a[1].seq)
        tl_delete(&cut, tl_total(&cut) - 1);
    s_check(&g, &cut, &an, true, KB_AUDIT_TRUNCATED_BEFORE_ANCHOR, an.a[1].seq - 0, "were removed");
    {
        struct vt_run run;

        vt_verify(&run, &g, &cut, true, &an);
        assert_int_equal(run.r.anchors_rewritten, 1);
        assert_int_equal(run.r.seq, an.a[1].seq);
        assert_int_equal(run.r.line, cut.f[cut.nf - 1].n + 1);
        kb_audit_verify_destroy(run.v);
    }
    tl_set_free(&cut);
    an.delete_marker = false;
    tl_set_free(&set);
}

static void test_anchor_objects_refused(void **state)
{
    struct tl_gen g;
    struct tl_set set;
    struct vt_anchors an;
    struct kb_audit_verify_opts o = {.anchor_prefix = VT_PREFIX};
    struct vt_run run;
    char key[256], body[KB_AUDIT_ANCHOR_BODY_MAX];
    size_t len = 0;

    (void)state;
    s_anchored(&g, &set, &an);
    /* a body that is not an anchor, under this chain's key of a verified seq */
    assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
    assert_int_equal(kb_audit_anchor_key(VT_PREFIX, g.chain_id, an.a[0].seq, key, sizeof(key)), 0);
    assert_int_equal(kb_audit_verify_add_anchor_object(run.v, key, "v1", false, "{}", 2), 0);
    vt_feed(run.v, &set);
    assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
    assert_int_equal(run.r.reason, KB_AUDIT_ANCHOR_MISMATCH);
    assert_int_equal(run.r.seq, an.a[0].seq);
    assert_non_null(strstr(run.r.detail, "is not an anchor"));
    kb_audit_verify_destroy(run.v);
    /* a body of another seq than its key's; an unrelated object under the prefix */
    assert_int_equal(kb_audit_verify_new(&o, &run.v), 0);
    assert_int_equal(kb_audit_anchor_body(&an.a[1], body, sizeof(body), &len), 0);
    assert_int_equal(kb_audit_verify_add_anchor_object(run.v, key, "v1", false, body, len), 0);
    assert_int_equal(
        kb_audit_verify_add_anchor_object(run.v, VT_PREFIX "README", "v1", false, "hi", 2), 0);
    vt_feed(run.v, &set);
    assert_int_equal(kb_audit_verify_finish(run.v, &run.r), 0);
    assert_int_equal(run.r.reason, KB_AUDIT_ANCHOR_MISMATCH);
    assert_non_null(strstr(run.r.detail, "not its key's"));
    assert_int_equal(run.r.anchors_other_chains, 1);
    kb_audit_verify_destroy(run.v);
    /* an anchor older than the files given: counted, not checkable */
    for (size_t j = 0; j < set.f[0].n; j++)
        free(set.f[0].l[j].s);
    set.f[0].n = 0;
    vt_verify(&run, &g, &set, true, &an);
    assert_int_equal(run.r.reason, KB_AUDIT_OK);
    assert_int_equal(run.r.anchors_before_start, an.a[0].seq < run.r.first_seq ? 1 : 0);
    kb_audit_verify_destroy(run.v);
    tl_set_free(&set);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_body_format_and_parse),
        cmocka_unit_test(test_body_refused),
        cmocka_unit_test(test_anchor_findings),
        cmocka_unit_test(test_anchor_objects_refused),
    };

    return KB_TEST_RUN(argc, argv, tests, vt_setup, NULL);
}
