/*
 * pxl_conf.c - loads the app file and checks it against one key table.
 * Owns struct pxl_config and its defaults. It does not open plugins or
 * sockets: a config that loads here is only a promise the others check.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_log.h"

#define MiB (1024 * 1024)

enum key_type {
        KEY_INT,
        KEY_BOOL,
        KEY_STRING,
        KEY_GROUP,
        KEY_LIST,    /* plugins */
        KEY_STRINGS, /* a list or array of strings, stored NULL-terminated */
        KEY_INT_AUTO, /* an integer, or the string "auto" (stored as 0) */
};

typedef const char *key_check_fn(struct pxl_config *conf, const char *value);

struct conf_key {
        const char *name;
        enum key_type type;
        long long min, max;
        size_t offset; /* into struct pxl_config; unused for groups/lists */
        size_t width;  /* sizeof the field */
        key_check_fn *check; /* for strings: NULL or returns an error text */
        const char *def;
        const char *help;
};

static key_check_fn check_log_level, check_log_format, check_path,
        check_secret_encoding, check_algorithm, check_visible_to;

#define F(field)                                                               \
        offsetof(struct pxl_config, field),                                    \
                sizeof(((struct pxl_config *)0)->field)
#define NOF 0, 0

/* The one table of keys: validation, -T and pxl.cfg(5) come from it. */
static const struct conf_key conf_keys[] = {
        {"name", KEY_STRING, 1, 64, F(name), NULL, NULL,
         "app name, used in logs and Redis channel names (required)"},
        {"raw_text", KEY_BOOL, 0, 1, F(raw_text), NULL, "false",
         "send text messages to the raw handler instead of the JSON router"},
        {"connected_frame", KEY_BOOL, 0, 1, F(connected_frame), NULL, "true",
         "greet each client with system/connected (and auth/authenticated); "
         "false for apps that speak their own protocol"},
        {"shutdown_timeout", KEY_INT, 0, 3600, F(shutdown_timeout), NULL, "5",
         "seconds to wait for clients to answer the 1001 close at shutdown"},
        {"workers", KEY_INT_AUTO, 1, 256, F(workers), NULL, "1",
         "worker processes, each with its own event loop and listening "
         "socket (SO_REUSEPORT); \"auto\" = one per online CPU; more than "
         "1 needs redis"},
        {"plugins", KEY_LIST, 0, 0, NOF, NULL, NULL,
         "list of plugins: a name (looked up in PXL_PLUGIN_PATH, then the "
         "plugin directory), a path relative to the app file, or a group { "
         "path = ...; settings = { ... }; }"},
        {"listen", KEY_GROUP, 0, 0, NOF, NULL, NULL,
         "where to accept WebSocket clients"},
        {"listen.host", KEY_STRING, 1, 255, F(host), NULL, "\"0.0.0.0\"",
         "address to bind"},
        {"listen.port", KEY_INT, 0, 65535, F(port), NULL, "8080",
         "TCP port (0 = any free port, logged at start)"},
        {"listen.path", KEY_STRING, 1, 255, F(path), check_path, "\"/ws\"",
         "request path of the WebSocket endpoint"},
        {"listen.backlog", KEY_INT, 1, 65535, F(backlog), NULL, "511",
         "listen(2) backlog"},
        {"listen.tls", KEY_GROUP, 0, 0, NOF, NULL, NULL,
         "serve wss:// (TLS) instead of ws://"},
        {"listen.tls.certificate", KEY_STRING, 1, 4095, F(tls_cert), NULL,
         NULL, "PEM certificate chain, relative to the app file"},
        {"listen.tls.key", KEY_STRING, 1, 4095, F(tls_key), NULL, NULL,
         "PEM private key, relative to the app file"},
        {"limits", KEY_GROUP, 0, 0, NOF, NULL, NULL,
         "limits on what clients send"},
        {"limits.max_message_size", KEY_INT, 1, 1LL << 31,
         F(limits.max_message_size), NULL, "4194304",
         "largest message in bytes (inclusive); larger closes with 1009"},
        {"limits.max_frame_size", KEY_INT, 1, 1LL << 31,
         F(limits.max_frame_size), NULL, "4194304",
         "largest frame payload in bytes (inclusive); larger closes with 1009"},
        {"limits.max_json_depth", KEY_INT, 1, 1024, F(limits.max_json_depth),
         NULL, "64", "deepest JSON nesting accepted (the outer object is 1)"},
        {"limits.handshake_timeout", KEY_INT, 1, 3600,
         F(limits.handshake_timeout), NULL, "10",
         "seconds from accept a client has to complete the HTTP upgrade"},
        {"limits.max_header_size", KEY_INT, 256, 1 << 20,
         F(limits.max_header_size), NULL, "8192",
         "largest upgrade request head in bytes; larger gets 400"},
        {"limits.max_connections", KEY_INT, 1, 1 << 24,
         F(limits.max_connections), NULL, "10000",
         "open WebSocket connections per worker; more get 503"},
        {"limits.max_output_bytes", KEY_INT, 1024, 1LL << 32,
         F(limits.max_output_bytes), NULL, "8388608",
         "bytes queued to one client before it is closed with 4009 (one "
         "larger message passes when nothing else is queued)"},
        {"limits.max_handshakes", KEY_INT, 1, 1 << 24,
         F(limits.max_handshakes), NULL, "1000",
         "connections still in their HTTP upgrade per worker; a new one "
         "beyond it drops the oldest"},
        {"limits.max_connections_per_ip", KEY_INT, 0, 1 << 24,
         F(limits.max_connections_per_ip), NULL, "1000",
         "connections (upgrading ones too) from one address per worker; "
         "more get 503 (0 = no limit)"},
        {"limits.rate", KEY_INT, 0, 1000000, F(limits.rate), NULL, "1000",
         "messages per second a client may send on average (0 = no limit); "
         "beyond it: the error Rate limit exceeded"},
        {"limits.burst", KEY_INT, 1, 1000000, F(limits.burst), NULL, "2000",
         "messages a client may send at once beyond the rate; that many "
         "refused in a row close it with 4008"},
        {"limits.max_metadata_size", KEY_INT, 0, 1 << 30,
         F(limits.max_metadata_size), NULL, "65536",
         "bytes of metadata (keys and JSON values) one client may carry"},
        {"limits.max_metadata_entry_size", KEY_INT, 0, 1 << 30,
         F(limits.max_metadata_entry_size), NULL, "16384",
         "bytes of one metadata key and its JSON value"},
        {"log", KEY_GROUP, 0, 0, NOF, NULL, NULL, "logging"},
        {"log.level", KEY_STRING, 1, 16, NOF, check_log_level, "\"info\"",
         "err, warn, notice, info or debug"},
        {"log.format", KEY_STRING, 1, 16, NOF, check_log_format, "\"logfmt\"",
         "logfmt or json"},
        {"listen.origins", KEY_STRINGS, 1, 4096, F(origins), NULL, "any",
         "allowed Origin header values (exact match); others get 403"},
        {"auth", KEY_GROUP, 0, 0, NOF, NULL, NULL, "authentication of upgrade requests"},
        {"auth.jwt", KEY_GROUP, 0, 0, NOF, NULL, NULL,
         "JWT bearer tokens, checked before the 101"},
        {"auth.jwt.secret", KEY_STRING, 1, 4096, F(auth.secret), NULL, NULL,
         "HMAC secret for HS256/HS384/HS512"},
        {"auth.jwt.secret_encoding", KEY_STRING, 1, 16, NOF,
         check_secret_encoding, "\"raw\"",
         "raw, or base64url (decoded first, as the Node.js framework does)"},
        {"auth.jwt.public_key", KEY_STRING, 1, 4095, F(auth.public_key), NULL,
         NULL, "PEM public key file for RS256/RS384/RS512/ES256/ES384/ES512"},
        {"auth.jwt.algorithm", KEY_STRING, 1, 16, F(auth.algorithm),
         check_algorithm, "\"HS256\"",
         "the one algorithm accepted; tokens naming another (or none) get 401"},
        {"auth.jwt.required", KEY_BOOL, 0, 1, F(auth.required), NULL, "false",
         "refuse upgrades without a token (401)"},
        {"auth.jwt.issuer", KEY_STRING, 1, 1024, F(auth.issuer), NULL, NULL,
         "required iss claim"},
        {"auth.jwt.audience", KEY_STRING, 1, 1024, F(auth.audience), NULL,
         NULL, "required aud claim (a string, or one of an array)"},
        {"auth.jwt.leeway", KEY_INT, 0, 3600, F(auth.leeway), NULL, "0",
         "seconds of clock skew allowed on exp and nbf"},
        {"rooms", KEY_GROUP, 0, 0, NOF, NULL, NULL, "rooms"},
        {"rooms.multiple", KEY_BOOL, 0, 1, F(rooms.multiple), NULL, "true",
         "a client may be in several rooms; false: joining leaves the current one"},
        {"rooms.max_name_length", KEY_INT, 1, 65535, F(rooms.max_name_length),
         NULL, "128", "longest room name in bytes"},
        {"rooms.max_per_client", KEY_INT, 1, 65535, F(rooms.max_per_client),
         NULL, "64", "rooms one client may be in at once"},
        {"rooms.notify_members", KEY_BOOL, 0, 1, F(rooms.notify_members), NULL,
         "false", "tell members when a client joins or leaves their room"},
        {"rooms.members_visible_to", KEY_STRING, 1, 16, NOF, check_visible_to,
         "\"all\"", "all, or members (who may ask system/roomMembers)"},
        {"rooms.max_member_field_length", KEY_INT, 1, 1 << 20,
         F(rooms.max_member_field_length), NULL, "256",
         "longest userId (as text), userType or username a joinRoom may "
         "give, in bytes"},
        {"presence", KEY_GROUP, 0, 0, NOF, NULL, NULL, "presence lists"},
        {"presence.client_list", KEY_BOOL, 0, 1, F(presence_client_list), NULL,
         "false", "send every client the clientList frame on each change (O(clients) frames)"},
        {"presence.include_payload", KEY_BOOL, 0, 1,
         F(presence_include_payload), NULL, "false",
         "include each client's JWT payload in clientList"},
        {"presence.interval", KEY_INT, 0, 60000, F(presence_interval), NULL,
         "250",
         "milliseconds: after a clientList frame, changes within this time "
         "are coalesced into one more frame (0 = a frame per change)"},
        {"inactivity", KEY_GROUP, 0, 0, NOF, NULL, NULL, "closing idle clients"},
        {"inactivity.max_idle", KEY_INT, 0, 86400 * 365, F(max_idle), NULL,
         "0", "seconds without a message or ping before close 4000 (0 = never)"},
        {"inactivity.check_interval", KEY_INT, 1, 86400, F(check_interval),
         NULL, "60", "seconds between idle checks"},
        {"heartbeat", KEY_GROUP, 0, 0, NOF, NULL, NULL, "dead-peer detection"},
        {"heartbeat.interval", KEY_INT, 0, 86400, F(heartbeat_interval), NULL,
         "0", "seconds between server pings (0 = off)"},
        {"heartbeat.timeout", KEY_INT, 1, 86400, F(heartbeat_timeout), NULL,
         "30", "seconds to wait for a pong before close 4001"},
        {"metrics", KEY_GROUP, 0, 0, NOF, NULL, NULL, "live metrics"},
        {"metrics.log_interval", KEY_INT, 0, 86400, F(metrics_log_interval),
         NULL, "0", "seconds between metrics log lines (0 = never)"},
        {"redis", KEY_GROUP, 0, 0, NOF, NULL, NULL,
         "coordinate workers and machines through Redis pub/sub"},
        {"redis.host", KEY_STRING, 1, 255, F(redis.host), NULL,
         "\"127.0.0.1\"", "Redis server address (TCP, no TLS)"},
        {"redis.port", KEY_INT, 1, 65535, F(redis.port), NULL, "6379",
         "Redis server port"},
        {"redis.socket", KEY_STRING, 1, 107, F(redis.socket), NULL, NULL,
         "unix socket path, relative to the app file; replaces host and port"},
        {"redis.user", KEY_STRING, 1, 255, F(redis.user), NULL, NULL,
         "ACL user name (AUTH user password); needs password"},
        {"redis.password", KEY_STRING, 1, 4096, F(redis.password), NULL, NULL,
         "password sent with AUTH"},
        {"redis.database", KEY_INT, 0, 65535, F(redis.database), NULL, "0",
         "database number (SELECT) for membership keys"},
        {"redis.required", KEY_BOOL, 0, 1, F(redis.required), NULL, "false",
         "refuse to start while Redis cannot be reached; false: serve local "
         "clients and keep retrying"},
        {"redis.connect_timeout", KEY_INT, 1, 3600, F(redis.connect_timeout),
         NULL, "2", "seconds for a connection to Redis to open"},
        {"redis.retry_max_delay", KEY_INT, 1, 3600, F(redis.retry_max_delay),
         NULL, "5",
         "cap in seconds of the reconnect backoff (0.1 s doubling)"},
        {"redis.heartbeat_interval", KEY_INT, 1, 3600,
         F(redis.heartbeat_interval), NULL, "1",
         "seconds between a worker's heartbeats in Redis"},
        {"redis.dead_after", KEY_INT, 2, 86400, F(redis.dead_after), NULL, "5",
         "seconds without a heartbeat after which a worker's clients leave "
         "the cluster (must exceed heartbeat_interval)"},
};

