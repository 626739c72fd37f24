/*
 * worker/chatctl.c: bin/chatctl, the administration command (the manage.py
 * of Multichat): schema migrations, users and rooms, and copying the
 * database into another (from sqlite to PostgreSQL, say).
 *
 * Exit status: 0 done, 1 the command failed (no such user, name taken, the
 * database failed), 2 the command line was wrong.
 */
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/password.h"
#include "worker/store.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define LINE_MAX_BYTES (WRK_PASSWORD_MAX_BYTES + MC_USERNAME_MAX + 64)

typedef struct ctl {
    const char *db;
    long argon2_m, argon2_t, argon2_p;
    wrk_store_t *store;
    wrk_password_t pw;
    int pw_ready;
} ctl_t;

static const char synopsis[] =
    "[options] COMMAND\n\n"
    "commands:\n"
    "  migrate                              create or upgrade the database schema\n"
    "  createsuperuser [--username NAME] [--noinput]\n"
    "                                       a superuser (staff who also manage staff);\n"
    "                                       with --noinput the password comes from\n"
    "                                       CHAT_SUPERUSER_PASSWORD\n"
    "  user add NAME [--staff|--superuser] --password-stdin\n"
    "  user import                          lines \"NAME PASSWORD [staff]\" on stdin, all or none\n"
    "  user passwd NAME                     the new password on stdin\n"
    "  user staff NAME on|off               off also unmakes a superuser\n"
    "  user superuser NAME on|off           on also makes staff\n"
    "  user deactivate NAME\n"
    "  user list\n"
    "  room add TITLE [--staff-only]        prints the new room's id\n"
    "  room rename ID TITLE\n"
    "  room staff-only ID on|off\n"
    "  room rm ID\n"
    "  room list\n"
    "  copy-to TARGET                       copy the database, every id kept, into TARGET:\n"
    "                                       an empty one, such as postgresql://host/db";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chatctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see chatctl --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static int failed(ctl_t *c, const char *what, int rc)
{
    if (rc == MC_EDB)
        fprintf(stderr, "chatctl: %s: %s\n", what, wrk_store_errmsg(c->store));
    else
        fprintf(stderr, "chatctl: %s: %s\n", what, mc_strerror(rc));
    return EXIT_FAILED;
}

/* Opens and migrates the store at target into *out. */
static int open_migrated(wrk_store_t **out, const char *target)
{
    char name[256];
    wrk_store_describe(target, name, sizeof(name));
    int rc = wrk_store_open(out, target, NULL);
    if (rc) {
        fprintf(stderr, "chatctl: cannot open the database %s: %s\n", name, mc_strerror(rc));
        return EXIT_FAILED;
    }
    int from, to;
    rc = wrk_store_migrate(*out, &from, &to);
    if (rc) {
        fprintf(stderr, "chatctl: migrate %s: %s\n", name,
                rc == MC_EDB ? wrk_store_errmsg(*out) : mc_strerror(rc));
        return EXIT_FAILED;
    }
    return 0;
}

static int open_store(ctl_t *c)
{
    return open_migrated(&c->store, c->db);
}

static int password_ready(ctl_t *c)
{
    if (c->pw_ready)
        return 0;
    int rc = wrk_password_init(&c->pw, (uint32_t)c->argon2_m, (uint32_t)c->argon2_t,
                               (uint32_t)c->argon2_p);
    if (rc) {
        fprintf(stderr, "chatctl: argon2 parameters refused: %s\n", mc_strerror(rc));
        return EXIT_FAILED;
    }
    c->pw_ready = 1;
    return 0;
}

/* Reads one line from f without its line end. Returns its length, -1 at end
 * of input, -2 when it is longer than size - 1. */
static long read_line(FILE *f, char *buf, size_t size)
{
    if (!fgets(buf, (int)size, f))
        return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(f))
        return -2;
    if (n && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return (long)n;
}

