/* test_events.c - the event bus: delivery by kind mask in subscription order, the timestamp,
 * unsubscribing (also from inside a callback) and a NULL bus. */
#include "kb_test.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "events/events.h"

struct rec {
    char log[16][32];
    size_t n;
    struct kb_events *bus;
    struct kb_events_sub *drop; /* unsubscribed from inside the callback */
    time_t ts;
};

static void on_a(void *ctx, const struct kb_event *ev)
{
    struct rec *r = ctx;

    snprintf(r->log[r->n++], sizeof(r->log[0]), "a:%s:%s", kb_event_kind_name(ev->kind),
             ev->tenant != NULL ? ev->tenant : "-");
    r->ts = ev->ts;
    if (r->drop != NULL) {
        kb_events_unsubscribe(r->bus, r->drop);
        r->drop = NULL;
    }
}

static void on_b(void *ctx, const struct kb_event *ev)
{
    struct rec *r = ctx;

    snprintf(r->log[r->n++], sizeof(r->log[0]), "b:%s", kb_event_kind_name(ev->kind));
}

static void test_mask_and_order(void **state)
{
    struct kb_events *bus;
    struct kb_events_sub *a, *b;
    struct rec r = {0};
    struct kb_event step = {.kind = KB_EVENT_STEP, .tenant = "alpha"};
    struct kb_event prov = {.kind = KB_EVENT_PROVISIONED, .tenant = "beta", .ts = 42};

    assert_int_equal(kb_events_new(&bus), 0);
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK_ALL, on_a, &r, &a), 0);
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK(KB_EVENT_PROVISIONED), on_b, &r, &b),
                     0);
    kb_events_emit(bus, &step);
    assert_true(r.ts > 0); /* 0 means now */
    kb_events_emit(bus, &prov);
    assert_int_equal(r.ts, 42);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.log[0], "a:step:alpha");
    assert_string_equal(r.log[1], "a:provisioned:beta");
    assert_string_equal(r.log[2], "b:provisioned");
    kb_events_unsubscribe(bus, a);
    kb_events_emit(bus, &prov);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.log[3], "b:provisioned");
    kb_events_destroy(bus);
}

static void test_unsubscribe_inside(void **state)
{
    struct kb_events *bus;
    struct kb_events_sub *a, *b;
    struct rec r = {0};
    struct kb_event ev = {.kind = KB_EVENT_REVOKED, .tenant = "t"};

    assert_int_equal(kb_events_new(&bus), 0);
    r.bus = bus;
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK_ALL, on_a, &r, &a), 0);
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK_ALL, on_b, &r, &b), 0);
    r.drop = b; /* a unsubscribes b while the emit runs: b is not called, now or later */
    kb_events_emit(bus, &ev);
    kb_events_emit(bus, &ev);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.log[0], "a:revoked:t");
    assert_string_equal(r.log[1], "a:revoked:t");
    kb_events_destroy(bus);
}

static void test_edges(void **state)
{
    struct kb_events *bus;
    struct kb_events_sub *s;
    struct kb_event bad = {.kind = KB_EVENT_KIND_COUNT};
    struct rec r = {0};

    kb_events_emit(NULL, &bad); /* a module without a broker emits nowhere */
    kb_events_unsubscribe(NULL, NULL);
    kb_events_destroy(NULL);
    assert_int_equal(kb_events_new(&bus), 0);
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK_ALL, NULL, NULL, &s), KB_EINVAL);
    assert_int_equal(kb_events_subscribe(bus, KB_EVENT_MASK_ALL, on_b, &r, &s), 0);
    kb_events_emit(bus, &bad); /* an unknown kind reaches nobody */
    assert_int_equal(r.n, 0);
    assert_string_equal(kb_event_kind_name(KB_EVENT_AUTHZ), "authz");
    assert_string_equal(kb_event_kind_name(KB_EVENT_ADOPTED), "adopted");
    assert_string_equal(kb_event_kind_name(KB_EVENT_ROTATED), "rotated");
    assert_string_equal(kb_event_kind_name(KB_EVENT_KEY_DELETED), "key_deleted");
    assert_string_equal(kb_event_kind_name(KB_EVENT_KIND_COUNT), "unknown");
    kb_events_destroy(bus); /* frees the subscription still on it */
}

int main(int argc, char **argv)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_and_order),
        cmocka_unit_test(test_unsubscribe_inside),
        cmocka_unit_test(test_edges),
    };
    /* clang-format on */

    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
