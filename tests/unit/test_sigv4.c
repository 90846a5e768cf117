/*
 * test_sigv4.c - the SigV4 signer against every case of both copies of AWS's SigV4 test suite
 * (tests/data/sigv4-testsuite: botocore's and aws-c-auth's, header and presigned variants, byte for
 * byte), against AWS's documented S3 examples, and on the S3 rules, the key cache and bad input.
 *
 * The raw HTTP requests are parsed here, deliberately more leniently than botocore's test does:
 * a literal space in the request target (get-space) and repeated query keys are signed too.
 */
#include "kb_test.h"

#include <dirent.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/secret.h"
#include "aws/sigv4.h"

#define T_DATA        KB_TEST_DATA "/sigv4-testsuite"
#define T_AKID        "AKIDEXAMPLE"
#define T_SECRET      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T_TIME        ((time_t)1440938160) /* 2015-08-30T12:36:00Z, the suites' signing time */
#define T_VANILLA_SIG "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

/* ---- small helpers ---------------------------------------------------------------------- */

static char *t_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    assert_non_null(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *t_path(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);

    assert_non_null(p);
    snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* The whole file, NUL-terminated, or NULL if it does not exist. Caller frees. */
static char *t_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool t_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int t_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The subdirectory names of dir, sorted so the report reads the same on every machine. */
static size_t t_list_dirs(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL) {
        fail_msg("cannot open %s", dir);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char *full;

        if (e->d_name[0] == '.')
            continue;
        full = t_path(dir, e->d_name, "");
        if (t_is_dir(full)) {
            names = realloc(names, (n + 1) * sizeof(*names));
            assert_non_null(names);
            names[n++] = t_strndup(e->d_name, strlen(e->d_name));
        }
        free(full);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), t_cmp_names);
    *out = names;
    return n;
}

