/*
 * tests/bench/chat_login.h: chat-bench's logins, as a browser does them.
 *
 * For each user (the --users measured ones, then one per flooder), GET the
 * login form for the csrftoken cookie and the hidden csrfmiddlewaretoken,
 * POST the form with the user's name and password, and keep the sessionid
 * cookie: b->cookies[user] becomes "csrftoken=...; sessionid=...". The
 * exchanges use blocking sockets in --login-threads threads, because the
 * server's password hashing makes each one slow; each leaves from the
 * user's source address (--sources) to the user's server.
 */
#ifndef MC_TESTS_BENCH_CHAT_LOGIN_H
#define MC_TESTS_BENCH_CHAT_LOGIN_H

#include "tests/bench/chat_state.h"

/* Logs every user in, fills b->cookies and prints the "login ..." line.
 * Returns 0, or -1 when a login failed (the first failure is on stderr).
 * Runs before the loop: the threads touch b only through their pool. */
int login_all(bench_t *b);

#endif
