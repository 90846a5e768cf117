/*
 * policy.c - builds keybroker's IAM and bucket policies and compares policy documents.
 *
 * Documents are built as json-c objects (json-c keeps members in insertion order, which gives
 * the fixed member order) and serialized compactly without escaping '/', so identical input
 * gives identical bytes. The comparison is semantic, for reconcile: IAM returns a policy
 * URL-decoded and possibly reformatted, with lists reordered or collapsed to a single string.
 * This file must never do I/O, and never emit a policy whose bucket or prefix holds an IAM
 * wildcard or variable character.
 */
#include "config/policy.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

#define S_VERSION "2012-10-17"
/* Node pairs kb_policy_equal may visit before it gives up (KB_ETOOBIG). */
#define S_COMPARE_BUDGET 10000000u

static const char *const s_read_objects[] = {"s3:GetObject", "s3:GetObjectVersion",
                                             "s3:GetObjectAttributes"};
static const char *const s_write_objects[] = {
    "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"};

const char *kb_policy_partition(const char *region)
{
    static const struct {
        const char *prefix;
        const char *partition;
    } map[] = {{"cn-", "aws-cn"},         {"us-gov-", "aws-us-gov"}, {"us-isob-", "aws-iso-b"},
               {"us-isof-", "aws-iso-f"}, {"us-iso-", "aws-iso"},    {"eu-isoe-", "aws-iso-e"},
               {"eusc-", "aws-eusc"}};

    for (size_t i = 0; region != NULL && i < sizeof map / sizeof *map; i++) {
        if (strncmp(region, map[i].prefix, strlen(map[i].prefix)) == 0) {
            return map[i].partition;
        }
    }
    return "aws";
}

static bool s_partition_ok(const char *p)
{
    size_t len = p != NULL ? strlen(p) : 0;

    if (len < 3 || len > 32) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-')) {
            return false;
        }
    }
    return true;
}

/* Text that may go into a resource ARN: no IAM wildcard or variable, no control character. */
static bool s_arn_text_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '*' || *s == '?' || *s == '$' || (unsigned char)*s < 0x20 || *s == 0x7F) {
            return false;
        }
    }
    return true;
}

static char *s_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *s_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A JSON array of the n strings; NULL when out of memory. */
static struct json_object *s_strings(const char *const *v, size_t n)
{
    struct json_object *a = json_object_new_array_ext((int)n);

    for (size_t i = 0; a != NULL && i < n; i++) {
        struct json_object *s = json_object_new_string(v[i]);
        if (s == NULL || json_object_array_add(a, s) != 0) {
            json_object_put(s);
            json_object_put(a);
            a = NULL;
        }
    }
    return a;
}

