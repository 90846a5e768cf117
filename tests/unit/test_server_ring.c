/* test_server_ring.c - the watch stream's event ring: seq assignment, eviction at capacity, which
 * positions can be resumed, and the epoch's form. */
#include "kb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/server_ring.h"

static void s_push(struct kb_srv_ring *r, const char *tenant)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "{\"seq\":%llu}\n", (unsigned long long)kb_srv_ring_next(r));
    char *line = malloc((size_t)n + 1);

    assert_non_null(line);
    memcpy(line, buf, (size_t)n + 1);
    kb_srv_ring_push(r, tenant, line, (size_t)n);
}

static void test_ring_seq_and_eviction(void **state)
{
    struct kb_srv_ring r;
    const struct kb_srv_ring_entry *e;

    assert_int_equal(kb_srv_ring_init(&r, 4, "0123456789abcdef"), 0);
    assert_int_equal(kb_srv_ring_next(&r), 1);
    /* empty: only "nothing seen" (0) resumes; nothing in the future does */
    assert_true(kb_srv_ring_resumable(&r, 0));
    assert_false(kb_srv_ring_resumable(&r, 1));
    assert_null(kb_srv_ring_at(&r, 1));
    for (int i = 0; i < 3; i++)
        s_push(&r, i % 2 ? "b" : "a");
    assert_int_equal(r.last, 3);
    assert_int_equal(kb_srv_ring_first(&r), 1);
    e = kb_srv_ring_at(&r, 2);
    assert_non_null(e);
    assert_int_equal(e->seq, 2);
    assert_string_equal(e->tenant, "b");
    assert_string_equal(e->line, "{\"seq\":2}\n");
    for (uint64_t s = 0; s <= 3; s++)
        assert_true(kb_srv_ring_resumable(&r, s));
    assert_false(kb_srv_ring_resumable(&r, 4));
    /* 7 events in 4 slots: 4..7 held, so since 3..7 resume, 0..2 do not */
    for (int i = 0; i < 4; i++)
        s_push(&r, "c");
    assert_int_equal(r.last, 7);
    assert_int_equal(kb_srv_ring_first(&r), 4);
    assert_null(kb_srv_ring_at(&r, 3));
    assert_string_equal(kb_srv_ring_at(&r, 4)->line, "{\"seq\":4}\n");
    assert_string_equal(kb_srv_ring_at(&r, 7)->line, "{\"seq\":7}\n");
    assert_null(kb_srv_ring_at(&r, 8));
    assert_false(kb_srv_ring_resumable(&r, 2));
    for (uint64_t s = 3; s <= 7; s++)
        assert_true(kb_srv_ring_resumable(&r, s));
    assert_false(kb_srv_ring_resumable(&r, 8));
    kb_srv_ring_cleanup(&r);
    kb_srv_ring_cleanup(&r); /* a zeroed ring is fine */
}

static void test_ring_init_and_epoch(void **state)
{
    struct kb_srv_ring r;
    char a[KB_PROTO_EPOCH_SIZE], b[KB_PROTO_EPOCH_SIZE];

    assert_int_equal(kb_srv_ring_init(&r, 0, "0123456789abcdef"), KB_EINVAL);
    assert_int_equal(kb_srv_ring_init(&r, 4, "0123"), KB_EINVAL);
    assert_int_equal(kb_srv_ring_init(&r, 4, NULL), KB_EINVAL);
    kb_srv_ring_new_epoch(a);
    kb_srv_ring_new_epoch(b);
    assert_true(kb_proto_epoch_valid(a, strlen(a)));
    assert_true(kb_proto_epoch_valid(b, strlen(b)));
    assert_string_not_equal(a, b);
    assert_int_equal(kb_srv_ring_init(&r, 1, a), 0);
    s_push(&r, "a");
    s_push(&r, "a");
    assert_int_equal(kb_srv_ring_first(&r), 2);
    assert_true(kb_srv_ring_resumable(&r, 1));
    assert_false(kb_srv_ring_resumable(&r, 0));
    kb_srv_ring_cleanup(&r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_seq_and_eviction),
        cmocka_unit_test(test_ring_init_and_epoch),
    };

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
