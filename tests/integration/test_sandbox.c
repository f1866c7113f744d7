/* Pod sandboxes with the real CNI plugins (Debian's containernetworking-plugins), as root.
 * Never touches the host's network: the tests run in a forked child that first moves into a
 * network and mount namespace of its own (with its own /sys), so the bridge, the veths, the
 * iptables rules and every namespace mount live and die with that child. The temporary
 * directory is removed by the parent afterwards, whatever happened.
 *
 * Run with "--load-child RUN_DIR UID" it is the "restarted agent": it loads the sandbox in a
 * fresh process and prints what it found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/file.h"
#include "drover/log.h"
#include "runtime/sandbox.h"

#define BUSYBOX "/bin/busybox"
#define IP_CMD "/usr/sbin/ip"
#define IPTABLES_SAVE "/usr/sbin/iptables-save"
#define PLUGIN_DIR "/usr/lib/cni"

static char base[256];
static char run_dir[320];
static char state_dir[320];
static drv_cni_config_t cni;

/* ---- process helpers (children only make system calls and exec) ---- */

static int join_ns(const char *path, int type)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = setns(fd, type);
    close(fd);
    return rc;
}

static int wait_status(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs argv (stdout into out if given) in netns (NULL: the test's). Returns the exit code. */
static int run_in(const char *netns, char *const argv[], char *out, size_t outsz)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        if (netns && join_ns(netns, CLONE_NEWNET) < 0)
            _exit(126);
        dup2(p[1], 1);
        if (out == NULL) {
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = read(p[0], tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (out && got + 1 < outsz) {
            size_t take = (size_t)r < outsz - 1 - got ? (size_t)r : outsz - 1 - got;
            memcpy(out + got, tmp, take);
            got += take;
        }
    }
    if (out)
        out[got] = '\0';
    close(p[0]);
    return wait_status(pid);
}

#define RUN(netns, ...) run_in((netns), (char *const[]){__VA_ARGS__, NULL}, NULL, 0)

/* The hostname seen inside a UTS namespace. */
static void hostname_in(const char *uts, char *out, size_t outsz)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char h[256] = "";
        if (join_ns(uts, CLONE_NEWUTS) < 0 || gethostname(h, sizeof(h)) < 0)
            _exit(1);
        ssize_t w = write(p[1], h, strlen(h));
        _exit(w < 0);
    }
    close(p[1]);
    ssize_t r = read(p[0], out, outsz - 1);
    out[r > 0 ? r : 0] = '\0';
    close(p[0]);
    assert_int_equal(wait_status(pid), 0);
}

/* A TCP server in netns on port that answers each of nconn connections with reply. */
static pid_t start_server(const char *netns, int port, const char *reply, int nconn)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        close(p[0]);
        if (join_ns(netns, CLONE_NEWNET) < 0)
            _exit(2);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
            _exit(3);
        if (write(p[1], "r", 1) != 1)
            _exit(4);
        close(p[1]);
        for (int i = 0; i < nconn; i++) {
            int c = accept(s, NULL, NULL);
            if (c < 0)
                _exit(5);
            if (write(c, reply, strlen(reply)) < 0)
                _exit(6);
            close(c);
        }
        _exit(0);
    }
    close(p[1]);
    char b = 0;
    assert_int_equal(read(p[0], &b, 1), 1);
    close(p[0]);
    return pid;
}

/* Connects from netns (NULL: the test's) to ip:port and reads what the server says. */
static int fetch(const char *netns, const char *ip, int port, char *out, size_t outsz)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        close(p[0]);
        if (netns && join_ns(netns, CLONE_NEWNET) < 0)
            _exit(2);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {5, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, ip, &a.sin_addr);
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
            _exit(3);
        char buf[256];
        ssize_t r = read(s, buf, sizeof(buf));
        if (r <= 0)
            _exit(4);
        if (write(p[1], buf, (size_t)r) != r)
            _exit(5);
        _exit(0);
    }
    close(p[1]);
    ssize_t r = read(p[0], out, outsz - 1);
    out[r > 0 ? r : 0] = '\0';
    close(p[0]);
    return wait_status(pid);
}