static void t_free_names(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- a raw HTTP/1.1 request, as the suites write them -----------------------------------------
 */

struct t_request {
    char *method, *target, *version;
    char *path, *query; /* target split at the first '?'; query NULL without one */
    char *head;         /* the header lines exactly as written, each ending in '\n' */
    struct kb_sigv4_header *headers;
    size_t header_count;
    const char *body; /* points into the text passed to t_parse_request */
    size_t body_len;
};

static void t_add_header(struct t_request *r, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    struct kb_sigv4_header *h;

    assert_non_null(colon);
    r->headers = realloc(r->headers, (r->header_count + 1) * sizeof(*r->headers));
    assert_non_null(r->headers);
    h = &r->headers[r->header_count++];
    h->name = t_strndup(line, (size_t)(colon - line));
    h->value = t_strndup(colon + 1, len - (size_t)(colon + 1 - line));
}

/* A line starting with whitespace continues the previous header's value (obs-fold): keep the
 * line break and the indentation, the signer must collapse them. */
static void t_continue_header(struct t_request *r, const char *line, size_t len)
{
    struct kb_sigv4_header *h;
    size_t old;
    char *v;

    assert_true(r->header_count > 0);
    h = &r->headers[r->header_count - 1];
    old = strlen(h->value);
    v = malloc(old + 1 + len + 1);
    assert_non_null(v);
    memcpy(v, h->value, old);
    v[old] = '\n';
    memcpy(v + old + 1, line, len);
    v[old + 1 + len] = '\0';
    free((char *)h->value);
    h->value = v;
}

/* The request line is split at its first and last space, so "GET /example space/ HTTP/1.1"
 * keeps the space in the path. */
static void t_parse_request(const char *text, struct t_request *r)
{
    const char *p = text, *eol, *sp1, *sp2, *q, *head;
    size_t head_len;

    memset(r, 0, sizeof(*r));
    eol = strchr(p, '\n');
    if (eol == NULL)
        eol = p + strlen(p);
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    assert_non_null(sp1);
    for (sp2 = eol - 1; sp2 > sp1 && *sp2 != ' '; sp2--)
        ;
    assert_true(sp2 > sp1);
    r->method = t_strndup(p, (size_t)(sp1 - p));
    r->target = t_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    r->version = t_strndup(sp2 + 1, (size_t)(eol - sp2 - 1));
    q = strchr(r->target, '?');
    r->path = t_strndup(r->target, q != NULL ? (size_t)(q - r->target) : strlen(r->target));
    r->query = q != NULL ? t_strndup(q + 1, strlen(q + 1)) : NULL;

    p = *eol != '\0' ? eol + 1 : eol;
    head = p;
    while (*p != '\0' && *p != '\n') {
        eol = strchr(p, '\n');
        if (eol == NULL)
            eol = p + strlen(p);
        if (*p == ' ' || *p == '\t')
            t_continue_header(r, p, (size_t)(eol - p));
        else
            t_add_header(r, p, (size_t)(eol - p));
        p = *eol != '\0' ? eol + 1 : eol;
    }
    head_len = (size_t)(p - head);
    r->head = malloc(head_len + 2);
    assert_non_null(r->head);
    memcpy(r->head, head, head_len);
    if (head_len > 0 && head[head_len - 1] != '\n')
        r->head[head_len++] = '\n';
    r->head[head_len] = '\0';
    if (*p == '\n')
        p++;
    r->body = p;
    r->body_len = strlen(p);
}

static void t_free_request(struct t_request *r)
{
    size_t i;

    for (i = 0; i < r->header_count; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->method);
    free(r->target);
    free(r->version);
    free(r->path);
    free(r->query);
    free(r->head);
}

static struct kb_sigv4_request t_sigv4_request(const struct t_request *r)
{
    return (struct kb_sigv4_request){
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .headers = r->headers,
        .header_count = r->header_count,
        .payload = KB_SIGV4_PAYLOAD_BODY,
        .body = r->body,
        .body_len = r->body_len,
    };
}

/* The request as it goes out after header signing: the signer's headers after the request's. */
static char *t_signed_request(const struct t_request *r, const struct kb_sigv4_result *res)
{
    size_t n = strlen(r->method) + strlen(r->target) + strlen(r->version) + strlen(r->head) +
               r->body_len + 8;
    size_t i, off;
    char *s;

    for (i = 0; i < res->header_count; i++)
        n += strlen(res->headers[i].name) + strlen(res->headers[i].value) + 2;
    s = malloc(n);
    assert_non_null(s);
    off = (size_t)snprintf(s, n, "%s %s %s\n%s", r->method, r->target, r->version, r->head);
    for (i = 0; i < res->header_count; i++)
        off += (size_t)snprintf(s + off, n - off, "%s:%s\n", res->headers[i].name,
                                res->headers[i].value);
    snprintf(s + off, n - off, "\n%.*s", (int)r->body_len, r->body);
    return s;
}

/* The request as it goes out after presigning: its query replaced by the presigned one. */
static char *t_presigned_request(const struct t_request *r, const struct kb_sigv4_result *res)
{
    size_t n = strlen(r->method) + strlen(r->path) + strlen(res->presigned_query) +
               strlen(r->version) + strlen(r->head) + r->body_len + 8;
    char *s = malloc(n);

    assert_non_null(s);
    snprintf(s, n, "%s %s?%s %s\n%s\n%.*s", r->method, r->path, res->presigned_query, r->version,
             r->head, (int)r->body_len, r->body);
    return s;
}

/* ---- comparing a stage ------------------------------------------------------------------ */

struct t_tally {
    size_t botocore_total, botocore_passed;
    size_t crt_header_total, crt_header_passed;
    size_t crt_query_total, crt_query_passed;
};

/* Compares one stage byte for byte; on a difference names the case and the stage and shows both
 * texts. A missing expected file is a failure too. Frees nothing. */
static bool t_same(const char *case_name, const char *stage, const char *expected, const char *got)
{
    if (expected != NULL && got != NULL && strcmp(expected, got) == 0)
        return true;
    print_error("FAIL %s: %s differs\n--- expected\n%s\n--- got\n%s\n---\n", case_name, stage,
                expected != NULL ? expected : "(missing file)", got != NULL ? got : "(none)");
    return false;
}

/* Compares got with the file dir/name, if that file exists (required says it must). */
static bool t_same_file(const char *case_name, const char *stage, const char *dir, const char *name,
                        const char *got)
{
    char *path = t_path(dir, name, "");
    char *expected = t_read(path);
    bool ok = t_same(case_name, stage, expected, got);

    free(expected);
    free(path);
    return ok;
}

/* The value of the first "name:value" line of text whose name matches (case-insensitively), or
 * NULL. Caller frees. */
static char *t_line_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    const char *p = text, *eol;

    while (p != NULL && *p != '\0') {
        eol = strchr(p, '\n');
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return t_strndup(p + n + 1,
                             eol != NULL ? (size_t)(eol - p - n - 1) : strlen(p + n + 1));
        p = eol != NULL ? eol + 1 : NULL;
    }
    return NULL;
}