static int read_password(const char *prompt, char *buf, size_t size)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    long n = read_line(stdin, buf, size);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (n == -2) {
        fprintf(stderr, "chatctl: the password is too long\n");
        return EXIT_USAGE;
    }
    if (n <= 0) {
        fprintf(stderr, "chatctl: no password given\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int hash_password(ctl_t *c, const char *password, char hash[WRK_PASSWORD_HASH_MAX])
{
    int rc = password_ready(c);
    if (rc)
        return rc;
    rc = wrk_password_hash(&c->pw, password, strlen(password), hash);
    if (rc) {
        fprintf(stderr, "chatctl: cannot hash the password: %s\n", mc_strerror(rc));
        return EXIT_FAILED;
    }
    return 0;
}

/* Rights of a new user. */
enum { PLAIN, STAFF, SUPERUSER };

static int add_user(ctl_t *c, const char *name, const char *password, int rights)
{
    char hash[WRK_PASSWORD_HASH_MAX];
    int rc = hash_password(c, password, hash);
    if (rc)
        return rc;
    int64_t id;
    rc = wrk_store_user_add(c->store, name, hash, rights != PLAIN, &id);
    if (rc == 0 && rights == SUPERUSER)
        rc = wrk_store_user_set_superuser(c->store, id, 1);
    if (rc == MC_EEXIST) {
        fprintf(stderr, "chatctl: the username \"%s\" is taken\n", name);
        return EXIT_FAILED;
    }
    if (rc == MC_EINVAL) {
        fprintf(stderr, "chatctl: a username is 1 to %d bytes of UTF-8\n", MC_USERNAME_MAX);
        return EXIT_FAILED;
    }
    if (rc)
        return failed(c, "add user", rc);
    return 0;
}

static int parse_on_off(const char *s, int *out)
{
    if (strcmp(s, "on") == 0)
        *out = 1;
    else if (strcmp(s, "off") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1)
        return -1;
    *out = v;
    return 0;
}

static int find_user(ctl_t *c, const char *name, wrk_user_t *u)
{
    int rc = wrk_store_user_by_name(c->store, name, u);
    if (rc == MC_ENOTFOUND) {
        fprintf(stderr, "chatctl: no user \"%s\"\n", name);
        return EXIT_FAILED;
    }
    return rc ? failed(c, "find user", rc) : 0;
}

static int cmd_createsuperuser(ctl_t *c, int argc, char **argv)
{
    const char *name = NULL;
    int noinput = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--username") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--username=", 11) == 0)
            name = argv[i] + 11;
        else if (strcmp(argv[i], "--noinput") == 0 || strcmp(argv[i], "--no-input") == 0)
            noinput = 1;
        else
            return usage_error("createsuperuser: unexpected argument \"%s\"", argv[i]);
    }
    char namebuf[MC_USERNAME_MAX + 2];
    char password[WRK_PASSWORD_MAX_BYTES + 2];
    if (noinput) {
        if (!name)
            return usage_error("createsuperuser --noinput needs --username");
        const char *p = getenv("CHAT_SUPERUSER_PASSWORD");
        if (!p || !*p)
            return usage_error("createsuperuser --noinput needs CHAT_SUPERUSER_PASSWORD");
        if (strlen(p) > WRK_PASSWORD_MAX_BYTES)
            return usage_error("CHAT_SUPERUSER_PASSWORD is too long");
        strcpy(password, p);
    } else {
        if (!name) {
            fprintf(stderr, "Username: ");
            long n = read_line(stdin, namebuf, sizeof(namebuf));
            if (n <= 0)
                return usage_error("no username given");
            name = namebuf;
        }
        int rc = read_password("Password: ", password, sizeof(password));
        if (rc)
            return rc;
        if (isatty(STDIN_FILENO)) {
            char again[sizeof(password)];
            rc = read_password("Password (again): ", again, sizeof(again));
            if (rc)
                return rc;
            if (strcmp(again, password) != 0) {
                fprintf(stderr, "chatctl: the passwords differ\n");
                return EXIT_FAILED;
            }
        }
    }
    int rc = wrk_store_batch_begin(c->store);
    if (rc)
        return failed(c, "createsuperuser", rc);
    rc = add_user(c, name, password, SUPERUSER);
    int end = wrk_store_batch_end(c->store, rc == 0);
    if (rc == 0 && end)
        return failed(c, "createsuperuser", end);
    if (rc == 0)
        printf("Superuser created successfully.\n");
    return rc;
}