/* A bare network namespace (loopback up) bind-mounted on path. */
static void make_netns(const char *path)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL, 0400);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) < 0)
            _exit(1);
        if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
            _exit(2);
        execl(IP_CMD, "ip", "link", "set", "lo", "up", (char *)NULL);
        _exit(3);
    }
    assert_int_equal(wait_status(pid), 0);
}

static bool mounted(const char *path)
{
    char *data = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_read_capped("/proc/self/mountinfo", 1 << 22, &data, NULL, &err),
                     DRV_OK);
    char needle[600];
    snprintf(needle, sizeof(needle), " %s ", path);
    bool found = strstr(data, needle) != NULL;
    free(data);
    return found;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* host-local's lease file for ip: present and naming uid? */
static bool lease_held(const char *network, const char *ip, const char *uid)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/cni/networks/%s/%s", state_dir, network, ip);
    char *data = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 4096, &data, NULL, &err) != DRV_OK)
        return false;
    bool held = strstr(data, uid) != NULL;
    free(data);
    return held;
}

/* Does any nat rule mention the pod's container ID? */
static bool nat_rules_for(const char *uid)
{
    static char out[1 << 16];
    assert_int_equal(
        run_in(NULL, (char *const[]){IPTABLES_SAVE, "-t", "nat", NULL}, out, sizeof(out)), 0);
    return strstr(out, uid) != NULL;
}

static bool in_subnet_88(const char *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return false;
    uint32_t h = ntohl(a.s_addr);
    return (h & 0xffff0000u) == 0x0a580000u && (h & 0xffffu) > 1;
}

static void create_ok(const char *uid, const char *name, const char *hostname,
                      const drv_cni_port_t *ports, size_t nports, drv_sandbox_t *sb)
{
    drv_sandbox_opts_t o = {.run_dir = run_dir,
                            .pod_uid = uid,
                            .pod_name = name,
                            .pod_namespace = "default",
                            .hostname = hostname,
                            .ports = ports,
                            .nports = nports,
                            .cni = &cni};
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_sandbox_create(&o, sb, &err);
    if (rc != DRV_OK)
        fail_msg("create %s: %s", uid, drv_error_msg(&err));
}

static void destroy_ok(const char *uid, const drv_cni_config_t *c)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_sandbox_destroy(run_dir, uid, c, &err);
    if (rc != DRV_OK)
        fail_msg("destroy %s: %s", uid, drv_error_msg(&err));
}

static void pod_dir(const char *uid, const char *rel, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/pods/%s%s%s", run_dir, uid, rel[0] ? "/" : "", rel);
}

/* ---- tests ---- */

static void test_two_pods_talk(void **state)
{
    drv_sandbox_t a, b;
    create_ok("pod-a-0001", "web-a", NULL, NULL, 0, &a);
    create_ok("pod-b-0002", "web-b", "custom-b", NULL, 0, &b);

    assert_true(in_subnet_88(a.pod_ip));
    assert_true(in_subnet_88(b.pod_ip));
    assert_string_not_equal(a.pod_ip, b.pod_ip);
    assert_true(lease_held("drover", a.pod_ip, "pod-a-0001"));
    assert_true(lease_held("drover", b.pod_ip, "pod-b-0002"));
    assert_non_null(a.net_ns);
    assert_non_null(a.ipc_ns);
    assert_non_null(a.uts_ns);
    assert_true(mounted(a.net_ns));
    assert_true(mounted(a.ipc_ns));
    assert_true(mounted(a.uts_ns));
    assert_non_null(strstr(a.cni_result, a.pod_ip));

    /* The hostname: the pod name, or spec.hostname; the test's own is left alone. */
    char h[256], mine[256];
    hostname_in(a.uts_ns, h, sizeof(h));
    assert_string_equal(h, "web-a");
    hostname_in(b.uts_ns, h, sizeof(h));
    assert_string_equal(h, "custom-b");
    assert_int_equal(gethostname(mine, sizeof(mine)), 0);
    assert_string_not_equal(mine, "web-a");

    /* Loopback is up in the pod, and the pods reach each other over the bridge. */
    assert_int_equal(RUN(a.net_ns, BUSYBOX, "ping", "-c1", "-W3", "127.0.0.1"), 0);
    assert_int_equal(RUN(a.net_ns, BUSYBOX, "ping", "-c1", "-W3", b.pod_ip), 0);
    assert_int_equal(RUN(b.net_ns, BUSYBOX, "ping", "-c1", "-W3", a.pod_ip), 0);
    char reply[256];
    pid_t srv = start_server(b.net_ns, 9000, "hello-from-b\n", 1);
    assert_int_equal(fetch(a.net_ns, b.pod_ip, 9000, reply, sizeof(reply)), 0);
    assert_string_equal(reply, "hello-from-b\n");
    assert_int_equal(wait_status(srv), 0);

    destroy_ok("pod-a-0001", &cni);
    destroy_ok("pod-b-0002", &cni);
    drv_sandbox_free(&a);
    drv_sandbox_free(&b);
}