static const char *check_secret_encoding(struct pxl_config *conf,
                                         const char *v)
{
        if (strcmp(v, "raw") == 0)
                conf->auth.secret_base64url = false;
        else if (strcmp(v, "base64url") == 0)
                conf->auth.secret_base64url = true;
        else
                return "must be raw or base64url";
        return NULL;
}

static const char *check_algorithm(struct pxl_config *conf, const char *v)
{
        static const char *const algs[] = {"HS256", "HS384", "HS512",
                                           "RS256", "RS384", "RS512",
                                           "ES256", "ES384", "ES512"};

        (void)conf;
        for (size_t i = 0; i < sizeof(algs) / sizeof(*algs); i++)
                if (strcmp(v, algs[i]) == 0)
                        return NULL;
        return "must be one of HS256, HS384, HS512, RS256, RS384, RS512, "
               "ES256, ES384, ES512";
}

static const char *check_visible_to(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "all") == 0)
                conf->rooms.members_visible_to_all = true;
        else if (strcmp(v, "members") == 0)
                conf->rooms.members_visible_to_all = false;
        else
                return "must be all or members";
        return NULL;
}

static const char *check_log_level(struct pxl_config *conf, const char *v)
{
        int level = pxl_log_level_from_name(v);

        if (level < 0)
                return "must be one of err, warn, notice, info, debug";
        conf->log_level = level;
        return NULL;
}

