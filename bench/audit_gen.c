/*
 * audit_gen.c - bench_audit_gen: writes a hmac-sha256 audit chain of N records for the verify
 * bench (run_audit_verify_bench.sh), made as the writer makes it (record.c + chain.c, through
 * tests/unit/kb_audit_gen.h): the realistic mix of authz decisions, provisioning and rotation
 * steps with their AWS calls, rotations, config reloads and audit_lost, an audit_open first and
 * at about one restart in five epochs, a seal at the end of every epoch. Also writes the K_0 key
 * file `kbctl audit init` would have made.
 *
 *   bench_audit_gen LOG KEYFILE [records (1000000)] [epochs (60)] [seed (1)] [hmac-sha256|sha256]
 *
 * (the fuzz seeds of tests/fuzz/corpus/audit_verify are small chains of seed 1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_audit_gen.h"

int main(int argc, char **argv)
{
    unsigned long long records = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
    unsigned long epochs = argc > 4 ? strtoul(argv[4], NULL, 10) : 60;
    uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
    enum kb_audit_mode mode = KB_AUDIT_MODE_HMAC;
    static struct tl_gen g;
    struct tl_set set;
    char hex[KB_AUDIT_HEX_LEN + 1];
    FILE *key;

    if (argc < 3 || records < epochs * 2 || epochs < 1 || epochs >= TL_EPOCHS_MAX ||
        (argc > 6 && kb_audit_mode_from_name(argv[6], strlen(argv[6]), &mode) != 0)) {
        fprintf(stderr,
                "usage: bench_audit_gen LOG KEYFILE [records] [epochs 1..%d] [seed] [chain]\n",
                TL_EPOCHS_MAX - 1);
        return 2;
    }
    tl_gen_init(&g, &set, mode, seed);
    g.sink = fopen(argv[1], "w");
    key = fopen(argv[2], "w");
    if (g.sink == NULL || key == NULL) {
        fprintf(stderr, "bench_audit_gen: %s\n", strerror(errno));
        return 1;
    }
    setvbuf(g.sink, NULL, _IOFBF, 1 << 20);
    tl_gen_open(&g, "start", true);
    for (unsigned long e = 0; e < epochs; e++) {
        unsigned long long n = records * (e + 1) / epochs - g.seq - (e + 1 < epochs);
        bool restart = tl_rand(&g.rng) % 5 == 0;

        for (unsigned long long i = 0; i < n; i++) {
            if (restart && i == n / 2) {
                struct kb_audit_record stop = {.event = "stop"};

                tl_gen_add(&g, &stop);
                tl_gen_open(&g, "start", false);
                i += 2;
            }
            tl_gen_random(&g);
        }
        if (e + 1 < epochs)
            tl_gen_seal(&g);
    }
    kb_audit_hex(g.k0, sizeof(g.k0), hex);
    fprintf(key, "{\"v\":1,\"chain_id\":\"%s\",\"key_id\":\"%s\",\"key\":\"%s\"}\n", g.chain_id,
            g.key_id, hex);
    if (fclose(g.sink) != 0 || fclose(key) != 0) {
        fprintf(stderr, "bench_audit_gen: %s\n", strerror(errno));
        return 1;
    }
    printf("records=%llu epochs=%lu chain_id=%s\n", (unsigned long long)g.seq, epochs, g.chain_id);
    return 0;
}