static void test_host_port(void **state)
{
    /* An "outside" client in its own namespace, wired to the test namespace (the node) with a
     * veth pair: node 192.0.2.1, client 192.0.2.2. */
    char client[600];
    snprintf(client, sizeof(client), "%s/client-ns", base);
    make_netns(client);
    assert_int_equal(
        RUN(NULL, IP_CMD, "link", "add", "drvh0", "type", "veth", "peer", "name", "drvc0"), 0);
    /* Move drvc0 into the client namespace: `ip link set ... netns` wants a PID there. */
    pid_t holder = fork();
    if (holder == 0) {
        if (join_ns(client, CLONE_NEWNET) < 0)
            _exit(1);
        pause();
        _exit(0);
    }
    char pidstr[32];
    snprintf(pidstr, sizeof(pidstr), "%d", (int)holder);
    usleep(100000);
    assert_int_equal(RUN(NULL, IP_CMD, "link", "set", "drvc0", "netns", pidstr), 0);
    kill(holder, SIGKILL);
    wait_status(holder);
    assert_int_equal(RUN(NULL, IP_CMD, "addr", "add", "192.0.2.1/24", "dev", "drvh0"), 0);
    assert_int_equal(RUN(NULL, IP_CMD, "link", "set", "drvh0", "up"), 0);
    assert_int_equal(RUN(client, IP_CMD, "addr", "add", "192.0.2.2/24", "dev", "drvc0"), 0);
    assert_int_equal(RUN(client, IP_CMD, "link", "set", "drvc0", "up"), 0);

    drv_cni_port_t ports[] = {{8080, 18080, "TCP", NULL}};
    drv_sandbox_t c;
    create_ok("pod-c-0003", "web-c", NULL, ports, 1, &c);
    assert_true(nat_rules_for("pod-c-0003"));

    char reply[256];
    pid_t srv = start_server(c.net_ns, 8080, "hello-from-pod\n", 2);
    /* From outside, to the node's address and the hostPort. */
    assert_int_equal(fetch(client, "192.0.2.1", 18080, reply, sizeof(reply)), 0);
    assert_string_equal(reply, "hello-from-pod\n");
    /* From the node itself, to its own address. */
    assert_int_equal(fetch(NULL, "192.0.2.1", 18080, reply, sizeof(reply)), 0);
    assert_string_equal(reply, "hello-from-pod\n");
    assert_int_equal(wait_status(srv), 0);

    /* CNI CHECK agrees that everything is in place. */
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_sandbox_check_network(&c, &cni, &err);
    if (rc != DRV_OK)
        fail_msg("check: %s", drv_error_msg(&err));

    destroy_ok("pod-c-0003", &cni);
    assert_false(nat_rules_for("pod-c-0003"));
    /* The mapping is gone with the pod. */
    assert_int_not_equal(fetch(client, "192.0.2.1", 18080, reply, sizeof(reply)), 0);
    drv_sandbox_free(&c);

    RUN(NULL, IP_CMD, "link", "del", "drvh0");
    umount2(client, MNT_DETACH);
    unlink(client);
}