static const char *check_log_format(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "logfmt") == 0)
                conf->log_format = PXL_LOG_LOGFMT;
        else if (strcmp(v, "json") == 0)
                conf->log_format = PXL_LOG_JSON;
        else
                return "must be logfmt or json";
        return NULL;
}

static const char *check_path(struct pxl_config *conf, const char *v)
{
        (void)conf;
        if (v[0] != '/')
                return "must start with '/'";
        if (strpbrk(v, "?# \t") != NULL)
                return "must be a plain path (no query, fragment or spaces)";
        return NULL;
}

struct loader {
        struct pxl_config *conf;
        struct pxl_str *errors;
        const char *name; /* file name for messages */
        int nerrors;
};

static void conf_error(struct loader *ld, const config_setting_t *s,
                       const char *key, const char *fmt, ...) PXL_PRINTF(4, 5);

static void conf_error(struct loader *ld, const config_setting_t *s,
                       const char *key, const char *fmt, ...)
{
        const char *file = s != NULL ? config_setting_source_file(s) : NULL;
        va_list ap;

        /* A key that is missing altogether has no line to point at. */
        if (s == NULL && key == NULL)
                key = "config";
        va_start(ap, fmt);
        (void)pxl_str_vreport(ld->errors, file != NULL ? file : ld->name,
                              s != NULL ? (int)config_setting_source_line(s)
                                        : 0,
                              key, fmt, ap);
        va_end(ap);
        ld->nerrors++;
}