static int print_user(void *arg, const wrk_user_t *u)
{
    (void)arg;
    printf("%" PRId64 "\t%s\t%s\t%s\n", u->id, u->username,
           u->is_superuser ? "superuser"
           : u->is_staff   ? "staff"
                           : "-",
           u->is_active ? "active" : "inactive");
    return 0;
}

static int cmd_user_import(ctl_t *c)
{
    char line[LINE_MAX_BYTES];
    long lineno = 0, added = 0;
    int rc = wrk_store_batch_begin(c->store);
    if (rc)
        return failed(c, "import", rc);
    for (;;) {
        long n = read_line(stdin, line, sizeof(line));
        if (n == -1)
            break;
        lineno++;
        if (n == -2) {
            fprintf(stderr, "chatctl: line %ld: too long\n", lineno);
            rc = EXIT_FAILED;
            break;
        }
        char *save = NULL;
        char *name = strtok_r(line, " \t", &save);
        if (!name || name[0] == '#')
            continue;
        char *password = strtok_r(NULL, " \t", &save);
        char *flag = strtok_r(NULL, " \t", &save);
        char *extra = strtok_r(NULL, " \t", &save);
        if (!password || extra || (flag && strcmp(flag, "staff") != 0)) {
            fprintf(stderr, "chatctl: line %ld: expected \"NAME PASSWORD [staff]\"\n", lineno);
            rc = EXIT_FAILED;
            break;
        }
        rc = add_user(c, name, password, flag ? STAFF : PLAIN);
        if (rc) {
            fprintf(stderr, "chatctl: line %ld: user \"%s\" not added\n", lineno, name);
            break;
        }
        added++;
    }
    int end = wrk_store_batch_end(c->store, rc == 0);
    if (rc == 0 && end)
        return failed(c, "import", end);
    if (rc) {
        fprintf(stderr, "chatctl: nothing imported\n");
        return rc;
    }
    printf("%ld users imported\n", added);
    return 0;
}

static int cmd_user(ctl_t *c, int argc, char **argv)
{
    if (argc < 1)
        return usage_error("user: which command?");
    const char *sub = argv[0];
    int rc;
    if (strcmp(sub, "list") == 0 && argc == 1) {
        rc = wrk_store_user_each(c->store, print_user, NULL);
        return rc ? failed(c, "list users", rc) : 0;
    }
    if (strcmp(sub, "import") == 0 && argc == 1)
        return cmd_user_import(c);
    if (strcmp(sub, "add") == 0) {
        const char *name = NULL;
        int rights = PLAIN, from_stdin = 0;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--staff") == 0 && rights == PLAIN)
                rights = STAFF;
            else if (strcmp(argv[i], "--superuser") == 0 && rights == PLAIN)
                rights = SUPERUSER;
            else if (strcmp(argv[i], "--password-stdin") == 0)
                from_stdin = 1;
            else if (argv[i][0] != '-' && !name)
                name = argv[i];
            else
                return usage_error("user add: unexpected argument \"%s\"", argv[i]);
        }
        if (!name)
            return usage_error("user add needs a NAME");
        if (!from_stdin)
            return usage_error("user add needs --password-stdin");
        char password[WRK_PASSWORD_MAX_BYTES + 2];
        rc = read_password("Password: ", password, sizeof(password));
        if (rc)
            return rc;
        if ((rc = wrk_store_batch_begin(c->store)))
            return failed(c, "add user", rc);
        rc = add_user(c, name, password, rights);
        int end = wrk_store_batch_end(c->store, rc == 0);
        return rc == 0 && end ? failed(c, "add user", end) : rc;
    }
    if (argc < 2)
        return usage_error("user %s: which user?", sub);
    wrk_user_t u;
    if (strcmp(sub, "passwd") == 0 && argc == 2) {
        if ((rc = find_user(c, argv[1], &u)))
            return rc;
        char password[WRK_PASSWORD_MAX_BYTES + 2];
        char hash[WRK_PASSWORD_HASH_MAX];
        if ((rc = read_password("New password: ", password, sizeof(password))) ||
            (rc = hash_password(c, password, hash)))
            return rc;
        rc = wrk_store_user_set_password(c->store, u.id, hash, 0);
        return rc ? failed(c, "set password", rc) : 0;
    }
    if (strcmp(sub, "staff") == 0 && argc == 3) {
        int on;
        if (parse_on_off(argv[2], &on))
            return usage_error("user staff: expected on or off, got \"%s\"", argv[2]);
        if ((rc = find_user(c, argv[1], &u)))
            return rc;
        /* A superuser is staff too. */
        rc = wrk_store_user_set_staff(c->store, u.id, on);
        if (rc == 0 && !on)
            rc = wrk_store_user_set_superuser(c->store, u.id, 0);
        return rc ? failed(c, "set staff", rc) : 0;
    }
    if (strcmp(sub, "superuser") == 0 && argc == 3) {
        int on;
        if (parse_on_off(argv[2], &on))
            return usage_error("user superuser: expected on or off, got \"%s\"", argv[2]);
        if ((rc = find_user(c, argv[1], &u)))
            return rc;
        rc = wrk_store_user_set_superuser(c->store, u.id, on);
        if (rc == 0 && on)
            rc = wrk_store_user_set_staff(c->store, u.id, 1);
        return rc ? failed(c, "set superuser", rc) : 0;
    }
    if (strcmp(sub, "deactivate") == 0 && argc == 2) {
        if ((rc = find_user(c, argv[1], &u)))
            return rc;
        rc = wrk_store_user_set_active(c->store, u.id, 0);
        return rc ? failed(c, "deactivate", rc) : 0;
    }
    return usage_error("user: unknown command or wrong arguments: \"%s\"", sub);
}