static void test_destroy_releases_everything(void **state)
{
    drv_sandbox_t d;
    create_ok("pod-d-0004", "web-d", NULL, NULL, 0, &d);
    char ip[DRV_CNI_IP_MAX];
    snprintf(ip, sizeof(ip), "%s", d.pod_ip);
    assert_true(lease_held("drover", ip, "pod-d-0004"));
    assert_true(nat_rules_for("pod-d-0004"));

    destroy_ok("pod-d-0004", &cni);
    assert_false(lease_held("drover", ip, "pod-d-0004"));
    assert_false(nat_rules_for("pod-d-0004"));
    assert_false(mounted(d.net_ns));
    assert_false(mounted(d.ipc_ns));
    assert_false(mounted(d.uts_ns));
    assert_false(exists(d.dir));
    /* Again, and for a pod never seen: nothing to do. */
    destroy_ok("pod-d-0004", &cni);
    destroy_ok("pod-never-seen", &cni);
    drv_sandbox_free(&d);
}

static void write_text(const char *path, const char *text)
{
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(path, text, strlen(text), 0600, &err), DRV_OK);
}

static void test_destroy_half_created(void **state)
{
    char path[600], ip[DRV_CNI_IP_MAX];
    drv_sandbox_t e;
    drv_error_t err = DRV_ERROR_INIT;

    /* Crash during CNI ADD: namespaces and lease made, record still "creating" without a
     * result. */
    create_ok("pod-e-0005", "web-e", NULL, NULL, 0, &e);
    snprintf(ip, sizeof(ip), "%s", e.pod_ip);
    pod_dir("pod-e-0005", "sandbox.json", path, sizeof(path));
    char *text = NULL;
    assert_int_equal(drv_file_read_capped(path, 1 << 20, &text, NULL, &err), DRV_OK);
    cJSON *rec = cJSON_Parse(text);
    free(text);
    cJSON_ReplaceItemInObject(rec, "state", cJSON_CreateString("creating"));
    cJSON_DeleteItemFromObject(rec, "cniResult");
    cJSON_DeleteItemFromObject(rec, "podIP");
    text = cJSON_Print(rec);
    cJSON_Delete(rec);
    write_text(path, text);
    free(text);
    drv_sandbox_t tmp;
    assert_int_equal(drv_sandbox_load(run_dir, "pod-e-0005", &tmp, &err), DRV_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "never finished"));
    /* Creating it again is refused: it has to be destroyed first. */
    drv_sandbox_opts_t o = {.run_dir = run_dir,
                            .pod_uid = "pod-e-0005",
                            .pod_name = "web-e",
                            .pod_namespace = "default",
                            .cni = &cni};
    assert_int_equal(drv_sandbox_create(&o, &tmp, &err), DRV_ERR_EXISTS);
    destroy_ok("pod-e-0005", &cni);
    assert_false(lease_held("drover", ip, "pod-e-0005"));
    assert_false(nat_rules_for("pod-e-0005"));
    assert_false(mounted(e.net_ns));
    assert_false(exists(e.dir));
    drv_sandbox_free(&e);

    /* The record lost (moved aside as corrupt) while the namespaces are mounted. */
    create_ok("pod-e-0006", "web-e", NULL, NULL, 0, &e);
    snprintf(ip, sizeof(ip), "%s", e.pod_ip);
    pod_dir("pod-e-0006", "sandbox.json", path, sizeof(path));
    write_text(path, "{\"version\": 1, \"state\": \"re");
    assert_int_equal(drv_sandbox_load(run_dir, "pod-e-0006", &tmp, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "moved aside"));
    assert_false(exists(path));
    destroy_ok("pod-e-0006", &cni);
    assert_false(lease_held("drover", ip, "pod-e-0006"));
    assert_false(nat_rules_for("pod-e-0006"));
    assert_false(mounted(e.net_ns));
    assert_false(exists(e.dir));
    drv_sandbox_free(&e);

    /* Crash right after the directories were made. */
    pod_dir("pod-e-0007", "ns", path, sizeof(path));
    assert_int_equal(drv_file_mkdir_p(path, 0700, &err), DRV_OK);
    destroy_ok("pod-e-0007", &cni);
    pod_dir("pod-e-0007", "", path, sizeof(path));
    assert_false(exists(path));

    /* Crash between making the namespace files and mounting them, plus a stray temporary. */
    pod_dir("pod-e-0008", "ns", path, sizeof(path));
    assert_int_equal(drv_file_mkdir_p(path, 0700, &err), DRV_OK);
    pod_dir("pod-e-0008", "ns/net", path, sizeof(path));
    write_text(path, "");
    pod_dir("pod-e-0008", "ns/ipc", path, sizeof(path));
    write_text(path, "");
    pod_dir("pod-e-0008", "sandbox.json.tmp.999", path, sizeof(path));
    write_text(path, "{");
    destroy_ok("pod-e-0008", &cni);
    pod_dir("pod-e-0008", "", path, sizeof(path));
    assert_false(exists(path));
}