/* Not an error: -t still passes, but says what will surprise. The text
 * starts with "warning: ". */
static void conf_warning(struct loader *ld, const char *key, const char *fmt,
                         ...) PXL_PRINTF(3, 4);

static void conf_warning(struct loader *ld, const char *key, const char *fmt,
                         ...)
{
        const config_setting_t *s = config_lookup(&ld->conf->cfg, key);
        const char *file = s != NULL ? config_setting_source_file(s) : NULL;
        va_list ap;

        va_start(ap, fmt);
        (void)pxl_str_vreport(
                &ld->conf->warnings, file != NULL ? file : ld->name,
                s != NULL ? (int)config_setting_source_line(s) : 0, key, fmt,
                ap);
        va_end(ap);
}

static const struct conf_key *find_key(const char *name)
{
        for (size_t i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++)
                if (strcmp(conf_keys[i].name, name) == 0)
                        return &conf_keys[i];
        return NULL;
}

static const char *type_name(int t)
{
        switch (t) {
        case CONFIG_TYPE_GROUP:
                return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a float";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array";
        case CONFIG_TYPE_LIST:
                return "a list";
        default:
                return "something else";
        }
}

static const char *const key_type_names[] = {
        "integer", "boolean", "string", "group", "list", "strings", "int|auto"};