static struct kb_sigv4_signer *t_signer(void)
{
    struct kb_sigv4_signer *sg = NULL;

    assert_int_equal(kb_sigv4_signer_new(&sg), 0);
    return sg;
}

/* ---- botocore-aws4_testsuite --------------------------------------------------------------- */

/*
 * One botocore case: <dir>/<name>.{req,creq,sts,authz}. The session token is the creq's
 * x-amz-security-token line when it has one (signed); otherwise, when the expected signed request
 * carries an X-Amz-Security-Token header (post-sts-header-after), the token is sent unsigned.
 * The .sreq files are not compared: get-vanilla-with-session-token's disagrees with its own .authz.
 */
static bool t_botocore_case(struct kb_sigv4_signer *sg, const char *dir, const char *name,
                            const char *label)
{
    char *req_text;
    char *p_req = t_path(dir, name, ".req"), *p_creq = t_path(dir, name, ".creq");
    char *p_sts = t_path(dir, name, ".sts"), *p_authz = t_path(dir, name, ".authz");
    char *p_sreq = t_path(dir, name, ".sreq");
    char *creq, *sts, *authz, *sreq, *token;
    struct kb_secret *secret = kb_secret_new(T_SECRET, strlen(T_SECRET)), *tok = NULL;
    struct kb_sigv4_credentials creds = {T_AKID, secret, NULL};
    struct kb_sigv4_params params = {&creds, "us-east-1", "service", T_TIME, {0}};
    struct kb_sigv4_request req;
    struct kb_sigv4_result res;
    struct t_request r;
    bool ok = true, omit = false;
    size_t i;
    int rc;

    req_text = t_read(p_req);
    creq = t_read(p_creq);
    sts = t_read(p_sts);
    authz = t_read(p_authz);
    sreq = t_read(p_sreq);
    assert_non_null(req_text);
    assert_non_null(secret);
    token = creq != NULL ? t_line_value(creq, "x-amz-security-token") : NULL;
    if (token == NULL && sreq != NULL) {
        token = t_line_value(sreq, "X-Amz-Security-Token");
        omit = token != NULL;
    }
    if (token != NULL) {
        tok = kb_secret_new(token, strlen(token));
        assert_non_null(tok);
        creds.session_token = tok;
    }
    kb_sigv4_options_for_service(&params.options, "service");
    params.options.omit_session_token = omit;

    t_parse_request(req_text, &r);
    req = t_sigv4_request(&r);
    rc = kb_sigv4_sign(sg, &req, &params, &res);
    if (rc != 0) {
        print_error("FAIL %s: kb_sigv4_sign returned %s\n", label, kb_err_name(rc));
        ok = false;
    } else {
        ok = t_same(label, "canonical request", creq, res.canonical_request) &&
             t_same(label, "string to sign", sts, res.string_to_sign) &&
             t_same(label, "authorization", authz, res.authorization);
        if (ok && omit) {
            /* the unsigned token must still be handed to the caller */
            for (i = 0; i < res.header_count; i++)
                if (strcmp(res.headers[i].name, "X-Amz-Security-Token") == 0)
                    break;
            ok = t_same(label, "unsigned session token header", token,
                        i < res.header_count ? res.headers[i].value : NULL);
        }
    }
    t_free_request(&r);
    kb_secret_destroy(tok);
    kb_secret_destroy(secret);
    free(token);
    free(req_text);
    free(creq);
    free(sts);
    free(authz);
    free(sreq);
    free(p_req);
    free(p_creq);
    free(p_sts);
    free(p_authz);
    free(p_sreq);
    return ok;
}

