/*
 * container.h - container_of: from a pointer to a member back to the struct that embeds it.
 *
 * libuv hands a callback the handle or request it was started on (a uv_timer_t *, a uv_write_t
 * *). Our handles live inside our own structs, and this is how a callback gets to its struct
 * without a first-member cast (which silently breaks when a field is put before the handle) and
 * without a ->data pointer that must be kept in step.
 *
 * The pointer must be the address of that member of a live struct of that type: the macro only
 * does arithmetic and can check nothing at run time. It does check at compile time that ptr has
 * the member's type, so pass the callback's typed pointer (cast a uv_handle_t * to the handle's
 * own type first).
 */
#ifndef KB_CONTAINER_H
#define KB_CONTAINER_H

#include <stddef.h>

/* The struct of type `type` whose member `member` ptr points at. A ptr of another type than the
 * member's fails the build: the unevaluated comparison of distinct pointer types is a warning in
 * gcc and clang by default, and -Werror makes it an error. */
#define container_of(ptr, type, member)                                                            \
    ((void)sizeof((ptr) == &((type *)0)->member),                                                  \
     (type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