static int print_room(void *arg, const wrk_room_t *r)
{
    (void)arg;
    printf("%" PRId64 "\t%s\t%s\n", r->id, r->title, r->staff_only ? "staff-only" : "-");
    return 0;
}

static int room_result(ctl_t *c, const char *what, const char *id, int rc)
{
    if (rc == MC_ENOTFOUND) {
        fprintf(stderr, "chatctl: no room %s\n", id);
        return EXIT_FAILED;
    }
    if (rc == MC_EINVAL) {
        fprintf(stderr, "chatctl: a room title is 1 to %d bytes of UTF-8\n", WRK_ROOM_TITLE_MAX);
        return EXIT_FAILED;
    }
    return rc ? failed(c, what, rc) : 0;
}

static int cmd_room(ctl_t *c, int argc, char **argv)
{
    if (argc < 1)
        return usage_error("room: which command?");
    const char *sub = argv[0];
    int64_t id;
    int rc;
    if (strcmp(sub, "list") == 0 && argc == 1) {
        rc = wrk_store_room_each(c->store, print_room, NULL);
        return rc ? failed(c, "list rooms", rc) : 0;
    }
    if (strcmp(sub, "add") == 0) {
        const char *title = NULL;
        int staff_only = 0;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--staff-only") == 0)
                staff_only = 1;
            else if (!title && strncmp(argv[i], "--", 2) != 0)
                title = argv[i];
            else
                return usage_error("room add: unexpected argument \"%s\"", argv[i]);
        }
        if (!title)
            return usage_error("room add needs a TITLE");
        rc = wrk_store_room_add(c->store, title, staff_only, &id);
        if (rc)
            return room_result(c, "add room", "", rc);
        printf("%" PRId64 "\n", id);
        return 0;
    }
    if (argc < 2 || parse_id(argv[1], &id))
        return usage_error("room %s: expected a room id", sub);
    if (strcmp(sub, "rename") == 0 && argc == 3)
        return room_result(c, "rename", argv[1], wrk_store_room_rename(c->store, id, argv[2]));
    if (strcmp(sub, "staff-only") == 0 && argc == 3) {
        int on;
        if (parse_on_off(argv[2], &on))
            return usage_error("room staff-only: expected on or off, got \"%s\"", argv[2]);
        return room_result(c, "staff-only", argv[1],
                           wrk_store_room_set_staff_only(c->store, id, on));
    }
    if (strcmp(sub, "rm") == 0 && argc == 2)
        return room_result(c, "remove", argv[1], wrk_store_room_delete(c->store, id));
    return usage_error("room: unknown command or wrong arguments: \"%s\"", sub);
}