/* A directory holding <name>/<name>.req is a case; any other directory is a group. */
static void t_walk_botocore(struct kb_sigv4_signer *sg, const char *dir, const char *prefix,
                            struct t_tally *t)
{
    char **names;
    size_t n = t_list_dirs(dir, &names), i;

    for (i = 0; i < n; i++) {
        char *sub = t_path(dir, names[i], "");
        char *req = t_path(sub, names[i], ".req");
        char *label = t_path(prefix, names[i], "");
        FILE *f = fopen(req, "r");

        if (f != NULL) {
            fclose(f);
            t->botocore_total++;
            t->botocore_passed += t_botocore_case(sg, sub, names[i], label);
        } else {
            t_walk_botocore(sg, sub, label, t);
        }
        free(label);
        free(req);
        free(sub);
    }
    t_free_names(names, n);
}

/* ---- aws-c-auth-v4 ------------------------------------------------------------------------ */

struct t_context {
    char *access_key_id, *secret, *token, *region, *service;
    time_t time;
    uint32_t expires;
    bool normalize, sign_body, omit_session_token;
};

static char *t_json_string(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return t_strndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static bool t_json_bool(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void t_read_context(const char *dir, struct t_context *c)
{
    char *path = t_path(dir, "context.json", "");
    struct json_object *o = json_object_from_file(path), *creds, *v;
    char *ts;
    struct tm tm;

    assert_non_null(o);
    memset(c, 0, sizeof(*c));
    assert_true(json_object_object_get_ex(o, "credentials", &creds));
    c->access_key_id = t_json_string(creds, "access_key_id");
    c->secret = t_json_string(creds, "secret_access_key");
    c->token = t_json_string(creds, "token");
    c->region = t_json_string(o, "region");
    c->service = t_json_string(o, "service");
    c->normalize = t_json_bool(o, "normalize");
    c->sign_body = t_json_bool(o, "sign_body");
    c->omit_session_token = t_json_bool(o, "omit_session_token");
    if (json_object_object_get_ex(o, "expiration_in_seconds", &v))
        c->expires = (uint32_t)json_object_get_int(v);
    ts = t_json_string(o, "timestamp");
    assert_non_null(ts);
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm));
    c->time = timegm(&tm);
    assert_non_null(c->access_key_id);
    assert_non_null(c->secret);
    assert_non_null(c->region);
    assert_non_null(c->service);
    free(ts);
    json_object_put(o);
    free(path);
}

static void t_free_context(struct t_context *c)
{
    free(c->access_key_id);
    free(c->secret);
    free(c->token);
    free(c->region);
    free(c->service);
}

/* Signs one aws-c-auth case in one mode and compares all four expected files of that mode. */
static bool t_crt_variant(struct kb_sigv4_signer *sg, const char *dir, const char *label,
                          const struct t_context *c, const struct t_request *r, bool presign)
{
    const char *pfx = presign ? "query" : "header";
    struct kb_secret *secret = kb_secret_new(c->secret, strlen(c->secret));
    struct kb_secret *tok = c->token != NULL ? kb_secret_new(c->token, strlen(c->token)) : NULL;
    struct kb_sigv4_credentials creds = {c->access_key_id, secret, tok};
    struct kb_sigv4_params params = {&creds, c->region, c->service, c->time, {0}};
    struct kb_sigv4_request req = t_sigv4_request(r);
    struct kb_sigv4_result res;
    char name[64], stage[64], *sent;
    bool ok;
    int rc;

    assert_non_null(secret);
    kb_sigv4_options_for_service(&params.options, c->service);
    params.options.normalize_path = c->normalize;
    params.options.sign_body = c->sign_body;
    params.options.omit_session_token = c->omit_session_token;
    params.options.presign = presign;
    params.options.expires = c->expires;
    rc = kb_sigv4_sign(sg, &req, &params, &res);
    if (rc != 0) {
        print_error("FAIL %s (%s): kb_sigv4_sign returned %s\n", label, pfx, kb_err_name(rc));
        ok = false;
    } else {
        sent = presign ? t_presigned_request(r, &res) : t_signed_request(r, &res);
#define T_STAGE(file, what, got)                                                                   \
    (snprintf(name, sizeof(name), "%s-" file, pfx),                                                \
     snprintf(stage, sizeof(stage), "%s %s", pfx, what),                                           \
     t_same_file(label, stage, dir, name, got))
        ok = T_STAGE("canonical-request.txt", "canonical request", res.canonical_request) &&
             T_STAGE("string-to-sign.txt", "string to sign", res.string_to_sign) &&
             T_STAGE("signature.txt", "signature", res.signature) &&
             T_STAGE("signed-request.txt", "signed request", sent);
#undef T_STAGE
        free(sent);
    }
    kb_secret_destroy(tok);
    kb_secret_destroy(secret);
    return ok;
}