static void store_int(void *field, size_t width, long long v)
{
        switch (width) {
        case sizeof(uint64_t):
                *(uint64_t *)field = (uint64_t)v;
                break;
        case sizeof(unsigned):
                *(unsigned *)field = (unsigned)v;
                break;
        default:
                abort(); /* a table entry with a field we cannot store */
        }
}

static void free_strings(char **v)
{
        for (size_t i = 0; v != NULL && v[i] != NULL; i++)
                free(v[i]);
        free(v);
}

static char *dup_or_oom(struct loader *ld, const char *s)
{
        char *d = strdup(s);

        if (d == NULL)
                conf_error(ld, NULL, NULL, "out of memory");
        return d;
}

/* A bare name is looked up; anything with a '/' or ".so" is a path. */
static char *resolve_plugin(struct loader *ld, const config_setting_t *s,
                            const char *key, const char *entry)
{
        size_t n = strlen(entry);
        char buf[PATH_MAX];
        const char *env;

        if (n == 0) {
                conf_error(ld, s, key, "empty plugin path");
                return NULL;
        }
        if (strchr(entry, '/') != NULL ||
            (n > 3 && strcmp(entry + n - 3, ".so") == 0)) {
                if (entry[0] == '/')
                        return dup_or_oom(ld, entry);
                snprintf(buf, sizeof(buf), "%s/%s", ld->conf->dir, entry);
                return dup_or_oom(ld, buf);
        }
        env = getenv("PXL_PLUGIN_PATH");
        while (env != NULL && *env != '\0') {
                const char *end = strchr(env, ':');
                size_t len = end ? (size_t)(end - env) : strlen(env);

                if (len > 0) {
                        snprintf(buf, sizeof(buf), "%.*s/%s.so", (int)len, env,
                                 entry);
                        if (access(buf, R_OK) == 0)
                                return dup_or_oom(ld, buf);
                }
                env = end ? end + 1 : NULL;
        }
        snprintf(buf, sizeof(buf), "%s/%s.so", PXL_PLUGINDIR, entry);
        if (access(buf, R_OK) == 0)
                return dup_or_oom(ld, buf);
        conf_error(ld, s, key,
                   "plugin \"%s\" not found in PXL_PLUGIN_PATH or %s", entry,
                   PXL_PLUGINDIR);
        return NULL;
}

static void load_plugins(struct loader *ld, const config_setting_t *list)
{
        struct pxl_config *conf = ld->conf;
        int n = config_setting_length(list);

        conf->plugins = calloc((size_t)n + 1, sizeof(*conf->plugins));
        if (conf->plugins == NULL) {
                conf_error(ld, list, "plugins", "out of memory");
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *e =
                        config_setting_get_elem(list, (unsigned)i);
                const config_setting_t *settings = NULL;
                const char *path = NULL;
                char key[64];

                snprintf(key, sizeof(key), "plugins[%d]", i);
                if (config_setting_type(e) == CONFIG_TYPE_STRING) {
                        path = config_setting_get_string(e);
                } else if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
                        for (int j = 0; j < config_setting_length(e); j++) {
                                const config_setting_t *m =
                                        config_setting_get_elem(e, (unsigned)j);
                                const char *mn = config_setting_name(m);

                                if (strcmp(mn, "path") == 0 &&
                                    config_setting_type(m) ==
                                            CONFIG_TYPE_STRING)
                                        path = config_setting_get_string(m);
                                else if (strcmp(mn, "settings") == 0 &&
                                         config_setting_type(m) ==
                                                 CONFIG_TYPE_GROUP)
                                        settings = m;
                                else if (strcmp(mn, "path") == 0 ||
                                         strcmp(mn, "settings") == 0)
                                        conf_error(
                                                ld, m, key,
                                                "%s must be %s, not %s", mn,
                                                strcmp(mn, "path") == 0
                                                        ? "a string"
                                                        : "a group",
                                                type_name(config_setting_type(
                                                        m)));
                                else
                                        conf_error(ld, m, key,
                                                   "unknown key \"%s\" "
                                                   "(expected path, settings)",
                                                   mn);
                        }
                        if (path == NULL) {
                                conf_error(ld, e, key, "missing path");
                                continue;
                        }
                } else {
                        conf_error(ld, e, key,
                                   "expected a string or a group, got %s",
                                   type_name(config_setting_type(e)));
                        continue;
                }
                char *resolved = resolve_plugin(ld, e, key, path);
                if (resolved == NULL)
                        continue;
                conf->plugins[conf->nplugins].path = resolved;
                conf->plugins[conf->nplugins].settings = settings;
                conf->plugins[conf->nplugins].line =
                        (int)config_setting_source_line(e);
                conf->nplugins++;
        }
}