/* Adds key: val to obj, taking ownership of val. Returns false (val released) on failure. */
static bool s_add(struct json_object *obj, const char *key, struct json_object *val)
{
    if (obj == NULL || val == NULL || json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

/* One statement in the fixed member order; takes ownership of principal and condition (NULL:
 * none), actions and resources (NULL: out of memory). Returns false when out of memory. */
static bool s_statement(struct json_object *list, const char *sid, const char *effect,
                        struct json_object *principal, struct json_object *actions,
                        struct json_object *resources, struct json_object *condition)
{
    static const char *const names[] = {"Sid",    "Effect",   "Principal",
                                        "Action", "Resource", "Condition"};
    struct json_object *st = json_object_new_object();
    struct json_object *members[] = {json_object_new_string(sid),
                                     json_object_new_string(effect),
                                     principal,
                                     actions,
                                     resources,
                                     condition};
    bool ok = st != NULL;

    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        bool optional = i == 2 || i == 5;
        if (optional && members[i] == NULL) {
            continue;
        }
        if (ok) {
            ok = s_add(st, names[i], members[i]); /* releases the member on failure */
        } else {
            json_object_put(members[i]);
        }
    }
    if (ok && json_object_array_add(list, st) == 0) {
        return true;
    }
    json_object_put(st);
    return false;
}

/* {"<op>": {"<key>": [values...]}}, or NULL when out of memory. */
static struct json_object *s_condition(const char *op, const char *key, const char *const *values,
                                       size_t n)
{
    struct json_object *cond = json_object_new_object();
    struct json_object *inner = json_object_new_object();

    if (!s_add(inner, key, s_strings(values, n))) {
        json_object_put(inner);
        json_object_put(cond);
        return NULL;
    }
    if (!s_add(cond, op, inner)) {
        return NULL; /* s_add released inner; cond is NULL */
    }
    return cond;
}

/* The ARNs and prefix a tenant's statements are built from. */
struct s_arns {
    char *bucket;     /* arn:P:s3:::BUCKET */
    char *objects;    /* arn:P:s3:::BUCKET/PREFIX* */
    char *prefix_any; /* PREFIX* */
    const char *prefix;
};

static bool s_read_statements(struct json_object *list, const struct s_arns *r, bool write)
{
    const char *objects[sizeof s_read_objects / sizeof *s_read_objects +
                        sizeof s_write_objects / sizeof *s_write_objects];
    const char *bucket_actions[] = {"s3:GetBucketLocation", "s3:ListBucketMultipartUploads"};
    const char *list_action = "s3:ListBucket";
    const char *prefixes[] = {r->prefix, r->prefix_any};
    struct json_object *cond = NULL;
    size_t n = 0;

    for (size_t i = 0; i < sizeof s_read_objects / sizeof *s_read_objects; i++) {
        objects[n++] = s_read_objects[i];
    }
    for (size_t i = 0; write && i < sizeof s_write_objects / sizeof *s_write_objects; i++) {
        objects[n++] = s_write_objects[i];
    }
    if (r->prefix[0] != '\0' &&
        (cond = s_condition("StringLike", "s3:prefix", prefixes, 2)) == NULL) {
        return false;
    }
    if (!s_statement(list, "KeybrokerObjects", "Allow", NULL, s_strings(objects, n),
                     s_strings((const char *const *)&r->objects, 1), NULL)) {
        json_object_put(cond);
        return false;
    }
    return s_statement(list, "KeybrokerList", "Allow", NULL, s_strings(&list_action, 1),
                       s_strings((const char *const *)&r->bucket, 1), cond) &&
           s_statement(list, "KeybrokerBucket", "Allow", NULL,
                       s_strings(bucket_actions, write ? 2 : 1),
                       s_strings((const char *const *)&r->bucket, 1), NULL);
}

static bool s_tenant_statements(struct json_object *list, const struct kb_tenant *t,
                                const struct s_arns *r, const char *all_objects)
{
    const char *both[] = {r->bucket, r->objects};
    const char *admin_res[] = {r->bucket, all_objects};
    const char *star = "s3:*";

    switch (t->access) {
    case KB_ACCESS_READ_ONLY:
        return s_read_statements(list, r, false);
    case KB_ACCESS_READ_WRITE:
        return s_read_statements(list, r, true);
    case KB_ACCESS_ADMIN:
        return s_statement(list, "KeybrokerAdmin", "Allow", NULL, s_strings(&star, 1),
                           s_strings(admin_res, 2), NULL);
    case KB_ACCESS_CUSTOM:
        return s_statement(list, "KeybrokerCustom", "Allow", NULL,
                           s_strings((const char *const *)t->actions, t->nactions),
                           s_strings(both, 2), NULL);
    }
    return false;
}

/* Serializes {"Version": ..., "Statement": list} (takes list) into a malloc'd string. */
static char *s_document(struct json_object *list)
{
    struct json_object *doc = json_object_new_object();
    const char *text;
    char *out;

    if (!s_add(doc, "Version", json_object_new_string(S_VERSION))) {
        json_object_put(list);
        json_object_put(doc);
        return NULL;
    }
    if (!s_add(doc, "Statement", list)) {
        json_object_put(doc);
        return NULL;
    }
    text = json_object_to_json_string_ext(doc,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    out = text != NULL ? strdup(text) : NULL;
    json_object_put(doc);
    return out;
}

static int s_check_tenant(const struct kb_tenant *t, const char *partition, char *msg,
                          size_t msglen)
{
    if (t == NULL || t->bucket == NULL || t->bucket[0] == '\0') {
        return kb_err_msg(msg, msglen, KB_EINVAL, "the tenant has no bucket");
    }
    if (!s_partition_ok(partition)) {
        return kb_err_msg(msg, msglen, KB_EINVAL, "the partition is not valid");
    }
    if (!s_arn_text_ok(t->bucket) || (t->prefix != NULL && !s_arn_text_ok(t->prefix))) {
        return kb_err_msg(msg, msglen, KB_EINVAL,
                          "the bucket or prefix holds '*', '?', '$' or a control character");
    }
    if (t->access == KB_ACCESS_CUSTOM && (t->actions == NULL || t->nactions == 0)) {
        return kb_err_msg(msg, msglen, KB_EINVAL, "a custom access lists no action");
    }
    if ((unsigned)t->access > KB_ACCESS_CUSTOM) {
        return kb_err_msg(msg, msglen, KB_EINVAL, "unknown access level");
    }
    return 0;
}

int kb_policy_tenant(const struct kb_tenant *t, const char *partition, char **json_out, char *msg,
                     size_t msglen)
{
    struct s_arns r = {0};
    struct json_object *list = NULL;
    char *all_objects = NULL;
    char *json = NULL;
    size_t size;
    int rc;

    if (json_out == NULL) {
        return kb_err_msg(msg, msglen, KB_EINVAL, "no output pointer");
    }
    *json_out = NULL;
    rc = s_check_tenant(t, partition, msg, msglen);
    if (rc != 0) {
        goto out;
    }
    r.prefix = t->prefix != NULL ? t->prefix : "";
    r.bucket = s_fmt("arn:%s:s3:::%s", partition, t->bucket);
    r.objects = s_fmt("arn:%s:s3:::%s/%s*", partition, t->bucket, r.prefix);
    r.prefix_any = s_fmt("%s*", r.prefix);
    all_objects = s_fmt("arn:%s:s3:::%s/*", partition, t->bucket);
    list = json_object_new_array();
    rc = kb_err_msg(msg, msglen, KB_ENOMEM, "out of memory");
    if (r.bucket == NULL || r.objects == NULL || r.prefix_any == NULL || all_objects == NULL ||
        list == NULL || !s_tenant_statements(list, t, &r, all_objects)) {
        goto out;
    }
    json = s_document(list);
    list = NULL;
    if (json == NULL) {
        goto out;
    }
    size = kb_policy_size(json);
    if (size > KB_POLICY_MAX_USER_INLINE) {
        rc = kb_err_msg(msg, msglen, KB_ETOOBIG,
                        "the generated IAM policy is %zu characters long (whitespace not counted): "
                        "IAM allows at most %d in a user's inline policies",
                        size, KB_POLICY_MAX_USER_INLINE);
        goto out;
    }
    *json_out = json;
    json = NULL;
    rc = 0;
    if (msg != NULL && msglen > 0) {
        msg[0] = '\0';
    }
out:
    json_object_put(list);
    free(json);
    free(r.bucket);
    free(r.objects);
    free(r.prefix_any);
    free(all_objects);
    return rc;
}

int kb_policy_bucket(const char *bucket, const char *partition, char **json_out)
{
    const char *star = "s3:*";
    const char *res[2] = {NULL, NULL};
    const char *no = "false";
    struct json_object *list = NULL;
    struct json_object *cond;
    struct json_object *principal;
    int rc = KB_ENOMEM;

    if (json_out == NULL) {
        return KB_EINVAL;
    }
    *json_out = NULL;
    if (bucket == NULL || bucket[0] == '\0' || !s_arn_text_ok(bucket) ||
        !s_partition_ok(partition)) {
        return KB_EINVAL;
    }
    res[0] = s_fmt("arn:%s:s3:::%s", partition, bucket);
    res[1] = s_fmt("arn:%s:s3:::%s/*", partition, bucket);
    list = json_object_new_array();
    /* Without its condition this statement would lock everyone out: build it first. */
    cond = s_condition("Bool", "aws:SecureTransport", &no, 1);
    principal = json_object_new_string("*");
    if (res[0] == NULL || res[1] == NULL || list == NULL || cond == NULL || principal == NULL) {
        json_object_put(cond);
        json_object_put(principal);
        goto out;
    }
    if (!s_statement(list, "KeybrokerDenyInsecureTransport", "Deny", principal, s_strings(&star, 1),
                     s_strings(res, 2), cond)) {
        goto out;
    }
    *json_out = s_document(list);
    list = NULL;
    rc = *json_out != NULL ? 0 : KB_ENOMEM;
out:
    json_object_put(list);
    free((char *)res[0]);
    free((char *)res[1]);
    return rc;
}

size_t kb_policy_size(const char *json)
{
    size_t n = 0;
    bool in_string = false;

    for (const char *p = json; p != NULL && *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch & 0xC0) == 0x80) {
            continue; /* a UTF-8 continuation byte: part of the character already counted */
        }
        if (in_string && ch == '\\' && p[1] != '\0') {
            n += 2;
            p++;
            continue;
        }
        if (ch == '"') {
            in_string = !in_string;
        }
        if (in_string || !(ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
            n++;
        }
    }
    return n;
}

/* State of one kb_policy_equal: how many node pairs it may still visit. */
struct s_cmp {
    size_t budget;
};

static size_t s_list_len(struct json_object *v)
{
    return json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
}

static struct json_object *s_list_at(struct json_object *v, size_t i)
{
    return json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
}

static bool s_value_eq(struct s_cmp *c, struct json_object *a, struct json_object *b,
                       const char *key);

/* Every element of a has an equal element in b (lists compare as sets). */
static bool s_subset(struct s_cmp *c, struct json_object *a, struct json_object *b, const char *key)
{
    for (size_t i = 0; i < s_list_len(a); i++) {
        bool found = false;
        for (size_t j = 0; !found && j < s_list_len(b) && c->budget > 0; j++) {
            found = s_value_eq(c, s_list_at(a, i), s_list_at(b, j), key);
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

static bool s_object_eq(struct s_cmp *c, struct json_object *a, struct json_object *b)
{
    if (json_object_object_length(a) != json_object_object_length(b)) {
        return false;
    }
    json_object_object_foreach(a, k, va)
    {
        struct json_object *vb = NULL;
        if (!json_object_object_get_ex(b, k, &vb) || !s_value_eq(c, va, vb, k)) {
            return false;
        }
    }
    return true;
}

/* key: the member these values belong to; action names compare ignoring case, as IAM does. */
static bool s_value_eq(struct s_cmp *c, struct json_object *a, struct json_object *b,
                       const char *key)
{
    bool nocase = key != NULL && (strcmp(key, "Action") == 0 || strcmp(key, "NotAction") == 0);

    if (c->budget == 0) {
        return false;
    }
    c->budget--;
    if (json_object_is_type(a, json_type_array) || json_object_is_type(b, json_type_array)) {
        return s_subset(c, a, b, key) && s_subset(c, b, a, key);
    }
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (json_object_is_type(a, json_type_object) || json_object_is_type(b, json_type_object)) {
        return json_object_is_type(a, json_type_object) &&
               json_object_is_type(b, json_type_object) && s_object_eq(c, a, b);
    }
    return nocase ? strcasecmp(json_object_get_string(a), json_object_get_string(b)) == 0
                  : strcmp(json_object_get_string(a), json_object_get_string(b)) == 0;
}

static int s_parse_policy(const char *text, struct json_object **out)
{
    size_t len = strlen(text);
    struct json_tokener *tok;
    int rc = 0;

    *out = NULL;
    if (len > KB_POLICY_MAX_COMPARE) {
        return KB_ETOOBIG;
    }
    tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (tok == NULL) {
        return KB_ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    *out = json_tokener_parse_ex(tok, text, (int)len + 1);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        rc = KB_EPARSE;
    }
    json_tokener_free(tok);
    return rc;
}

int kb_policy_equal(const char *a, const char *b, bool *equal)
{
    struct json_object *ja = NULL;
    struct json_object *jb = NULL;
    struct s_cmp c = {S_COMPARE_BUDGET};
    int rc;

    if (a == NULL || b == NULL || equal == NULL) {
        return KB_EINVAL;
    }
    *equal = false;
    rc = s_parse_policy(a, &ja);
    if (rc == 0) {
        rc = s_parse_policy(b, &jb);
    }
    if (rc == 0) {
        *equal = s_value_eq(&c, ja, jb, NULL);
        if (c.budget == 0) {
            *equal = false;
            rc = KB_ETOOBIG;
        }
    }
    json_object_put(ja);
    json_object_put(jb);
    return rc;
}