static void t_walk_crt(struct kb_sigv4_signer *sg, const char *root, struct t_tally *t)
{
    char **names;
    size_t n = t_list_dirs(root, &names), i;

    for (i = 0; i < n; i++) {
        char *dir = t_path(root, names[i], "");
        char *label = t_path("aws-c-auth-v4", names[i], "");
        char *req_path = t_path(dir, "request.txt", "");
        char *query_path = t_path(dir, "query-canonical-request.txt", "");
        char *text = t_read(req_path), *query_creq = t_read(query_path);
        struct t_context c;
        struct t_request r;

        assert_non_null(text);
        t_read_context(dir, &c);
        t_parse_request(text, &r);
        t->crt_header_total++;
        t->crt_header_passed += t_crt_variant(sg, dir, label, &c, &r, false);
        if (query_creq != NULL) {
            t->crt_query_total++;
            t->crt_query_passed += t_crt_variant(sg, dir, label, &c, &r, true);
        }
        t_free_request(&r);
        t_free_context(&c);
        free(query_creq);
        free(text);
        free(query_path);
        free(req_path);
        free(label);
        free(dir);
    }
    t_free_names(names, n);
}

/* Every vector of both suites, through one signer (so the key cache and buffer reuse are
 * exercised across cases too). */
static void test_vectors(void **state)
{
    struct kb_sigv4_signer *sg = t_signer();
    struct t_tally t = {0};
    size_t total, passed;

    t_walk_botocore(sg, T_DATA "/botocore-aws4_testsuite", "botocore", &t);
    t_walk_crt(sg, T_DATA "/aws-c-auth-v4", &t);
    kb_sigv4_signer_destroy(sg);

    total = t.botocore_total + t.crt_header_total + t.crt_query_total;
    passed = t.botocore_passed + t.crt_header_passed + t.crt_query_passed;
    print_message("sigv4 vectors: %zu/%zu passed (botocore %zu/%zu, aws-c-auth %zu/%zu header + "
                  "%zu/%zu query)\n",
                  passed, total, t.botocore_passed, t.botocore_total, t.crt_header_passed,
                  t.crt_header_total, t.crt_query_passed, t.crt_query_total);
    /* Guard against a suite that silently went missing: these are the counts shipped today. */
    assert_true(t.botocore_total >= 34);
    assert_true(t.crt_header_total >= 38);
    assert_true(t.crt_query_total >= 38);
    assert_int_equal(passed, total);
}

/* ---- focused cases ---------------------------------------------------------------------- */

struct t_fixture {
    struct kb_sigv4_signer *sg;
    struct kb_secret *secret;
    struct kb_sigv4_credentials creds;
    struct kb_sigv4_params params;
};

static void t_fixture_init(struct t_fixture *f, const char *akid, const char *secret,
                           const char *region, const char *service, time_t when)
{
    f->sg = t_signer();
    f->secret = kb_secret_new(secret, strlen(secret));
    assert_non_null(f->secret);
    f->creds = (struct kb_sigv4_credentials){akid, f->secret, NULL};
    f->params = (struct kb_sigv4_params){&f->creds, region, service, when, {0}};
    kb_sigv4_options_for_service(&f->params.options, service);
}

static void t_fixture_cleanup(struct t_fixture *f)
{
    kb_sigv4_signer_destroy(f->sg);
    kb_secret_destroy(f->secret);
}

static const struct kb_sigv4_header t_vanilla_headers[] = {{"Host", "example.amazonaws.com"}};

static const struct kb_sigv4_request t_vanilla = {
    .method = "GET",
    .path = "/",
    .headers = t_vanilla_headers,
    .header_count = 1,
    .payload = KB_SIGV4_PAYLOAD_BODY,
};