static void load_value(struct loader *ld, const config_setting_t *s,
                       const struct conf_key *k, const char *key)
{
        int t = config_setting_type(s);
        char *field = (char *)ld->conf + k->offset;

        switch (k->type) {
        case KEY_INT_AUTO:
                if (t == CONFIG_TYPE_STRING) {
                        if (strcmp(config_setting_get_string(s), "auto") != 0)
                                conf_error(ld, s, key,
                                           "\"%s\" must be an integer or \"auto\"",
                                           config_setting_get_string(s));
                        else
                                store_int(field, k->width, 0);
                        return;
                }
                /* fall through */
        case KEY_INT: {
                long long v;

                if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
                        conf_error(ld, s, key, "expected an integer, got %s",
                                   type_name(t));
                        return;
                }
                v = config_setting_get_int64(s);
                if (v < k->min || v > k->max) {
                        conf_error(ld, s, key,
                                   "%lld is out of range %lld..%lld", v, k->min,
                                   k->max);
                        return;
                }
                store_int(field, k->width, v);
                return;
        }
        case KEY_BOOL:
                if (t != CONFIG_TYPE_BOOL) {
                        conf_error(ld, s, key,
                                   "expected a boolean (true or false), got %s",
                                   type_name(t));
                        return;
                }
                *(bool *)field = config_setting_get_bool(s) != 0;
                return;
        case KEY_STRING: {
                const char *v, *why;
                size_t len;

                if (t != CONFIG_TYPE_STRING) {
                        conf_error(ld, s, key, "expected a string, got %s",
                                   type_name(t));
                        return;
                }
                v = config_setting_get_string(s);
                len = strlen(v);
                if ((long long)len < k->min || (long long)len > k->max) {
                        conf_error(ld, s, key,
                                   "\"%s\" must be %lld to %lld characters", v,
                                   k->min, k->max);
                        return;
                }
                if (k->check != NULL && (why = k->check(ld->conf, v)) != NULL) {
                        conf_error(ld, s, key, "\"%s\" %s", v, why);
                        return;
                }
                if (k->width != 0) {
                        char **dst = (char **)field;
                        char *copy = dup_or_oom(ld, v);

                        if (copy != NULL) {
                                free(*dst);
                                *dst = copy;
                        }
                }
                return;
        }
        case KEY_STRINGS: {
                int n = config_setting_length(s);
                char **v;

                if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
                        conf_error(ld, s, key, "expected a list of strings, got %s", type_name(t));
                        return;
                }
                v = calloc((size_t)n + 1, sizeof(*v));
                if (v == NULL) {
                        conf_error(ld, s, key, "out of memory");
                        return;
                }
                free_strings(*(char ***)field);
                *(char ***)field = v;
                for (int i = 0; i < n; i++) {
                        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

                        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                                conf_error(ld, e, key, "element %d: expected a string, got %s",
                                           i, type_name(config_setting_type(e)));
                                continue;
                        }
                        v[i] = dup_or_oom(ld, config_setting_get_string(e));
                        if (v[i] == NULL)
                                return;
                }
                return;
        }
        case KEY_LIST:
                if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
                        conf_error(ld, s, key,
                                   "expected a list ( ... ), got %s",
                                   type_name(t));
                        return;
                }
                load_plugins(ld, s);
                return;
        case KEY_GROUP:
                break;
        }
}

static void load_group(struct loader *ld, const config_setting_t *group,
                       const char *prefix)
{
        int n = config_setting_length(group);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s =
                        config_setting_get_elem(group, (unsigned)i);
                const struct conf_key *k;
                char key[256];

                if (prefix[0] != '\0')
                        snprintf(key, sizeof(key), "%s.%s", prefix,
                                 config_setting_name(s));
                else
                        snprintf(key, sizeof(key), "%s",
                                 config_setting_name(s));
                k = find_key(key);
                if (k == NULL) {
                        conf_error(ld, s, key, "unknown key");
                        continue;
                }
                if (k->type == KEY_GROUP) {
                        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
                                conf_error(ld, s, key,
                                           "expected a group { ... }, got %s",
                                           type_name(config_setting_type(s)));
                                continue;
                        }
                        load_group(ld, s, key);
                        continue;
                }
                load_value(ld, s, k, key);
        }
}

