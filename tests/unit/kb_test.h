/*
 * kb_test.h - the common prologue of every cmocka unit test.
 *
 * CTest registers each cmocka case as its own test and runs the binary with the case name as its
 * only argument; KB_TEST_RUN() turns that argument into a cmocka filter. Without an argument the
 * binary runs every case, which is handy under a debugger.
 */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define KB_TEST_RUN(argc, argv, tests, setup, teardown)                                            \
    (((argc) > 1 ? cmocka_set_test_filter((argv)[1]) : (void)0),                                   \
     cmocka_run_group_tests((tests), (setup), (teardown)))

#endif