/* The progress line of copy-to, on a terminal. */
static void copy_progress(void *arg, const char *table, int64_t done, int64_t total)
{
    (void)arg;
    fprintf(stderr, "\rcopying %s: %" PRId64 " of %" PRId64 "\033[K", table, done, total);
}

static int cmd_copy_to(ctl_t *c, int argc, char **argv)
{
    if (argc != 1)
        return usage_error("copy-to takes one TARGET database");
    char name[256];
    wrk_store_describe(argv[0], name, sizeof(name));
    wrk_store_t *to = NULL;
    int rc = open_migrated(&to, argv[0]);
    if (rc)
        return rc;
    int tty = isatty(STDERR_FILENO);
    wrk_store_copy_counts_t n;
    rc = wrk_store_copy(c->store, to, tty ? copy_progress : NULL, NULL, &n);
    if (tty)
        fprintf(stderr, "\r\033[K");
    if (rc)
        fprintf(stderr, "chatctl: copy-to %s: %s\n", name,
                rc == MC_ENOMEM ? mc_strerror(rc) : wrk_store_errmsg(to));
    else
        printf("copied %" PRId64 " users, %" PRId64 " rooms, %" PRId64 " sessions, %" PRId64
               " messages, %" PRId64 " whispers, %" PRId64 " secrets into %s\n",
               n.users, n.rooms, n.sessions, n.messages, n.whispers, n.secrets, name);
    wrk_store_close(to);
    return rc ? EXIT_FAILED : 0;
}

int main(int argc, char **argv)
{
    ctl_t c = {
        .db = "var/chat.sqlite3",
        .argon2_m = WRK_PASSWORD_DEFAULT_M_KIB,
        .argon2_t = WRK_PASSWORD_DEFAULT_T,
        .argon2_p = WRK_PASSWORD_DEFAULT_P,
    };
    mc_option_t opts[] = {
        {"--db", "CHAT_DB", MC_OPT_STRING, &c.db, 0, 0,
         "the database: a sqlite file, or a postgresql:// URI or conninfo"},
        {"--argon2-memory", "CHAT_ARGON2_MEMORY_KIB", MC_OPT_INT, &c.argon2_m, 8, 4194304,
         "argon2id memory cost of new hashes, KiB"},
        {"--argon2-time", "CHAT_ARGON2_TIME", MC_OPT_INT, &c.argon2_t, 1, 100,
         "argon2id passes of new hashes"},
        {"--argon2-lanes", "CHAT_ARGON2_LANES", MC_OPT_INT, &c.argon2_p, 1, 64,
         "argon2id lanes of new hashes"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    mc_log_init("chatctl", MC_LOG_WARN);
    char err[256];
    int first = argc;
    int rc = mc_config_parse(opts, nopts, argc, argv, &first, err, sizeof(err));
    if (rc == MC_CONFIG_HELP) {
        mc_config_usage(stdout, "chatctl", synopsis, opts, nopts);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "chatctl: %s\n", err);
        return EXIT_USAGE;
    }
    if (first >= argc)
        return usage_error("which command?");
    const char *cmd = argv[first];
    if (strcmp(cmd, "migrate") && strcmp(cmd, "createsuperuser") && strcmp(cmd, "user") &&
        strcmp(cmd, "room") && strcmp(cmd, "copy-to"))
        return usage_error("unknown command \"%s\"", cmd);

    rc = open_store(&c);
    if (rc == 0) {
        int sub_argc = argc - first - 1;
        char **sub_argv = argv + first + 1;
        if (strcmp(cmd, "migrate") == 0) {
            int v = 0;
            wrk_store_version(c.store, &v);
            printf("schema version %d\n", v);
            rc = sub_argc ? usage_error("migrate takes no arguments") : 0;
        } else if (strcmp(cmd, "createsuperuser") == 0) {
            rc = cmd_createsuperuser(&c, sub_argc, sub_argv);
        } else if (strcmp(cmd, "user") == 0) {
            rc = cmd_user(&c, sub_argc, sub_argv);
        } else if (strcmp(cmd, "copy-to") == 0) {
            rc = cmd_copy_to(&c, sub_argc, sub_argv);
        } else {
            rc = cmd_room(&c, sub_argc, sub_argv);
        }
    }
    wrk_store_close(c.store);
    return rc;
}
