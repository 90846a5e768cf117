/*
 * awserr.h - the error of one AWS call, as the callers of the typed calls see it.
 *
 * Either AWS answered with an error document (err == KB_EAWS: status, code, message and request id
 * come from the response), or no usable answer came (err is a network, TLS, timeout or parse code,
 * status may be 0). `attempts` says how many HTTP attempts the retry layer made. Plain data, no
 * pointers: safe to copy. Never holds a secret: AWS error messages do not carry request bodies.
 */
#ifndef KB_AWSERR_H
#define KB_AWSERR_H

struct kb_aws_error {
    int err;             /* KB_EAWS, KB_ENET, KB_ETIMEDOUT, KB_ETLS, KB_EPARSE, KB_ENOCREDS... */
    long status;         /* HTTP status, 0 when there was no response */
    char code[96];       /* AWS error code ("NoSuchEntity", "ThrottlingException"); "" if none */
    char message[512];   /* AWS's message, or a description of the local failure */
    char request_id[96]; /* x-amzn-RequestId / x-amz-request-id / <RequestId>; "" if none */
    char operation[64];  /* the operation that failed, e.g. "CreateAccessKey" */
    unsigned attempts;   /* HTTP attempts made, including the first */
};

#endif