/* The key must suit the algorithm: a secret for HS*, a public key else. */
static void check_auth(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const config_setting_t *jwt = config_lookup(&conf->cfg, "auth.jwt");
        bool hmac = conf->auth.algorithm[0] == 'H';

        conf->auth.enabled = jwt != NULL;
        if (jwt == NULL)
                return;
        if (hmac && conf->auth.secret == NULL)
                conf_error(ld, jwt, "auth.jwt", "%s needs a secret",
                           conf->auth.algorithm);
        else if (!hmac && conf->auth.public_key == NULL)
                conf_error(ld, jwt, "auth.jwt", "%s needs a public_key",
                           conf->auth.algorithm);
        else if (hmac && conf->auth.public_key != NULL)
                conf_error(ld, jwt, "auth.jwt",
                           "public_key is for RS/ES algorithms, not %s",
                           conf->auth.algorithm);
        else if (!hmac && conf->auth.secret != NULL)
                conf_error(ld, jwt, "auth.jwt",
                           "secret is for HS algorithms, not %s",
                           conf->auth.algorithm);
}

/* Several workers only make one app through Redis. */
static void check_cluster(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const config_setting_t *redis = config_lookup(&conf->cfg, "redis");

        conf->redis.enabled = redis != NULL;
        if (conf->workers == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);

                conf->workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
        }
        if (conf->workers > 1 && redis == NULL)
                conf_error(ld, config_lookup(&conf->cfg, "workers"), "workers",
                           "%u workers need a redis { ... } section to "
                           "coordinate through (or set workers = 1)",
                           conf->workers);
        if (redis == NULL)
                return;
        if (conf->redis.user != NULL && conf->redis.password == NULL)
                conf_error(ld, config_lookup(&conf->cfg, "redis.user"),
                           "redis.user", "needs redis.password");
        if (conf->redis.dead_after <= conf->redis.heartbeat_interval)
                conf_error(ld, config_lookup(&conf->cfg, "redis.dead_after"),
                           "redis.dead_after",
                           "%u must be more than redis.heartbeat_interval (%u)",
                           conf->redis.dead_after,
                           conf->redis.heartbeat_interval);
}

/* Files named in the app file are relative to it, like plugins. */
static void relative_to_app(struct loader *ld, char **path)
{
        char buf[PATH_MAX];

        if (*path == NULL || (*path)[0] == '/')
                return;
        snprintf(buf, sizeof(buf), "%s/%s", ld->conf->dir, *path);
        free(*path);
        *path = dup_or_oom(ld, buf);
}

static int set_defaults(struct pxl_config *c)
{
        c->host = strdup("0.0.0.0");
        c->path = strdup("/ws");
        c->port = 8080;
        c->backlog = 511;
        c->shutdown_timeout = 5;
        c->limits.max_message_size = 4 * MiB;
        c->limits.max_frame_size = 4 * MiB;
        c->limits.max_json_depth = 64;
        c->limits.handshake_timeout = 10;
        c->limits.max_header_size = 8192;
        c->limits.max_connections = 10000;
        c->limits.max_output_bytes = 8 * MiB;
        c->limits.max_handshakes = 1000;
        c->limits.max_connections_per_ip = 1000;
        c->limits.rate = 1000;
        c->limits.burst = 2000;
        c->limits.max_metadata_size = 65536;
        c->limits.max_metadata_entry_size = 16384;
        c->connected_frame = true;
        c->presence_interval = 250;
        c->rooms.max_member_field_length = 256;
        c->log_level = PXL_LOG_INFO;
        c->log_format = PXL_LOG_LOGFMT;
        c->rooms.multiple = true;
        c->rooms.max_name_length = 128;
        c->rooms.max_per_client = 64;
        c->rooms.members_visible_to_all = true;
        c->check_interval = 60;
        c->heartbeat_timeout = 30;
        c->auth.algorithm = strdup("HS256");
        c->workers = 1;
        c->redis.host = strdup("127.0.0.1");
        c->redis.port = 6379;
        c->redis.connect_timeout = 2;
        c->redis.retry_max_delay = 5;
        c->redis.heartbeat_interval = 1;
        c->redis.dead_after = 5;
        return c->host && c->path && c->auth.algorithm && c->redis.host
                       ? 0
                       : PXL_ENOMEM;
}

static struct pxl_config *load(const char *file, const char *text,
                               struct pxl_str *errors)
{
        struct pxl_config *conf = calloc(1, sizeof(*conf));
        struct loader ld = {conf, errors, file, 0};
        int ok;