static char self_exe[4096];

static void test_load_after_restart(void **state)
{
    drv_sandbox_t f;
    drv_cni_port_t ports[] = {{53, 5353, "UDP", NULL}};
    create_ok("pod-f-0009", "web-f", NULL, ports, 1, &f);

    /* A new process (the restarted agent) finds it. */
    char out[2048], want[2048];
    assert_int_equal(run_in(NULL,
                            (char *const[]){self_exe, "--load-child", run_dir, "pod-f-0009", NULL},
                            out, sizeof(out)),
                     0);
    snprintf(want, sizeof(want), "ip=%s net=%s ipc=%s uts=%s hostname=web-f\n", f.pod_ip, f.net_ns,
             f.ipc_ns, f.uts_ns);
    assert_string_equal(out, want);

    drv_sandbox_t g;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_sandbox_load(run_dir, "pod-f-0009", &g, &err), DRV_OK);
    assert_string_equal(g.pod_ip, f.pod_ip);
    assert_string_equal(g.net_ns, f.net_ns);
    assert_false(g.host_network);
    assert_int_equal(drv_sandbox_check_network(&g, &cni, &err), DRV_OK);
    drv_sandbox_free(&g);

    /* A namespace mount gone (as after a reboot with a persistent run dir) is reported. */
    assert_int_equal(umount2(f.uts_ns, MNT_DETACH), 0);
    assert_int_equal(drv_sandbox_load(run_dir, "pod-f-0009", &g, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no longer a mounted namespace"));
    assert_int_equal(drv_sandbox_load(run_dir, "pod-nobody", &g, &err), DRV_ERR_NOTFOUND);
    assert_int_equal(drv_sandbox_load(run_dir, "../etc", &g, &err), DRV_ERR_INVALID);

    destroy_ok("pod-f-0009", &cni);
    assert_false(lease_held("drover", f.pod_ip, "pod-f-0009"));
    assert_false(exists(f.dir));
    drv_sandbox_free(&f);
}

static void test_cni_failure_leaves_nothing(void **state)
{
    /* A /30 has one address for pods: the second pod's ADD fails in host-local. */
    drv_cni_config_t tiny = {.state_dir = state_dir,
                             .subnet = "10.77.0.0/30",
                             .bridge = "drvtest1",
                             .network_name = "tiny"};
    drv_sandbox_opts_t o = {.run_dir = run_dir,
                            .pod_uid = "pod-g-0010",
                            .pod_name = "web-g",
                            .pod_namespace = "default",
                            .cni = &tiny};
    drv_sandbox_t g, h;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_sandbox_create(&o, &g, &err);
    if (rc != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    assert_string_equal(g.pod_ip, "10.77.0.2");

    o.pod_uid = "pod-h-0011";
    o.pod_name = "web-h";
    memset(&h, 0x5a, sizeof(h));
    assert_int_not_equal(drv_sandbox_create(&o, &h, &err), DRV_OK);
    print_message("    error: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "sandbox default/web-h: cni bridge ADD: "));
    assert_non_null(strstr(err.msg, "no IP addresses available"));
    assert_int_equal((unsigned char)h.pod_ip[0], 0x5a); /* untouched */
    char path[600];
    pod_dir("pod-h-0011", "", path, sizeof(path));
    assert_false(exists(path));
    pod_dir("pod-h-0011", "ns/net", path, sizeof(path));
    assert_false(mounted(path));
    assert_false(nat_rules_for("pod-h-0011"));

    /* Plugins missing: a clear error, nothing left. */
    drv_cni_config_t nowhere = {.state_dir = state_dir, .plugin_dir = "/nonexistent/cni"};
    o.cni = &nowhere;
    assert_int_not_equal(drv_sandbox_create(&o, &h, &err), DRV_OK);
    assert_non_null(strstr(err.msg, "cannot run /nonexistent/cni/bridge"));
    pod_dir("pod-h-0011", "", path, sizeof(path));
    assert_false(exists(path));

    destroy_ok("pod-g-0010", &tiny);
    assert_false(lease_held("tiny", "10.77.0.2", "pod-g-0010"));
    drv_sandbox_free(&g);
}

static void test_host_network(void **state)
{
    drv_sandbox_opts_t o = {.run_dir = run_dir,
                            .pod_uid = "pod-i-0012",
                            .pod_name = "exporter",
                            .pod_namespace = "monitoring",
                            .host_network = true};
    drv_sandbox_t s;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_sandbox_create(&o, &s, &err);
    if (rc != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    assert_null(s.net_ns);
    assert_null(s.uts_ns);
    assert_null(s.cni_result);
    assert_non_null(s.ipc_ns);
    assert_true(mounted(s.ipc_ns));
    assert_string_equal(s.pod_ip, "");
    drv_sandbox_t l;
    assert_int_equal(drv_sandbox_load(run_dir, "pod-i-0012", &l, &err), DRV_OK);
    assert_true(l.host_network);
    assert_null(l.net_ns);
    assert_int_equal(drv_sandbox_check_network(&l, NULL, &err), DRV_OK);
    drv_sandbox_free(&l);
    /* No CNI configuration is needed to remove it. */
    destroy_ok("pod-i-0012", NULL);
    assert_false(exists(s.dir));
    drv_sandbox_free(&s);

    /* hostNetwork and hostIPC: nothing but the record. */
    o.pod_uid = "pod-i-0013";
    o.host_ipc = true;
    rc = drv_sandbox_create(&o, &s, &err);
    assert_int_equal(rc, DRV_OK);
    assert_null(s.ipc_ns);
    destroy_ok("pod-i-0013", NULL);
    drv_sandbox_free(&s);
}

static void test_bad_options(void **state)
{
    drv_sandbox_t s;
    drv_error_t err = DRV_ERROR_INIT;
    drv_sandbox_opts_t o = {.run_dir = run_dir,
                            .pod_uid = "../../etc",
                            .pod_name = "web",
                            .pod_namespace = "default",
                            .cni = &cni};
    assert_int_equal(drv_sandbox_create(&o, &s, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "pod uid"));
    o.pod_uid = "pod-j-0014";
    o.hostname = "Not_A_Label";
    assert_int_equal(drv_sandbox_create(&o, &s, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "sandbox default/web: hostname: "));
    o.hostname = NULL;
    drv_cni_port_t bad[] = {{80, 80, "ICMP", NULL}};
    o.ports = bad;
    o.nports = 1;
    assert_int_equal(drv_sandbox_create(&o, &s, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "ports[0].protocol"));
    o.ports = NULL;
    o.nports = 0;
    o.cni = NULL;
    assert_int_equal(drv_sandbox_create(&o, &s, &err), DRV_ERR_INVALID);
    o.cni = &cni;
    o.run_dir = "relative";
    assert_int_equal(drv_sandbox_create(&o, &s, &err), DRV_ERR_INVALID);
    char path[600];
    pod_dir("pod-j-0014", "", path, sizeof(path));
    assert_false(exists(path));

    /* A long pod name makes a 63-character hostname without a trailing '-'. */
    o.run_dir = run_dir;
    o.pod_name = "a123456789-123456789-123456789-123456789-123456789-123456789-1-3456";
    create_ok("pod-j-0015", o.pod_name, NULL, NULL, 0, &s);
    char h[256];
    hostname_in(s.uts_ns, h, sizeof(h));
    assert_string_equal(h, "a123456789-123456789-123456789-123456789-123456789-123456789-1");
    destroy_ok("pod-j-0015", &cni);
    drv_sandbox_free(&s);
}

/* ---- setup ---- */

static int load_child(const char *rd, const char *uid)
{
    drv_sandbox_t sb;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_sandbox_load(rd, uid, &sb, &err) != DRV_OK) {
        fprintf(stderr, "load: %s\n", drv_error_msg(&err));
        return 1;
    }
    printf("ip=%s net=%s ipc=%s uts=%s hostname=%s\n", sb.pod_ip, sb.net_ns, sb.ipc_ns, sb.uts_ns,
           sb.hostname);
    drv_sandbox_free(&sb);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* In the forked child: a network namespace and a mount namespace of our own, with a sysfs
 * that shows our interfaces (plugins may look there), loopback up. */
static int enter_test_namespaces(void)
{
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
        perror("unshare");
        return -1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        perror("make / private");
        return -1;
    }
    if (umount2("/sys", MNT_DETACH) < 0 && errno != EINVAL) {
        perror("umount /sys");
        return -1;
    }
    if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0) {
        perror("mount sysfs");
        return -1;
    }
    return RUN(NULL, IP_CMD, "link", "set", "lo", "up") == 0 ? 0 : -1;
}

static int prerequisites(void)
{
    const char *need[] = {BUSYBOX,
                          IP_CMD,
                          IPTABLES_SAVE,
                          PLUGIN_DIR "/bridge",
                          PLUGIN_DIR "/host-local",
                          PLUGIN_DIR "/portmap"};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (access(need[i], X_OK) != 0) {
            fprintf(stderr, "test_sandbox: %s missing (ports/debian/install-deps)\n", need[i]);
            return getenv("DROVER_ALLOW_SKIP") ? 77 : 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--load-child")) {
        drv_log_set_level(DRV_LOG_OFF);
        return load_child(argv[2], argv[3]);
    }
    if (geteuid() != 0) {
        fprintf(stderr, "test_sandbox: needs root, skipped\n");
        return 77;
    }
    int pre = prerequisites();
    if (pre != 0)
        return pre;
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';

    snprintf(base, sizeof(base), "/tmp/drover-test-sandbox-XXXXXX");
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(run_dir, sizeof(run_dir), "%s/run", base);
    snprintf(state_dir, sizeof(state_dir), "%s/state", base);
    cni = (drv_cni_config_t){.state_dir = state_dir};
    unsigned host_bridge_before = if_nametoindex("drover0");

    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        if (enter_test_namespaces() < 0)
            _exit(1);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_two_pods_talk),
            cmocka_unit_test(test_host_port),
            cmocka_unit_test(test_destroy_releases_everything),
            cmocka_unit_test(test_destroy_half_created),
            cmocka_unit_test(test_load_after_restart),
            cmocka_unit_test(test_cni_failure_leaves_nothing),
            cmocka_unit_test(test_host_network),
            cmocka_unit_test(test_bad_options),
        };
        int failed = cmocka_run_group_tests(tests, NULL, NULL);
        exit(failed ? 1 : 0); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    int rc = child > 0 ? wait_status(child) : 1;
    if (child > 0)
        kill(-child, SIGKILL); /* stragglers of a failed test */
    /* The namespaces and mounts died with the child; only files remain. */
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (host_bridge_before == 0 && if_nametoindex("drover0") != 0) {
        fprintf(stderr, "test_sandbox: drover0 appeared in the host's namespace!\n");
        rc = 1;
    }
    return rc;
}