/* The second signature on the same day reuses the derived key and signs identically; a new
 * scope or day derives again; clearing the cache forgets. */
static void test_key_cache_hit_same_signature(void **state)
{
    struct t_fixture f;
    struct kb_sigv4_result res;
    struct kb_sigv4_stats st;

    t_fixture_init(&f, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 1);
    assert_int_equal(st.key_cache_hits, 0);

    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    f.params.time = T_TIME + 3600; /* same day: still a hit, a different signature */
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_not_equal(res.signature, T_VANILLA_SIG);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 1);
    assert_int_equal(st.key_cache_hits, 2);

    f.params.time = T_TIME + 86400; /* next day */
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    f.params.time = T_TIME;
    f.params.service = "iam"; /* another scope */
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    f.params.service = "service"; /* the first key is still cached */
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 3);
    assert_int_equal(st.key_cache_hits, 3);

    kb_sigv4_signer_clear_cache(f.sg);
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 4);
    assert_int_equal(st.signatures, 7);
    t_fixture_cleanup(&f);
}

/* More scopes than cache slots, and names too long to cache, still sign correctly. */
static void test_key_cache_eviction_and_uncacheable(void **state)
{
    char long_akid[201];
    struct t_fixture f;
    struct kb_sigv4_result res;
    struct kb_sigv4_stats st;
    char sig[65];
    int day;

    t_fixture_init(&f, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    for (day = 1; day <= 20; day++) {
        f.params.time = T_TIME + (time_t)day * 86400;
        assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    }
    f.params.time = T_TIME;
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 21);

    memset(long_akid, 'A', sizeof(long_akid) - 1); /* longer than a cache slot holds */
    long_akid[sizeof(long_akid) - 1] = '\0';
    f.creds.access_key_id = long_akid;
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    memcpy(sig, res.signature, sizeof(sig));
    assert_int_equal(kb_sigv4_sign(f.sg, &t_vanilla, &f.params, &res), 0);
    assert_string_equal(res.signature, sig);
    kb_sigv4_signer_stats(f.sg, &st);
    assert_int_equal(st.key_derivations, 23);
    t_fixture_cleanup(&f);
}

/* The canonical request's second line. Caller frees. */
static char *t_canonical_uri(const struct kb_sigv4_result *res)
{
    const char *p = strchr(res->canonical_request, '\n') + 1;

    return t_strndup(p, (size_t)(strchr(p, '\n') - p));
}