        if (conf == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return NULL;
        }
        config_init(&conf->cfg);
        if (set_defaults(conf) < 0 || (conf->file = strdup(file)) == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                pxl_conf_free(conf);
                return NULL;
        }
        {
                const char *slash = strrchr(file, '/');
                conf->dir =
                        slash ? strndup(file, (size_t)(slash - file == 0
                                                               ? 1
                                                               : slash - file))
                              : strdup(".");
                if (conf->dir == NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        pxl_conf_free(conf);
                        return NULL;
                }
        }
        if (text != NULL) {
                ok = config_read_string(&conf->cfg, text);
        } else {
                /* Paths in @include are relative to the app file, like plugins.
                 */
                config_set_include_dir(&conf->cfg, conf->dir);
                ok = config_read_file(&conf->cfg, file);
        }
        if (!ok) {
                int err = errno ? errno : ENOENT;
                const char *efile = config_error_file(&conf->cfg);

                if (config_error_type(&conf->cfg) == CONFIG_ERR_FILE_IO)
                        pxl_str_report(errors, file, 0, NULL, "cannot read: %s",
                                       strerror(err));
                else
                        pxl_str_report(errors, efile ? efile : file,
                                       config_error_line(&conf->cfg), NULL,
                                       "%s", config_error_text(&conf->cfg));
                pxl_conf_free(conf);
                return NULL;
        }
        load_group(&ld, config_root_setting(&conf->cfg), "");
        if (conf->name == NULL)
                conf_error(&ld, NULL, "name",
                           "missing (every app needs a name)");
        if ((conf->tls_cert == NULL) != (conf->tls_key == NULL))
                conf_error(&ld, config_lookup(&conf->cfg, "listen.tls"),
                           "listen.tls", "needs both certificate and key");
        relative_to_app(&ld, &conf->tls_cert);
        relative_to_app(&ld, &conf->tls_key);
        relative_to_app(&ld, &conf->auth.public_key);
        relative_to_app(&ld, &conf->redis.socket);
        check_auth(&ld);
        check_cluster(&ld);
        if (conf->limits.max_frame_size > conf->limits.max_message_size)
                conf_error(&ld,
                           config_lookup(&conf->cfg, "limits.max_frame_size"),
                           "limits.max_frame_size",
                           "%llu is larger than limits.max_message_size (%llu)",
                           (unsigned long long)conf->limits.max_frame_size,
                           (unsigned long long)conf->limits.max_message_size);
        if (conf->limits.max_output_bytes < conf->limits.max_message_size)
                conf_warning(&ld, "limits.max_output_bytes",
                             "warning: %llu is below "
                             "limits.max_message_size (%llu): "
                             "a reply that big goes out only when nothing "
                             "else is queued for its client",
                             (unsigned long long)conf->limits.max_output_bytes,
                             (unsigned long long)conf->limits.max_message_size);
        conf->nerrors = (unsigned)ld.nerrors;
        return conf;
}

struct pxl_config *pxl_conf_load(const char *file, struct pxl_str *errors)
{
        return load(file, NULL, errors);
}

struct pxl_config *pxl_conf_load_string(const char *text, const char *name,
                                        struct pxl_str *errors)
{
        return load(name, text, errors);
}

void pxl_conf_free(struct pxl_config *conf)
{
        if (conf == NULL)
                return;
        for (size_t i = 0; i < conf->nplugins; i++)
                free(conf->plugins[i].path);
        free(conf->plugins);
        free(conf->file);
        free(conf->dir);
        free(conf->name);
        free(conf->host);
        free(conf->path);
        free(conf->tls_cert);
        free(conf->tls_key);
        free_strings(conf->origins);
        free(conf->auth.secret);
        free(conf->auth.public_key);
        free(conf->auth.algorithm);
        free(conf->auth.issuer);
        free(conf->auth.audience);
        free(conf->redis.host);
        free(conf->redis.socket);
        free(conf->redis.user);
        free(conf->redis.password);
        pxl_str_fini(&conf->warnings);
        config_destroy(&conf->cfg);
        free(conf);
}

void pxl_conf_print_keys(void)
{
        for (size_t i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++) {
                const struct conf_key *k = &conf_keys[i];

                printf("%-26s %-11s %-10s %s\n", k->name,
                       key_type_names[k->type],
                       k->def ? k->def : "-", k->help);
        }
}
