/* Tests for the one process runner: output capture with its cap, exec failures reported at
 * once, an environment of the caller's choosing, a process group of its own, the deadline,
 * stdin fed and stderr kept apart, a strict output limit, the user switch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/proc.h"

static void test_run_captures(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    drv_buf_t out = DRV_BUF_INIT(64);
    int st = 0;
    assert_int_equal(drv_proc_run(argv, -1, &out, 5000, &st, NULL), DRV_OK);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    assert_string_equal(drv_buf_str(&out), "out\nerr\n");
    drv_buf_free(&out);
    char *big[] = {"sh", "-c", "yes | head -c 100000", NULL};
    drv_buf_t capped = DRV_BUF_INIT(10);
    assert_int_equal(drv_proc_run(big, -1, &capped, 5000, &st, NULL), DRV_OK);
    assert_int_equal(capped.len, 10);
    drv_buf_free(&capped);
}

static void test_exec_failure(void **state)
{
    (void)state;
    char *argv[] = {"/nonexistent/program", NULL};
    drv_proc_opts_t o = {.argv = argv, .in_fd = -1, .out_fd = -1, .err_fd = -1};
    pid_t pid = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_proc_start(&o, &pid, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(err.sys_errno, ENOENT);
    assert_int_equal(pid, 0);
}

static void test_env_and_pgroup(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    char *argv[] = {"sh", "-c", "echo \"$DRV_TEST_VAR $(ps -o pgid= -p $$ 2>/dev/null || echo x)\"",
                    NULL};
    char *envp[] = {"DRV_TEST_VAR=hello", "PATH=/usr/bin:/bin", NULL};
    drv_proc_opts_t o = {
        .argv = argv, .envp = envp, .in_fd = -1, .out_fd = p[1], .err_fd = -1, .new_pgroup = true};
    pid_t pid = 0;
    assert_int_equal(drv_proc_start(&o, &pid, NULL), DRV_OK);
    /* In place before drv_proc_start returned: the group can be signalled at once. */
    assert_int_equal(getpgid(pid), pid);
    close(p[1]);
    char buf[128] = {0};
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(strncmp(buf, "hello ", 6) == 0);
}

static void test_deadline(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "10", NULL};
    long long t0 = drv_now_ms();
    int st = 0;
    assert_int_equal(drv_proc_run(argv, -1, NULL, 200, &st, NULL), DRV_ERR_TIMEOUT);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(drv_now_ms() - t0 < 5000);
}

static void test_exec_feeds_and_splits(void **state)
{
    (void)state;
    /* stdin bytes in, stdout and stderr apart, a program named apart from argv[0] */
    char *argv[] = {"fake-name", "-c", "echo \"$0\"; tr a-z A-Z; echo oops >&2; exit 2", NULL};
    drv_proc_opts_t o = {.argv = argv, .path = "/bin/sh", .in_fd = -1};
    drv_buf_t out = DRV_BUF_INIT(64), eb = DRV_BUF_INIT(3);
    drv_proc_io_t io = {
        .in = "hello\n", .in_len = 6, .out = &out, .errout = &eb, .timeout_ms = 5000};
    int st = 0;
    assert_int_equal(drv_proc_exec(&o, &io, &st, NULL), DRV_OK);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    assert_string_equal(drv_buf_str(&out), "fake-name\nHELLO\n");
    assert_string_equal(drv_buf_str(&eb), "oop"); /* capped, the rest dropped */
    drv_buf_free(&out);
    drv_buf_free(&eb);

    /* A child that never reads its stdin: judged by its exit, no SIGPIPE for the caller. */
    static char big[1 << 20];
    memset(big, 'x', sizeof(big));
    char *quiet[] = {"sh", "-c", "exit 0", NULL};
    drv_proc_opts_t q = {.argv = quiet, .in_fd = -1};
    drv_proc_io_t qio = {.in = big, .in_len = sizeof(big), .timeout_ms = 5000};
    assert_int_equal(drv_proc_exec(&q, &qio, &st, NULL), DRV_OK);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_exec_strict_overflow_kills(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "yes; sleep 10", NULL};
    drv_proc_opts_t o = {.argv = argv, .in_fd = -1, .new_pgroup = true};
    drv_buf_t out = DRV_BUF_INIT(1000);
    drv_proc_io_t io = {.out = &out, .out_strict = true, .timeout_ms = 5000};
    drv_error_t err = DRV_ERROR_INIT;
    int st = 0;
    long long t0 = drv_now_ms();
    assert_int_equal(drv_proc_exec(&o, &io, &st, &err), DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "output over the 1000 byte limit"));
    assert_true(out.len <= 1000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(drv_now_ms() - t0 < 4000);
    drv_buf_free(&out);
}

static void test_user_switch(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    int st = 0;
    if (geteuid() == 0) {
        /* root: the child runs as nobody, with no supplementary groups */
        char *argv[] = {"sh", "-c", "echo $(id -u) $(id -g) $(id -G)", NULL};
        drv_proc_opts_t o = {.argv = argv,
                             .in_fd = -1,
                             .set_ids = true,
                             .uid = 65534,
                             .gid = 65534,
                             .parent_death_signal = SIGTERM};
        drv_buf_t out = DRV_BUF_INIT(64);
        drv_proc_io_t io = {.out = &out, .timeout_ms = 5000};
        assert_int_equal(drv_proc_exec(&o, &io, &st, &err), DRV_OK);
        assert_string_equal(drv_buf_str(&out), "65534 65534 65534\n");
        drv_buf_free(&out);
        return;
    }
    /* anyone else: refused, reported by the start and not by the exit status */
    char *argv[] = {"true", NULL};
    drv_proc_opts_t o = {
        .argv = argv, .in_fd = -1, .out_fd = -1, .err_fd = -1, .set_ids = true, .uid = 0};
    pid_t pid = 0;
    assert_int_equal(drv_proc_start(&o, &pid, &err), DRV_ERR_PERM);
    assert_int_equal(pid, 0);
    assert_non_null(strstr(err.msg, "run true as uid 0 gid 0"));
}

static void test_parent_death_signal_runs(void **state)
{
    (void)state;
    /* Armed, the child runs normally while its parent lives. */
    char *argv[] = {"sh", "-c", "grep -q . /proc/self/status && exit 4", NULL};
    drv_proc_opts_t o = {
        .argv = argv, .in_fd = -1, .out_fd = -1, .err_fd = -1, .parent_death_signal = SIGTERM};
    pid_t pid = 0;
    assert_int_equal(drv_proc_start(&o, &pid, NULL), DRV_OK);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_captures),
        cmocka_unit_test(test_exec_failure),
        cmocka_unit_test(test_env_and_pgroup),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_exec_feeds_and_splits),
        cmocka_unit_test(test_exec_strict_overflow_kills),
        cmocka_unit_test(test_user_switch),
        cmocka_unit_test(test_parent_death_signal_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