/* S3 signs UNSIGNED-PAYLOAD as the payload hash and as x-amz-content-sha256. */
static void test_s3_unsigned_payload(void **state)
{
    static const struct kb_sigv4_header hdrs[] = {{"Host", "bucket.s3.amazonaws.com"}};
    struct kb_sigv4_request req = {.method = "PUT",
                                   .path = "/key",
                                   .headers = hdrs,
                                   .header_count = 1,
                                   .payload = KB_SIGV4_PAYLOAD_UNSIGNED};
    struct t_fixture f;
    struct kb_sigv4_result res;
    const char *creq;

    t_fixture_init(&f, T_AKID, T_SECRET, "eu-west-1", "s3", T_TIME);
    assert_true(f.params.options.sign_body);
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    creq = res.canonical_request;
    assert_string_equal(creq + strlen(creq) - strlen("\nUNSIGNED-PAYLOAD"), "\nUNSIGNED-PAYLOAD");
    assert_non_null(strstr(creq, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
    assert_string_equal(res.signed_headers, "host;x-amz-content-sha256;x-amz-date");
    assert_int_equal(res.header_count, 3);
    assert_string_equal(res.headers[1].name, "x-amz-content-sha256");
    assert_string_equal(res.headers[1].value, "UNSIGNED-PAYLOAD");
    assert_string_equal(res.credential_scope, "20150830/eu-west-1/s3/aws4_request");
    t_fixture_cleanup(&f);
}

/* S3 keys are signed exactly as sent: no dot-segment removal, no slash collapsing, no second
 * encoding. Every other service normalizes and encodes again. */
static void test_s3_path_verbatim(void **state)
{
    static const char *paths[] = {"/my-object//example//photo.user", "/x/a%20b/./c/../d",
                                  "/photos/2015%2F08/..%2Fx"};
    static const char *other[] = {"/my-object/example/photo.user", "/x/a%2520b/d",
                                  "/photos/2015%252F08/..%252Fx"};
    static const struct kb_sigv4_header hdrs[] = {{"Host", "bucket.s3.amazonaws.com"}};
    struct kb_sigv4_request req = {.method = "GET", .headers = hdrs, .header_count = 1};
    struct kb_sigv4_result res;
    struct t_fixture s3, iam;
    size_t i;
    char *uri;

    t_fixture_init(&s3, T_AKID, T_SECRET, "us-east-1", "s3", T_TIME);
    t_fixture_init(&iam, T_AKID, T_SECRET, "us-east-1", "iam", T_TIME);
    assert_false(s3.params.options.normalize_path);
    assert_false(s3.params.options.double_encode);
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        req.path = paths[i];
        assert_int_equal(kb_sigv4_sign(s3.sg, &req, &s3.params, &res), 0);
        uri = t_canonical_uri(&res);
        assert_string_equal(uri, paths[i]);
        free(uri);
        assert_int_equal(kb_sigv4_sign(iam.sg, &req, &iam.params, &res), 0);
        uri = t_canonical_uri(&res);
        assert_string_equal(uri, other[i]);
        free(uri);
    }
    t_fixture_cleanup(&s3);
    t_fixture_cleanup(&iam);
}

/* AWS's worked examples for S3 (Amazon S3 API Reference, "Signature Calculations for the
 * Authorization Header" GET Object, and "Query String Authentication"), with their key. */
static void test_s3_documented_examples(void **state)
{
    static const struct kb_sigv4_header hdrs[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                                                  {"Range", "bytes=0-9"}};
    struct kb_sigv4_request req = {.method = "GET",
                                   .path = "/test.txt",
                                   .headers = hdrs,
                                   .header_count = 2,
                                   .payload = KB_SIGV4_PAYLOAD_BODY};
    struct t_fixture f;
    struct kb_sigv4_result res;

    t_fixture_init(&f, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                   "us-east-1", "s3", (time_t)1369353600 /* 2013-05-24T00:00:00Z */);
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    assert_string_equal(res.signature,
                        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_string_equal(res.signed_headers, "host;range;x-amz-content-sha256;x-amz-date");

    req.header_count = 1;
    req.payload = KB_SIGV4_PAYLOAD_UNSIGNED;
    f.params.options.presign = true;
    f.params.options.expires = 86400;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    assert_string_equal(res.signature,
                        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_null(res.authorization);
    assert_int_equal(res.header_count, 0);
    assert_string_equal(res.presigned_query,
                        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
                        "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host"
                        "&X-Amz-Expires=86400&X-Amz-Signature="
                        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    t_fixture_cleanup(&f);
}

/* A precomputed payload hash signs like the body it hashes. */
static void test_precomputed_payload_hash(void **state)
{
    static const char body[] = "Param1=value1";
    static const struct kb_sigv4_header hdrs[] = {{"Host", "example.amazonaws.com"}};
    struct kb_sigv4_request req = {.method = "POST",
                                   .path = "/",
                                   .headers = hdrs,
                                   .header_count = 1,
                                   .payload = KB_SIGV4_PAYLOAD_BODY,
                                   .body = body,
                                   .body_len = sizeof(body) - 1};
    struct t_fixture f;
    struct kb_sigv4_result res;
    char sig[65];

    t_fixture_init(&f, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    memcpy(sig, res.signature, sizeof(sig));
    req.payload = KB_SIGV4_PAYLOAD_HASH;
    req.payload_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    assert_string_equal(res.signature, sig);
    req.payload_hash = "9095672BBD1F56DFC5B65F3E153ADC8731A4A654192329106275F4C7B24D0B6E";
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req.payload_hash = NULL;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    t_fixture_cleanup(&f);
}

/* Malformed input is refused with KB_EINVAL, and the signer keeps working afterwards. */
static void test_rejects_bad_input(void **state)
{
    static const struct kb_sigv4_header bad_name[] = {{"Bad Name", "x"}};
    static const struct kb_sigv4_header bad_value[] = {{"X-Test", "a\001b"}};
    char long_secret[KB_SIGV4_MAX_SECRET_LEN + 2];
    struct kb_sigv4_request req = t_vanilla;
    struct kb_secret *big;
    struct t_fixture f;
    struct kb_sigv4_result res;

    t_fixture_init(&f, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    req.method = NULL;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req.method = "G ET";
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req = t_vanilla;
    req.headers = bad_name;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req.headers = bad_value;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req = t_vanilla;
    req.header_count = 0; /* no Host */
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req = t_vanilla;
    req.path = "/a\nb";
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    req = t_vanilla;
    f.params.region = "us/east";
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    f.params.region = "us-east-1";
    f.params.options.presign = true;
    f.params.options.expires = 0;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    f.params.options.expires = KB_SIGV4_MAX_EXPIRES + 1;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    f.params.options.presign = false;
    memset(long_secret, 'k', sizeof(long_secret) - 1);
    long_secret[sizeof(long_secret) - 1] = '\0';
    big = kb_secret_new(long_secret, strlen(long_secret));
    f.creds.secret_access_key = big;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), KB_EINVAL);
    kb_secret_destroy(big);
    f.creds.secret_access_key = f.secret;
    assert_int_equal(kb_sigv4_sign(f.sg, &req, &f.params, &res), 0);
    assert_string_equal(res.signature, T_VANILLA_SIG);
    t_fixture_cleanup(&f);
}

/* A signer whose buffers grew for a big request signs a small one exactly like a fresh signer,
 * and a big one exactly like a fresh signer too. */
static void test_buffers_grow_and_reuse(void **state)
{
    enum { N = 200 };
    struct kb_sigv4_header *hdrs = calloc(N, sizeof(*hdrs));
    char *names = calloc(N, 16), *value = malloc(2048), *query = malloc(N * 16);
    struct kb_sigv4_request big = t_vanilla;
    struct t_fixture a, b;
    struct kb_sigv4_result ra, rb;
    size_t i, off = 0;

    assert_non_null(hdrs);
    assert_non_null(names);
    assert_non_null(value);
    assert_non_null(query);
    memset(value, 'v', 2047);
    value[2047] = '\0';
    for (i = 0; i < N; i++) {
        snprintf(names + 16 * i, 16, "X-H%zu", (N - i) % 37);
        hdrs[i] =
            (struct kb_sigv4_header){names + 16 * i, i == 0 ? "example.amazonaws.com" : value};
        off +=
            (size_t)snprintf(query + off, N * 16 - off, "%sk%zu=%%zz+%zu", i ? "&" : "", i % 7, i);
    }
    hdrs[0].name = "Host";
    big.headers = hdrs;
    big.header_count = N;
    big.query = query;
    t_fixture_init(&a, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    t_fixture_init(&b, T_AKID, T_SECRET, "us-east-1", "service", T_TIME);
    assert_int_equal(kb_sigv4_sign(a.sg, &t_vanilla, &a.params, &ra), 0);
    assert_int_equal(kb_sigv4_sign(a.sg, &big, &a.params, &ra), 0);
    assert_int_equal(kb_sigv4_sign(b.sg, &big, &b.params, &rb), 0);
    assert_string_equal(ra.canonical_request, rb.canonical_request);
    assert_string_equal(ra.signature, rb.signature);
    assert_non_null(strstr(ra.canonical_request, "\nk0=%25zz%2B0&k0=%25zz%2B105&"));
    assert_int_equal(kb_sigv4_sign(a.sg, &t_vanilla, &a.params, &ra), 0);
    assert_string_equal(ra.signature, T_VANILLA_SIG);
    t_fixture_cleanup(&a);
    t_fixture_cleanup(&b);
    free(hdrs);
    free(names);
    free(value);
    free(query);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_key_cache_hit_same_signature),
        cmocka_unit_test(test_key_cache_eviction_and_uncacheable),
        cmocka_unit_test(test_s3_unsigned_payload),
        cmocka_unit_test(test_s3_path_verbatim),
        cmocka_unit_test(test_s3_documented_examples),
        cmocka_unit_test(test_precomputed_payload_hash),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_buffers_grow_and_reuse),
    };
    return KB_TEST_RUN(argc, argv, tests, NULL, NULL);
}
